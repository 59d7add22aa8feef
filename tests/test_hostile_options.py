"""Hostile and unlucky option values (issue 23, items 7, 11, 13, 15, 18, 22 and the smaller
ones): each is refused in one line (exit 2, no traceback) before anything is written, and
the commands that legitimately reuse a folder say so (``--resume`` / ``--overwrite``).

The commands run in this process (``bebias.cli.main`` with a patched ``sys.argv``): tiny
sizes, a few seconds in all.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from tiny import TINY, tiny_classifier  # noqa: E402

#: a finetune run of one step on the tiny benchmark (add the option under test)
FT = ("finetune", "--data", TINY, "--frames", "4", "--size", "32", "--batch-size", "4", "--max-steps", "1",
      "--device", "cpu", "--workers", "0")
TRAIN = ("train", "--data", TINY, "--frames", "4", "--size", "32", "--batch-size", "4", "--max-steps", "1",
         "--queue-size", "8", "--device", "cpu", "--workers", "0")


def cli(*args: object) -> tuple[int, str, str]:
    """``bebias ARGS`` in this process -> (exit code, stdout, stderr); an exception that
    escapes ``main`` (a traceback for the user) propagates and fails the test."""
    from bebias.cli.common import main

    out, err, argv = io.StringIO(), io.StringIO(), sys.argv
    sys.argv = ["bebias", *map(str, args)]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else int(e.code is not None)
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue()


def refused(*args: object) -> str:
    """Run ``bebias ARGS``; assert exit 2 with one line on stderr and return that line."""
    code, out, err = cli(*args)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (code, out[-1000:], err[-2000:])
    assert "Traceback" not in err and len(lines) == 1, err[-2000:]
    return lines[0]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    return tiny_classifier(tmp_path_factory.mktemp("opts") / "clf")


@pytest.fixture
def small_memory(monkeypatch):
    """This machine as one with 8 GB free, so that the memory bounds hold anywhere."""
    import bebias.limits

    monkeypatch.setattr(bebias.limits, "available_memory", lambda: 8_000_000_000)


# --------------------------------------------------------------------------------------
# item 7: degenerate training settings write no model
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("cmd", [FT, TRAIN], ids=["finetune", "train"])
@pytest.mark.parametrize("stride", ["0", "-2"])
def test_a_stride_below_one_is_refused(tmp_path, cmd, stride):
    line = refused(*cmd, "--stride", stride, "--out", tmp_path / "o")
    assert "--stride must be an integer >= 1" in line and stride in line
    assert not (tmp_path / "o").exists()


def test_negative_epochs_write_no_model(tmp_path):
    # before: exit 0 after writing an untrained model.pth ("0 steps, final loss nan")
    args = [a for a in FT if a not in ("--max-steps", "1")]
    line = refused(*args, "--epochs", "-1", "--out", tmp_path / "o")
    assert "--epochs must be an integer in 1..10000, got -1" in line
    assert not (tmp_path / "o" / "model.pth").exists()


@pytest.mark.parametrize("cmd", [FT, TRAIN], ids=["finetune", "train"])
def test_max_steps_zero_is_refused_not_read_as_no_limit(tmp_path, cmd):
    line = refused(*cmd, "--max-steps", "0", "--out", tmp_path / "o")
    assert "--max-steps must be an integer >= 1" in line and "omit it" in line


def test_probe_refuses_a_stride_that_would_loop_the_clip(ckpt, tmp_path):
    line = refused("probe", ckpt, "--suite", "quick", "--device", "cpu", "--stride", "1000000000",
                   "--out", tmp_path / "p")
    assert "--stride 1000000000" in line and "spans" in line


def test_testset_refuses_a_stride_that_would_loop_the_clip(tmp_path):
    line = refused("testset", "--kind", "original", "--data", TINY, "--stride", "1000000000",
                   "--out", tmp_path / "t")
    assert "--stride 1000000000" in line and "spans" in line
    assert not (tmp_path / "t").exists()


# --------------------------------------------------------------------------------------
# item 11: sizes and counts bounded by the memory they need, estimated first
# --------------------------------------------------------------------------------------

def _estimate_line(line: str) -> None:
    assert "needs about" in line and "more than the 8.0 GB of memory available" in line, line


def test_finetune_size_beyond_memory(tmp_path, small_memory):
    line = refused(*FT, "--size", "100000", "--out", tmp_path / "o")
    _estimate_line(line)
    assert "--size 100000" in line and "480.0 GB" in line  # 3 x 4 frames x 100000**2 px x 4 bytes


def test_train_batch_beyond_memory(tmp_path, small_memory):
    line = refused(*TRAIN, "--batch-size", "100000", "--out", tmp_path / "o")
    _estimate_line(line)
    assert "--batch-size 100000" in line


def test_probe_frames_and_size_beyond_memory(ckpt, tmp_path, small_memory):
    line = refused("probe", ckpt, "--suite", "quick", "--device", "cpu", "--frames", "100000000", "--out", tmp_path / "p")
    assert "--frames 100000000" in line and "spans" in line
    _estimate_line(refused("probe", ckpt, "--suite", "quick", "--device", "cpu", "--size", "100000",
                           "--out", tmp_path / "p"))


def test_suite_n_boot_beyond_memory(ckpt, tmp_path, small_memory):
    (tmp_path / "s.toml").write_text('variants = ["shuffle"]\nn_boot = 1000000000000\n')
    line = refused("probe", ckpt, "--suite", tmp_path / "s.toml", "--device", "cpu", "--out", tmp_path / "p")
    _estimate_line(line)
    assert "s.toml" in line and "n_boot" in line


def test_cam_n_boot_beyond_memory(ckpt, tmp_path, small_memory):
    _estimate_line(refused("cam", ckpt, "--n-boot", "1000000000000", "--device", "cpu", "--out", tmp_path / "c"))


def test_synth_counts_and_sizes_bounded(tmp_path, small_memory):
    line = refused("data", "synth", "--videos-per-class", "1000000000000", "--out", tmp_path / "b")
    assert "--videos-per-class must be an integer in 1..100000, got 1000000000000" in line
    line = refused("data", "synth", "--frames", "100000000", "--out", tmp_path / "b")
    _estimate_line(line)
    assert "rendering one video of --frames 100000000" in line
    assert not (tmp_path / "b").exists()


def test_synth_in_memory_benchmark_beyond_memory(tmp_path, small_memory):
    # 4 classes x 2000 videos x 64 frames x 512 px: 537 GB of frames rendered in memory
    args = [a for a in FT if a not in ("--data", TINY)]
    line = refused(*args, "--data", "synthetic:classes=4,videos_per_class=2000,frames=64,size=512",
                   "--out", tmp_path / "o")
    _estimate_line(line)


def test_eval_clips_beyond_memory(ckpt, tmp_path, small_memory):
    # one video's 100000 clips of 4 x 32 x 32 px in float32: 4.9 GB; a batch of 6 such videos: 29.5 GB
    line = refused("eval", ckpt, "--split", "conflict", "--device", "cpu", "--clips", "100000",
                   "--out", tmp_path / "e.json")
    _estimate_line(line)
    assert "--clips 100000" in line
    assert not (tmp_path / "e.json").exists()


def test_available_memory_honours_the_address_space_limit():
    resource = pytest.importorskip("resource")
    from bebias import limits

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    free = limits.available_memory()
    try:
        with open("/proc/self/status") as f:
            mapped = next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (mapped + (1 << 30), hard))
        assert limits.available_memory() <= (1 << 30)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    assert limits.available_memory() == pytest.approx(free, rel=0.5)


# --------------------------------------------------------------------------------------
# item 13: a batch larger than the split is refused, not spun on forever
# --------------------------------------------------------------------------------------

def test_finetune_batch_larger_than_the_split_is_refused(tmp_path):
    # the tiny benchmark's train split has 12 videos; before: finetune spun at step 0 forever
    line = refused(*FT, "--batch-size", "16", "--out", tmp_path / "o")
    assert "has 12 videos, fewer than one batch (--batch-size 16)" in line


# --------------------------------------------------------------------------------------
# item 15: an --out holding a run is not replaced without --resume or --overwrite
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("cmd", [FT, TRAIN], ids=["finetune", "train"])
def test_an_existing_run_is_refused_without_resume_or_overwrite(tmp_path, cmd):
    out = tmp_path / "run"
    assert cli(*cmd, "--out", out)[0] == 0
    model = (out / "model.pth").read_bytes()
    line = refused(*cmd, "--seed", "1", "--out", out)
    assert str(out) in line and "--resume" in line and "--overwrite" in line
    assert (out / "model.pth").read_bytes() == model  # untouched
    assert "--resume" in refused(*cmd, "--resume", "--overwrite", "--out", out)
    code, _, err = cli(*cmd, "--seed", "1", "--overwrite", "--out", out)
    assert code == 0, err[-2000:]
    assert (out / "model.pth").read_bytes() != model  # seed 1: another model


def test_overwrite_into_a_fresh_folder_is_fine(tmp_path):
    code, _, err = cli(*FT, "--overwrite", "--out", tmp_path / "new")
    assert code == 0, err[-2000:]
    assert (tmp_path / "new" / "model.pth").exists()


# --------------------------------------------------------------------------------------
# item 18: bad option values and config types are one line
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("opt,value,needle", [
    ("--seed", "-1", "--seed must be an integer in 0..4294967295, got -1"),
    ("--seed", str(2**40), "--seed must be an integer in 0..4294967295"),
    ("--batch-size", "0", "--batch-size must be an integer >= 1, got 0"),
    ("--device", "banana", "--device must be auto, cpu, cuda or cuda:N, got 'banana'"),
    ("--lr", "nan", "--lr must be a finite number, got nan"),
    ("--lr", "-0.1", "--lr must be > 0"),
    ("--workers", "1000000", "--workers must be an integer in 0..64, got 1000000"),
    ("--max-skips", "-1", "--max-skips must be an integer >= 0"),
])
def test_bad_training_option_values(tmp_path, opt, value, needle):
    assert needle in refused(*FT, opt, value, "--out", tmp_path / "o")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args,needle", [
    (("--clips", "0"), "--clips must be an integer >= 1, got 0"),
    (("--batch-size", "0"), "--batch-size must be an integer >= 1, got 0"),
    (("--device", "banana"), "--device must be auto, cpu, cuda or cuda:N"),
    (("--workers", "1000000"), "--workers must be an integer in 0..64"),
])
def test_bad_eval_option_values(ckpt, tmp_path, args, needle):
    assert needle in refused("eval", ckpt, "--split", "conflict", *args, "--out", tmp_path / "e.json")


@pytest.mark.parametrize("args,needle", [
    (("--seed", "-1"), "--seed must be an integer in 0..4294967295"),
    (("--seed", str(2**40)), "--seed must be an integer in 0..4294967295"),
    (("--workers", "1000000"), "--workers must be an integer in 0..64"),
    (("--device", "banana"), "--device must be auto, cpu, cuda or cuda:N"),
    (("--mean", "nan,1,1"), "--mean must be finite and --std > 0"),
    (("--std", "0,0,0"), "--mean must be finite and --std > 0"),
])
def test_bad_probe_option_values(ckpt, tmp_path, args, needle):
    assert needle in refused("probe", ckpt, "--suite", "quick", *args, "--out", tmp_path / "p")


def test_cam_n_boot_zero(ckpt, tmp_path):
    assert "--n-boot must be an integer >= 1, got 0" in refused("cam", ckpt, "--n-boot", "0", "--out", tmp_path / "c")


def test_synth_workers_bounded(tmp_path):
    # before: --workers 1000000 started a pool of a million processes and hung the machine
    line = refused("data", "synth", "--classes", "2", "--videos-per-class", "1", "--test-videos-per-class", "1",
                   "--frames", "8", "--size", "32", "--workers", "1000000", "--out", tmp_path / "b")
    assert "--workers must be an integer in 0..64, got 1000000" in line
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("toml,needle", [
    ('epochs = "ten"', "--epochs (config key 'epochs') must be an integer, got 'ten'"),
    ("lr = [1]", "--lr (config key 'lr') must be a number, got [1]"),
    ("stride = 4.5", "--stride (config key 'stride') must be an integer, got 4.5"),
    ("hflip = 1", "--hflip (config key 'hflip') must be true or false"),
    ('mean = [0.5, "a", 0.5]', "--mean (config key 'mean') must be a list of 3 numbers"),
    ("seed = -1", "--seed must be an integer in 0..4294967295, got -1"),
])
def test_wrong_types_in_a_toml_config(tmp_path, toml, needle):
    (tmp_path / "c.toml").write_text(toml + "\n")
    assert needle in refused(*FT, "--config", tmp_path / "c.toml", "--out", tmp_path / "o")


def test_python_api_refuses_the_same_values():
    from bebias.errors import BebiasError
    from bebias.training.finetune import FinetuneConfig

    with pytest.raises(BebiasError, match="--stride must be an integer >= 1, got 0"):
        FinetuneConfig(data=TINY, stride=0)
    with pytest.raises(BebiasError, match=r"--epochs \(config key 'epochs'\) must be an integer, got 'ten'"):
        FinetuneConfig(data=TINY, epochs="ten")


# --------------------------------------------------------------------------------------
# item 22: eval --out naming a folder
# --------------------------------------------------------------------------------------

def test_eval_out_a_directory_names_it_before_evaluating(ckpt, tmp_path, monkeypatch):
    import bebias.training.evaluate as ev

    def never(*a, **k):
        raise AssertionError("evaluated although --out cannot be written")

    monkeypatch.setattr(ev, "evaluate_checkpoint", never)
    (tmp_path / "d").mkdir()
    line = refused("eval", ckpt, "--split", "conflict", "--device", "cpu", "--out", tmp_path / "d")
    assert str(tmp_path / "d") in line and "is a directory" in line and ".tmp" not in line


@pytest.mark.parametrize("args,needle", [
    (("--epochs", "1000000"), "--epochs must be an integer in 1..10000, got 1000000"),
    (("--max-steps", "1000000000000"), "--max-steps 1000000000000 is more than 10000 epochs of this split"),
])
def test_a_run_of_years_is_refused(tmp_path, args, needle):
    cmd = [a for a in FT if a not in ("--max-steps", "1")]
    assert needle in refused(*cmd, *args, "--out", tmp_path / "o")
    assert not (tmp_path / "o" / "model.pth").exists()
