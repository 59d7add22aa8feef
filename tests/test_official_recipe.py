"""The switches that make `bebias train` follow FingerRec/BE's code (configs/be-official.toml):
the step LR schedule, the other-video negative of the official MoCo baseline, the config
file itself, and the CLI flags. The official augmentation is tested in test_transforms.py."""

import json
import math
import os

import pytest
import torch

from bebias import distract
from bebias.errors import BebiasError
from bebias.training import pretrain as pretrain_mod
from bebias.training.config import config_from_file
from bebias.training.run_common import lr_at
from bebias.training.pretrain import PretrainConfig, pretrain
from tests.inproc import bebias

TINY = "synthetic:classes=3,videos_per_class=4,test_videos_per_class=2,frames=12,size=32"
OFFICIAL = os.path.join(os.path.dirname(__file__), "..", "configs", "be-official.toml")


# ---- step LR schedule ----------------------------------------------------------------------------

def test_step_schedule_is_theirs_epoch_by_epoch():
    """pt_adjust_learning_rate: epochs 1..200, lr = 0.003 * 0.1 ** #{m in (120,160,200): epoch > m}."""
    epochs, per_epoch = 200, 7
    total = epochs * per_epoch
    for step in range(total):
        epoch1 = step // per_epoch + 1  # their 1-based epoch
        theirs = 0.003 * 0.1 ** sum(epoch1 > m for m in (120, 160, 200))
        assert math.isclose(lr_at(step, total, 0.003, 0.0, "step", (120, 160), 0.1, epochs), theirs, rel_tol=1e-12)


def test_step_schedule_boundaries_warmup_and_compression():
    lr = lambda s, total=2000, warm=0.0, ep=200: lr_at(s, total, 1.0, warm, "step", (120, 160), 0.1, ep)  # noqa: E731
    assert lr(0) == 1.0 and lr(1199) == 1.0  # epochs 0..119 (10 steps each)
    assert math.isclose(lr(1200), 0.1) and math.isclose(lr(1599), 0.1)
    assert math.isclose(lr(1600), 0.01) and math.isclose(lr(1999), 0.01)
    # a linear warm-up first, when asked for
    assert math.isclose(lr(0, warm=0.01), 1 / 20) and math.isclose(lr(19, warm=0.01), 1.0) and lr(20, warm=0.01) == 1.0
    # --max-steps shorter than the epochs: milestones in proportion (120/200 of the run)
    assert lr(59, total=100) == 1.0 and math.isclose(lr(60, total=100), 0.1) and math.isclose(lr(80, total=100), 0.01)
    # the default schedule is unchanged: warm-up then cosine
    assert lr_at(0, 100, 1.0, 0.1) == 0.1 and lr_at(10, 100, 1.0, 0.1) == 1.0
    assert math.isclose(lr_at(55, 100, 1.0, 0.1), 0.5 * (1 + math.cos(math.pi * 45 / 90)))
    with pytest.raises(ValueError, match="schedule"):
        lr_at(0, 10, 1.0, 0.0, "exp")


# ---- other-video negative ---------------------------------------------------------------------

def test_other_video_negative_takes_another_videos_clip():
    neg = torch.arange(5.0).view(5, 1, 1, 1, 1).expand(5, 3, 2, 4, 4)  # row i is "video i's extra clip"
    out = distract.other_video_negative(neg, torch.tensor([10, 11, 12, 13, 14]))
    assert [int(v) for v in out[:, 0, 0, 0, 0]] == [4, 0, 1, 2, 3]  # distinct videos: rotated by one
    # the same video twice in a batch (e.g. a substituted item): never its own video
    idx = torch.tensor([7, 7, 8, 7])
    out = distract.other_video_negative(torch.arange(4), idx)
    assert all(int(idx[j]) != int(idx[i]) for i, j in enumerate(out.tolist()))
    with pytest.raises(ValueError, match="same video"):
        distract.other_video_negative(torch.zeros(3), torch.tensor([2, 2, 2]))


def _cfg(tmp_path, name, **kw):
    base = dict(data=TINY, frames=4, stride=2, size=32, batch_size=4, max_steps=2, queue_size=10, workers=0,
                precision="fp32", out=str(tmp_path / name))
    return PretrainConfig(**{**base, **kw})


