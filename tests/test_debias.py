"""Supervised debiasing augmentations (bebias.distract.debias) and `bebias finetune --debias`."""

import json

import pytest
import torch

from bebias import distract
from bebias.distract import be_supervised, debias_batch, fame_supervised, stillmix
from bebias.distract.debias import apply_to_fraction
from tests.tiny import TINY
from tests.inproc import bebias


def _clips(B=6, T=5, seed=0):
    return torch.randn(B, 3, T, 8, 8, generator=torch.Generator().manual_seed(seed))


def test_stillmix_is_the_formula_with_a_frame_of_another_clip():
    x = _clips()
    d, k = torch.tensor([1, 2, 3, 4, 5, 0]), torch.tensor([0, 4, 2, 1, 3, 0])
    out, info = stillmix(x, lam=0.4, donor=d, frame_index=k, prob=1.0)
    want = 0.4 * x + 0.6 * x[d, :, k].unsqueeze(2)
    torch.testing.assert_close(out, want)
    assert info["applied"].all()
    with pytest.raises(ValueError, match="donor"):
        stillmix(x, lam=0.4, donor=torch.arange(6), prob=1.0)  # a clip is never its own donor
    with pytest.raises(ValueError, match="at least 2"):
        stillmix(x[:1])


def test_stillmix_draws_the_sources_settings():
    x = _clips(B=8)
    g = torch.Generator().manual_seed(3)
    lams, applied, self_donor = [], [], 0
    for _ in range(200):
        _, info = stillmix(x, generator=g)
        lams.append(info["lam"])
        applied.append(info["applied"].float().mean().item())
        self_donor += int((info["donor"] == torch.arange(8)).sum())
    lams_t = torch.tensor(lams)
    # Beta(200, 200): mean 0.5, sd 0.025
    assert abs(lams_t.mean().item() - 0.5) < 0.01 and 0.015 < lams_t.std().item() < 0.035
    assert abs(sum(applied) / len(applied) - 0.5) < 0.05  # half of the samples
    assert self_donor == 0


def test_rows_not_drawn_are_untouched_bit_for_bit():
    x = _clips()
    out, info = stillmix(x, generator=torch.Generator().manual_seed(1))
    keep = ~info["applied"]
    assert keep.any() and info["applied"].any()
    assert torch.equal(out[keep], x[keep])
    assert not torch.equal(out[info["applied"]], x[info["applied"]])


def test_be_supervised_is_background_erasing_on_half_the_clips():
    x = _clips()
    out, info = be_supervised(x, generator=torch.Generator().manual_seed(2), prob=1.0)
    ref, _ = distract.background_erasing(x, 0.3, lam=info["lam"], frame_index=info["frame"])
    torch.testing.assert_close(out, ref)
    assert (info["lam"] < 0.3).all()
    static = x[:, :, :1].expand_as(x).contiguous()  # BE leaves a static clip unchanged
    out_s, _ = be_supervised(static, generator=torch.Generator().manual_seed(2), prob=1.0)
    assert torch.equal(out_s, static)


def test_fame_supervised_pastes_the_foreground_on_another_background():
    x = _clips()
    perm = torch.tensor([5, 4, 3, 2, 1, 0])
    out, info = fame_supervised(x, perm=perm)
    m = info["mask"]
    assert set(m.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(out, m * x + (1 - m) * x[perm])


def test_same_generator_same_batch_and_unknown_method():
    x = _clips()
    for method in distract.DEBIAS_METHODS:
        a, _ = debias_batch(x, method, torch.Generator().manual_seed(7))
        b, _ = debias_batch(x, method, torch.Generator().manual_seed(7))
        assert torch.equal(a, b), method
    with pytest.raises(ValueError, match="unknown debias"):
        debias_batch(x, "mixup")
    with pytest.raises(ValueError):
        apply_to_fraction(x, x, 1.5)


def _finetune(tmp_path, *args):
    return bebias("finetune", "--data", TINY, "--frames", "4", "--size", "32", "--batch-size", "4", "--max-steps",
                  "3", "--workers", "0", *args)


def test_finetune_debias_trains_and_records_it(tmp_path):
    r = _finetune(tmp_path, "--debias", "stillmix", "--out", str(tmp_path / "a"))
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "a" / "config.json").read_text())["debias"] == "stillmix"
    plain = _finetune(tmp_path, "--out", str(tmp_path / "b"))
    assert plain.returncode == 0, plain.stderr
    from bebias.models.open import load_classifier

    wa = load_classifier(str(tmp_path / "a" / "model.pth"))[0].fc.weight
    wb = load_classifier(str(tmp_path / "b" / "model.pth"))[0].fc.weight
    assert not torch.equal(wa, wb)  # the augmentation reached the model
    bad = _finetune(tmp_path, "--debias", "mixup", "--out", str(tmp_path / "c"))
    assert bad.returncode == 2 and "--debias must be one of be, stillmix, fame" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_a_run_started_before_a_setting_existed_still_resumes(tmp_path):
    """resume_checkpoint: a key missing from the saved config matches only at its default."""
    from bebias.checkpoint import save_checkpoint
    from bebias.errors import BebiasError
    from bebias.training.finetune import FinetuneConfig
    from bebias.training.loop import resume_checkpoint

    cfg = FinetuneConfig(data=TINY)
    old = {k: v for k, v in cfg.to_dict().items() if k != "debias"}
    save_checkpoint(tmp_path / "last.pth", {"kind": "classifier", "arch": "small3d", "config": old})
    defaults = FinetuneConfig().to_dict()
    assert resume_checkpoint(str(tmp_path / "last.pth"), cfg.to_dict(), defaults) is not None
    with pytest.raises(BebiasError, match="different config"):
        resume_checkpoint(str(tmp_path / "last.pth"), FinetuneConfig(data=TINY, debias="be").to_dict(), defaults)
    with pytest.raises(BebiasError, match="different config"):  # without the defaults: strict, as before
        resume_checkpoint(str(tmp_path / "last.pth"), cfg.to_dict())
