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

from tiny import TINY, tiny_pretrain
from tests.inproc import bebias


def _cfg(tmp_path, name, **kw):
    return tiny_pretrain(str(tmp_path / name), **kw)


def _weights(path):
    return load_checkpoint(path)["moco"]


def test_resume_after_interrupt_equals_uninterrupted(tmp_path):
    full = pretrain(_cfg(tmp_path, "a"))

    def interrupt(p):
        if p.done == 4:  # mid-epoch (3 batches per epoch)
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
@pytest.mark.multiprocess
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
    assert (cfg.method, cfg.arch, cfg.queue_size, cfg.momentum, cfg.lr, cfg.clip.frames, cfg.clip.stride, cfg.clip.size) == \
        ("be", "i3d", 3569, 0.999, 0.003, 16, 4, 224)
    assert cfg.use_intra_negative


def test_end_to_end_pretrain_linear_eval_cli(tmp_path):
    """The user's path as processes: pre-train -> linear probe -> eval; the pieces connect.

    What this shows: pre-training moved the query encoder (it no longer equals its own EMA,
    the key encoder, which it would if no step had changed it); the linear probe loaded those
    pre-trained weights and kept them frozen bit for bit, BatchNorm statistics included (a
    probe that silently starts from random weights, drops keys, or updates the backbone fails
    here); eval scored exactly that probe's file, and its head learned the labels.
    What it cannot show: that pre-training learned anything useful. ``iid`` is biased like the
    probe's ``train`` labels (the background names the class 90% of the time), so a
    background-only readout, even of a random encoder, clears the accuracy bar below: the bar
    is only evidence that the head was trained and scored on matching labels. What a
    pre-training step feeds to which encoder is checked in test_step_semantics.py, and what
    the variants learn relative to each other by ``bebias compare``.
    """
    import hashlib
    import json

    # 60 train videos and 2 pre-training steps are enough for each property below (one step
    # already moves the query encoder off its EMA); more made this the suite's slowest test
    data = "synthetic:classes=3,videos_per_class=20,test_videos_per_class=10,frames=12,size=32"
    common = ["--data", data, "--frames", "4", "--size", "32", "--workers", "0"]

    def run(*args):
        r = bebias(*args)
        assert r.returncode == 0, r.stderr[-2000:]
        return r

    run("train", *common, "--batch-size", "8", "--max-steps", "2", "--queue-size", "32", "--out", str(tmp_path / "p"))
    pre = load_checkpoint(tmp_path / "p" / "model.pth")
    assert pre["kind"] == "pretrain" and pre["step"] == 2
    bq = {k[len("backbone_q."):]: v for k, v in pre["moco"].items() if k.startswith("backbone_q.")}
    bk = {k[len("backbone_k."):]: v for k, v in pre["moco"].items() if k.startswith("backbone_k.")}
    assert set(bq) == set(bk) == set(pre["backbone"])
    assert all(torch.equal(pre["backbone"][k], bq[k]) for k in bq), "the saved backbone must be the query encoder"
    assert any(not torch.equal(bq[k], bk[k]) for k in bq if bq[k].is_floating_point()), \
        "the query encoder still equals its EMA: pre-training changed nothing"

    run("finetune", str(tmp_path / "p" / "model.pth"), "--linear", *common, "--split", "train", "--epochs", "6",
        "--batch-size", "8", "--lr", "0.02", "--out", str(tmp_path / "l"))
    lin = load_checkpoint(tmp_path / "l" / "model.pth")
    assert lin["kind"] == "classifier" and lin["method"] == "linear"
    assert set(lin["backbone"]) == set(pre["backbone"])
    for k, v in pre["backbone"].items():  # weights and BN running statistics: loaded, then frozen
        assert torch.equal(lin["backbone"][k], v), f"the probe's backbone differs from the pre-trained one at {k}"

    r = run("eval", str(tmp_path / "l" / "model.pth"), "--split", "iid")
    res = json.loads((tmp_path / "l" / "eval.json").read_text())
    assert res["checkpoint_sha256"] == hashlib.sha256((tmp_path / "l" / "model.pth").read_bytes()).hexdigest()
    assert res["splits"]["iid"]["n"] == 30 and res["splits"]["iid"]["skipped"] == 0
    assert res["splits"]["iid"]["top1"] > 0.6  # chance 1/3: the head was trained (the docstring says what this is NOT)
    assert "iid" in r.stdout