def test_other_negative_reaches_the_loss_from_another_video(tmp_path, monkeypatch):
    seen = []
    orig_neg, orig_fwd = distract.other_video_negative, pretrain_mod.MoCo.forward

    def spy_neg(neg, index):
        out = orig_neg(neg, index)
        seen.append((neg.clone(), index.clone(), out))
        return out

    def spy_fwd(self, x_q, x_k, x_neg=None, **kw):
        res = orig_fwd(self, x_q, x_k, x_neg, **kw)
        seen.append(("forward", x_neg, res["logits"].shape))
        return res

    monkeypatch.setattr(distract, "other_video_negative", spy_neg)
    monkeypatch.setattr(pretrain_mod.MoCo, "forward", spy_fwd)
    cfg = _cfg(tmp_path, "o", method="moco", other_negative=True)
    assert cfg.extra_negative and not cfg.use_intra_negative
    pretrain(cfg)
    assert len(seen) == 4  # 2 steps x (negative, forward)
    for (neg, index, out), (_, x_neg, shape) in zip(seen[::2], seen[1::2]):
        assert x_neg is out and shape == (4, 1 + 10 + 1)  # positive, queue, ONE extra negative
        for i in range(4):  # row i is the extra clip decoded for a sample of another video
            j = [k for k in range(4) if torch.equal(neg[k], out[i])]
            assert j and all(int(index[k]) != int(index[i]) for k in j)


def test_option_validation():
    with pytest.raises(BebiasError, match="not both"):
        PretrainConfig(other_negative=True, intra_negative=True).validate()
    assert not PretrainConfig(method="be", other_negative=True).use_intra_negative  # unset: the switch decides
    with pytest.raises(BebiasError, match="batch-size"):
        PretrainConfig(method="moco", other_negative=True, batch_size=1).validate()
    with pytest.raises(BebiasError, match="augment"):
        PretrainConfig(augment="simclr").validate()
    with pytest.raises(BebiasError, match="flip"):
        PretrainConfig(augment="official", hflip=True).validate()
    with pytest.raises(BebiasError, match="lr-schedule"):
        PretrainConfig(lr_schedule="exp").validate()
    with pytest.raises(BebiasError, match="lr-steps"):
        PretrainConfig.from_dict({"lr_steps": [160, 120]})
    with pytest.raises(BebiasError, match="lr-gamma"):
        PretrainConfig(lr_gamma=0.0).validate()
    with pytest.raises(BebiasError, match="warmup"):
        PretrainConfig(warmup=1.0).validate()


# ---- the config file ----------------------------------------------------------------------------

def test_official_config_loads_with_their_values():
    cfg = PretrainConfig.from_dict(config_from_file(OFFICIAL))
    assert (cfg.method, cfg.be_lambda_max, cfg.be_per_clip, cfg.be_source) == ("be", 0.3, False, "same")
    assert cfg.use_intra_negative and not cfg.other_negative
    assert (cfg.arch, cfg.dim, cfg.queue_size, cfg.momentum, cfg.temperature, cfg.mlp, cfg.shuffle_bn) == \
        ("i3d", 128, 3569, 0.999, 0.07, False, False)
    assert (cfg.clip.frames, cfg.clip.stride, cfg.clip.size, cfg.augment, cfg.hflip) == (16, 4, 224, "official", False)
    assert cfg.clip.mean == (0.485, 0.456, 0.406) and cfg.clip.std == (0.229, 0.224, 0.225)  # ImageNet
    assert (cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.precision) == ("sgd", 0.003, 1e-4, "fp32")
    assert (cfg.lr_schedule, cfg.lr_steps, cfg.lr_gamma, cfg.warmup) == ("step", (120, 160), 0.1, 0.0)
    assert (cfg.batch_size, cfg.epochs) == (4, 200)
    # the official MoCo baseline is two flags away
    moco = PretrainConfig.from_dict({**config_from_file(OFFICIAL), "method": "moco", "other_negative": True})
    assert moco.extra_negative and not moco.use_intra_negative
    assert PretrainConfig.from_dict(cfg.to_dict()) == cfg  # round-trips through config.json / checkpoints


def test_cli_flags_reach_the_run(tmp_path):
    out = tmp_path / "r"
    r = bebias("train", "--data", TINY, "--frames", "4", "--size", "32", "--batch-size", "4", "--max-steps", "2",
               "--queue-size", "10", "--workers", "0", "--precision", "fp32", "--method", "moco", "--other-negative",
               "--augment", "official", "--lr-schedule", "step", "--lr-steps", "3,5", "--lr-gamma", "0.5",
               "--warmup", "0", "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["other_negative"], cfg["augment"], cfg["lr_schedule"], cfg["lr_steps"], cfg["lr_gamma"],
            cfg["warmup"]) == (True, "official", "step", [3, 5], 0.5, 0.0)
    r = bebias("train", "--lr-steps", "a,b")
    assert r.returncode == 2 and "--lr-steps" in r.stderr and "Traceback" not in r.stderr
