"""MoCo / MoCo+BE pre-training: exact resume, method switches, torchrun/DDP, end to end."""

import os
import shutil
import subprocess
import sys

import pytest
import torch

from bebias.checkpoint import load_checkpoint
from bebias.errors import BebiasError
from bebias.training.pretrain import PretrainConfig, make_query, pretrain

TINY = "synthetic:classes=3,videos_per_class=4,test_videos_per_class=2,frames=12,size=32"


def _cfg(tmp_path, name, **kw):
    base = dict(data=TINY, frames=4, stride=2, size=32, batch_size=4, max_steps=6, queue_size=10, workers=0,
                precision="fp32", out=str(tmp_path / name))
    return PretrainConfig(**{**base, **kw})


def _weights(path):
    return load_checkpoint(path)["moco"]


def test_resume_after_interrupt_equals_uninterrupted(tmp_path):
    full = pretrain(_cfg(tmp_path, "a"))

    def interrupt(row):
        if row["step"] == 4:  # mid-epoch (3 batches per epoch)
            raise KeyboardInterrupt

    cfg = _cfg(tmp_path, "b")
    with pytest.raises(BebiasError, match="interrupted at step 4"):
        pretrain(cfg, progress=interrupt)
    resumed = pretrain(cfg, resume=True)
    a, b = _weights(full.model_path), _weights(resumed.model_path)
    assert set(a) == set(b) and "queue" in a and "queue_ptr" in a and any(k.startswith("backbone_k.") for k in a)
    for k in a:  # query and key encoders, queue, pointer: all identical
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("method, intra", [("moco", False), ("be", True), ("fame", False)])
def test_methods_run_and_are_recorded(tmp_path, method, intra):
    res = pretrain(_cfg(tmp_path, method, method=method, max_steps=2))
    ck = load_checkpoint(res.model_path)
    assert ck["kind"] == "pretrain" and ck["method"] == method and ck["arch"] == "small3d"
    assert ck["config"]["method"] == method and ck["input"]["frames"] == 4
    assert PretrainConfig.from_dict(ck["config"]).use_intra_negative is intra
    assert int(ck["moco"]["queue_ptr"]) == 2 * 4 % 10  # 2 steps x batch 4 keys enqueued


def test_make_query_switches():
    x = torch.randn(4, 3, 4, 8, 8)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(make_query(x, PretrainConfig(method="moco"), g), x)
    q = make_query(x, PretrainConfig(method="be", be_lambda_max=0.0), g)
    assert torch.equal(q, x)  # lambda_max = 0: BE is the identity
    q = make_query(x, PretrainConfig(method="be"), torch.Generator().manual_seed(1))
    assert q.shape == x.shape and not torch.equal(q, x)


def test_bad_config_is_a_user_error():
    with pytest.raises(BebiasError, match="method"):
        PretrainConfig.from_dict({"method": "simclr"})
    with pytest.raises(BebiasError, match="unknown config keys"):
        PretrainConfig.from_dict({"lrr": 1})


@pytest.mark.skipif(shutil.which("torchrun") is None and not os.path.exists(
    os.path.join(os.path.dirname(sys.executable), "torchrun")), reason="torchrun not installed")
def test_torchrun_two_gloo_processes(tmp_path):
    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    env = {**os.environ, "BEBIAS_DIST_BACKEND": "gloo", "OMP_NUM_THREADS": "1"}
    r = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "bebias", "train", "--data", TINY,
                        "--frames", "4", "--size", "32", "--batch-size", "2", "--max-steps", "3", "--queue-size",
                        "10", "--workers", "0", "--precision", "fp32", "--device", "cpu", "--out", str(tmp_path / "d")],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    ck = load_checkpoint(tmp_path / "d" / "model.pth")
    assert ck["step"] == 3
    assert int(ck["moco"]["queue_ptr"]) == 3 * 2 * 2 % 10  # keys gathered from both ranks before enqueueing


def test_official_recipe_config_parses():
    from bebias.training.config import config_from_file

    cfg = PretrainConfig.from_dict(config_from_file(os.path.join(os.path.dirname(__file__), "..", "configs",
                                                                 "be-official.toml")))
    assert (cfg.method, cfg.arch, cfg.queue_size, cfg.momentum, cfg.lr, cfg.frames, cfg.stride, cfg.size) == \
        ("be", "i3d", 3569, 0.999, 0.003, 16, 4, 224)
    assert cfg.use_intra_negative


def test_end_to_end_pretrain_linear_eval_cli(tmp_path):
    """The user's path: pre-train -> linear probe -> eval, as processes, well above chance."""
    data = "synthetic:classes=3,videos_per_class=40,test_videos_per_class=10,frames=12,size=32"
    common = ["--data", data, "--frames", "4", "--size", "32", "--workers", "0"]

    def run(*args):
        r = subprocess.run([sys.executable, "-m", "bebias", *args], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        return r

    run("train", *common, "--batch-size", "8", "--max-steps", "20", "--queue-size", "32", "--out", str(tmp_path / "p"))
    run("finetune", str(tmp_path / "p" / "model.pth"), "--linear", *common, "--split", "train", "--epochs", "6",
        "--batch-size", "8", "--lr", "0.02", "--out", str(tmp_path / "l"))
    r = run("eval", str(tmp_path / "l" / "model.pth"), "--split", "iid")
    import json

    res = json.loads((tmp_path / "l" / "eval.json").read_text())
    assert res["splits"]["iid"]["n"] == 30
    assert res["splits"]["iid"]["top1"] > 0.6  # chance = 1/3
    assert "iid" in r.stdout


def test_compare_grid_tiny(tmp_path):
    from bebias.training.compare import compare, linear_probe

    import numpy as np

    # the probe itself: separable features are classified perfectly
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (20, 4)), rng.normal(5, 1, (20, 4))])
    y = np.array([0] * 20 + [1] * 20)
    assert (linear_probe(x, y, 2)(x) == y).all()

    base = PretrainConfig(data="synthetic:classes=3,videos_per_class=6,test_videos_per_class=3,frames=12,size=32",
                          frames=4, size=32, batch_size=6, max_steps=2, queue_size=12, workers=0, precision="fp32")
    res = compare(str(tmp_path), variants=("random-init", "moco+be+intra-neg"), seeds=(0, 1), base=base)
    assert len(res["rows"]) == 4
    assert all(0 <= r["train-unbiased->conflict/top1"] <= 1 for r in res["rows"])
    md = (tmp_path / "compare.md").read_text()
    assert "moco+be+intra-neg | 2 |" in md and "±" in md
    again = compare(str(tmp_path), variants=("random-init", "moco+be+intra-neg"), seeds=(0, 1), base=base)
    assert again["rows"] == res["rows"]  # resumed from the cached runs: same numbers
