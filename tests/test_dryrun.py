"""`--dry-run` (checks a config against a dataset root and projects the wall time), the
paper's recipes in configs/paper/, and --annotations on the training commands."""

import glob
import os
from pathlib import Path

import numpy as np
import pytest

from bebias.training.config import config_from_file, config_reference
from bebias.training.finetune import FinetuneConfig
from bebias.training.pretrain import PretrainConfig
from tests.inproc import bebias as _inproc

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["ApplyEyeMakeup", "Biking", "Diving"]


def bebias(*args):
    return _inproc(*args, cwd=ROOT)


@pytest.fixture(scope="module")
def ucf101(tmp_path_factory) -> Path:
    """A UCF101 folder as the official archives extract: UCF-101/<Class>/*.avi next to
    ucfTrainTestlist/, with real (tiny, MJPG) videos."""
    from bebias.data.video_io import write_video

    root = tmp_path_factory.mktemp("data") / "UCF101"
    rng = np.random.default_rng(0)
    train, test = [], []
    for c, cls in enumerate(CLASSES):
        for g in range(1, 4):
            name = f"v_{cls}_g{g:02d}_c01.avi"
            write_video(root / "UCF-101" / cls / name, rng.integers(0, 256, (12, 32, 40, 3), dtype=np.uint8))
            (train if g < 3 else test).append(f"{cls}/{name}")
            if g < 3:
                train[-1] += f" {c + 1}"
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(CLASSES)))
    (lists / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (lists / "testlist01.txt").write_text("\n".join(test) + "\n")
    return root


TINY = ["--frames", "4", "--size", "32", "--batch-size", "2", "--workers", "0"]


def test_dry_run_checks_the_data_times_steps_and_writes_nothing(tmp_path, ucf101):
    out = tmp_path / "never"
    r = bebias("train", "--data", str(ucf101), "--dataset", "ucf101", "--arch", "small3d", *TINY,
               "--epochs", "200", "--out", str(out), "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "6 videos in split 'train'" in r.stdout and "OK" in r.stdout
    assert "projected: 600 steps (200 epochs x 3)" in r.stdout and "s per step" in r.stdout
    assert not out.exists()


def test_dry_run_of_a_finetune_recipe_prints_its_reference(tmp_path, ucf101):
    r = bebias("finetune", "--config", "configs/paper/ft-i3d-ucf101.toml", "--data", str(ucf101), "--arch",
               "small3d", *TINY, "--out", str(tmp_path / "never"), "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "projected:" in r.stdout and "(45 epochs x 3)" in r.stdout
    assert "MoCo + BE (K400) 86.5" in r.stdout and "GPU-hours" in r.stdout


def test_annotations_elsewhere_need_the_flag(tmp_path, ucf101):
    import shutil

    data = tmp_path / "videos" / "UCF101"
    shutil.copytree(ucf101 / "UCF-101", data / "UCF-101")
    notes = tmp_path / "elsewhere" / "deeper" / "lists"
    shutil.copytree(ucf101 / "ucfTrainTestlist", notes)
    r = bebias("train", "--data", str(data), "--dataset", "ucf101", *TINY, "--dry-run")
    assert r.returncode == 2 and "--annotations" in r.stderr and "Traceback" not in r.stderr
    r = bebias("train", "--data", str(data), "--dataset", "ucf101", "--annotations", str(notes), *TINY, "--dry-run")
    assert r.returncode == 0, r.stderr


def test_a_wrong_dataset_root_is_one_line(tmp_path):
    r = bebias("train", "--data", str(tmp_path), "--dataset", "ucf101", *TINY, "--dry-run")
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("path", sorted(glob.glob(str(ROOT / "configs" / "paper" / "*.toml"))))
def test_paper_configs_are_valid_and_carry_their_reference(path):
    cls = PretrainConfig if "/k400-" in path else FinetuneConfig
    cfg = cls.from_dict(config_from_file(path))
    ref = config_reference(path)
    assert {"source", "reported", "cost"} <= set(ref)
    assert all(isinstance(v, float) for k, v in ref["reported"].items() if "paper" not in k)
    assert cfg.arch == "i3d" and cfg.precision == "fp32" and cfg.lr_schedule == "step"
    if cls is FinetuneConfig:
        assert (cfg.clip.frames, cfg.clip.size, cfg.epochs, cfg.lr_gamma) == (64, 224, 45, 0.3)
    else:
        assert (cfg.queue_size, cfg.epochs, cfg.batch_size) == (65536, 50, 8)
    assert os.path.basename(path).split("-")[0] in ("k400", "ft")