def _md_cells(md: str, variant: str) -> list[str]:
    line = next(ln for ln in md.splitlines() if ln.startswith(f"| {variant} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_compare_grid_tiny(tmp_path):
    """The grid's rows mean what they say: every variant differs from ``moco`` by exactly its
    switches at the same seed and budget; a (variant, seed) row reproduces in a fresh
    directory and is read from that run's own checkpoint; seeds are really different runs;
    the random-init floor is an untrained encoder; the table is the mean ± std of the rows."""
    import json

    import numpy as np

    from bebias.data.open import open_data
    from bebias.models.backbones import build_backbone
    from bebias.training.compare import COLUMNS, _skipped_updates, compare, linear_probe, probe_scores, to_markdown
    from bebias.models.inference import embed

    # the probe itself: separable features are classified perfectly
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (20, 4)), rng.normal(5, 1, (20, 4))])
    y = np.array([0] * 20 + [1] * 20)
    assert (linear_probe(x, y, 2)(x) == y).all()

    base = PretrainConfig(data="synthetic:classes=3,videos_per_class=6,test_videos_per_class=3,frames=12,size=32",
                          frames=4, size=32, batch_size=6, max_steps=2, queue_size=12, workers=0, precision="fp32")
    variants, seeds = ("random-init", "moco", "moco+be+intra-neg"), (0, 1)
    a = tmp_path / "a"
    res = compare(str(a), variants=variants, seeds=seeds, base=base)
    assert [(r["variant"], r["seed"]) for r in res["rows"]] == [(v, s) for v in variants for s in seeds]
    assert all(0 <= r["train-unbiased->conflict/top1"] <= 1 for r in res["rows"])
    # every pre-training run's skipped updates, read from its failures.json
    assert res["skipped_updates"] == {f"{v}-seed{s}": 0 for v in variants[1:] for s in seeds}

    # configs: the same base and budget; a variant differs from moco (same seed) by its switches only
    base_d = json.loads(json.dumps(base.to_dict()))
    switches = {"moco": {"method": "moco", "intra_negative": False},
                "moco+be+intra-neg": {"method": "be", "intra_negative": True}}
    for s in seeds:
        cfgs = {v: json.loads((a / f"{v}-seed{s}" / "config.json").read_text()) for v in switches}
        for v, sw in switches.items():
            c = cfgs[v]
            assert {k: c[k] for k in sw} == sw and c["seed"] == s and c["out"] == str(a / f"{v}-seed{s}")
            assert {k for k in base_d if c[k] != base_d[k]} <= set(sw) | {"seed", "out"}, v
            diff = {k for k in c if c[k] != cfgs["moco"][k]} - {"out"}
            assert diff == {k for k, val in sw.items() if val != switches["moco"][k]}, (v, diff)
            assert load_checkpoint(a / f"{v}-seed{s}" / "model.pth")["step"] == base.max_steps  # same budget
        assert not (a / f"random-init-seed{s}" / "model.pth").exists()  # the floor is never trained

    def backbone_of(run):
        return load_checkpoint(a / run / "model.pth")["backbone"]

    # seeds are different runs
    b0, b1 = backbone_of("moco-seed0"), backbone_of("moco-seed1")
    assert any(not torch.equal(b0[k], b1[k]) for k in b0)

    # every row is the probe of its own run's features, which are its own encoder's
    by = {(r["variant"], r["seed"]): r for r in res["rows"]}
    d = open_data(base.data, split="train")
    for v in variants:
        for s in seeds:
            with np.load(a / f"{v}-seed{s}" / "features.npz") as z:
                feats = {k: z[k] for k in z.files}
            assert probe_scores(feats, 3) == {k: val for k, val in by[(v, s)].items() if k not in ("variant", "seed")}
            if v == "random-init":  # an untrained encoder, initialised from the seed
                torch.manual_seed(s)
                enc = build_backbone(base.arch)
            else:
                enc = build_backbone(base.arch)
                enc.load_state_dict(backbone_of(f"{v}-seed{s}"))
            got = embed(enc, d, base.clip_spec, batch_size=64, workers=0).features
            np.testing.assert_allclose(feats["train/x"], got, rtol=0, atol=1e-5, err_msg=f"{v} seed {s}")

    # a row reproduces from scratch in another directory (not only from the cache)
    fresh = compare(str(tmp_path / "b"), variants=("moco+be+intra-neg",), seeds=(1,), base=base)
    assert fresh["rows"] == [by[("moco+be+intra-neg", 1)]]
    bf = load_checkpoint(tmp_path / "b" / "moco+be+intra-neg-seed1" / "model.pth")["backbone"]
    bo = backbone_of("moco+be+intra-neg-seed1")
    assert all(torch.equal(bf[k], bo[k]) for k in bo)
    again = compare(str(a), variants=variants, seeds=seeds, base=base)
    assert again["rows"] == res["rows"]  # resumed from the cached runs: same numbers

    # the table: mean ± std (ddof 1) over the seeds of each variant's rows, in percent
    md = (a / "compare.md").read_text()
    assert "Updates skipped for non-finite or outlier gradients: 0 in 4 pre-training runs." in md
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "failures.json").write_text(json.dumps({"skipped_updates": [{"step": 3}, {"step": 9}]}))
    assert _skipped_updates(str(tmp_path / "bad")) == 2 and _skipped_updates(str(tmp_path / "none")) is None
    md2 = to_markdown({**res, "skipped_updates": {"x": 2, "y": None}})
    assert "outlier gradients: 2 in 2 pre-training runs (1 without a failures.json)." in md2
    for v in variants:
        cells = _md_cells(md, v)
        assert cells[:2] == [v, str(len(seeds))]
        for (key, _), cell in zip(COLUMNS, cells[2:], strict=True):
            vals = 100 * np.array([by[(v, s)][key] for s in seeds])
            assert cell == f"{vals.mean():.1f} ± {vals.std(ddof=1):.1f}", (v, key, cell)
