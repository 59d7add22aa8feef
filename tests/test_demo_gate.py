"""The demo's positive-control gate and conclusions (on fabricated metrics), its reference
checkpoint (hash-pinned, read through the normal path) and its parallel trainings."""

from __future__ import annotations

import math
import os

import pytest
import torch

from bebias.errors import BebiasError
from bebias.workflows import reference as R
from bebias.workflows.gate import FAILED, NOT_CHECKED, PASSED, THRESHOLD, conclusions, positive_control_gate


def rows(biased_ci=(0.85, 0.95), control_ci=(0.0, 0.1), control_top1=0.95, no_signal=False):
    return [{"model": "supervised-biased", "conflict": 0.05, "conflict_bg_follow": 0.75, "reliance": 0.9,
             "reliance_ci": list(biased_ci), "reliance_no_signal": False},
            {"model": "supervised-unbiased", "conflict": control_top1, "conflict_bg_follow": 0.01,
             "reliance": 0.05, "reliance_ci": list(control_ci), "reliance_no_signal": no_signal}]


# -- the gate -----------------------------------------------------------------------------

def test_a_converged_control_passes():
    g = positive_control_gate(0.959)
    assert g.status == PASSED and g.passed and g.conflict_top1 == 0.959
    assert "positive control passed" in g.message and "95.9 %" in g.message
    assert g.to_json()["status"] == "passed"


@pytest.mark.parametrize("top1", [0.229, 0.0, THRESHOLD - 1e-4, None, math.nan])
def test_an_unconverged_or_unmeasured_control_fails(top1):
    g = positive_control_gate(top1)
    assert g.status == FAILED and not g.passed
    assert g.message.startswith("positive control failed") and "no conclusion is drawn" in g.message
    assert g.conflict_top1 is None or g.conflict_top1 == top1  # NaN is recorded as unknown (strict JSON)


def test_the_threshold_itself_passes():
    assert positive_control_gate(THRESHOLD).passed and THRESHOLD == 0.85


def test_at_fast_size_it_is_not_checked_even_when_the_number_is_high():
    g = positive_control_gate(1.0, checked=False)
    assert g.status == NOT_CHECKED and not g.passed
    assert g.message.startswith("positive control not checked at --fast size")


# -- conclusions ----------------------------------------------------------------------------

def test_a_failed_gate_draws_no_conclusion():
    g = positive_control_gate(0.22)
    said = conclusions(g, rows(control_top1=0.22))
    assert said == [g.message]
    assert not any("apart" in s for s in said)


def test_not_checked_draws_no_conclusion():
    g = positive_control_gate(0.9, checked=False)
    assert conclusions(g, rows()) == [g.message]


def test_a_passed_gate_with_cis_apart_says_the_probe_tells_them_apart():
    said = conclusions(positive_control_gate(0.95), rows())
    assert said[0].startswith("positive control passed")
    assert any(s.startswith("the probe tells them apart") and "not a difference across seeds" in s for s in said)
    assert any("75 % of conflict videos" in s for s in said)


@pytest.mark.parametrize("kw", [dict(biased_ci=(0.2, 0.9), control_ci=(0.0, 0.3)),  # CIs overlap
                                dict(no_signal=False, biased_ci=(None, None))])  # no CI: not apart
def test_a_passed_gate_without_separation_says_so(kw):
    said = conclusions(positive_control_gate(0.95), rows(**kw))
    assert any(s.startswith("the probe does not tell them apart") for s in said)
    assert not any(s.startswith("the probe tells them apart") for s in said)


# -- the reference checkpoint ------------------------------------------------------------

def _classifier_file(path, out="runs/x", bump=0.0):
    from bebias.checkpoint import save_checkpoint
    from bebias.training.finetune import FinetuneConfig, build_classifier, classifier_payload

    torch.manual_seed(0)
    cfg = FinetuneConfig(data="synthetic:classes=3", out=out)
    model = build_classifier(cfg, 3)
    with torch.no_grad():
        model.fc.bias.add_(bump)
    save_checkpoint(path, classifier_payload(model, cfg, ["a", "b", "c"], step=1))
    return str(path)


def test_weights_hash_ignores_the_run_folder_and_sees_a_changed_weight(tmp_path):
    a = _classifier_file(tmp_path / "a.pth", out="runs/a")
    b = _classifier_file(tmp_path / "b.pth", out="elsewhere/b")
    c = _classifier_file(tmp_path / "c.pth", out="runs/a", bump=1e-3)
    from bebias.checkpoint import file_sha256

    assert file_sha256(a) != file_sha256(b)  # the config (its out) is in the file
    assert R.weights_sha256(a) == R.weights_sha256(b)
    assert R.weights_sha256(a) != R.weights_sha256(c)


def test_a_damaged_or_unpinned_reference_is_refused_in_one_line(tmp_path, monkeypatch):
    f = _classifier_file(tmp_path / "ref.pth")
    from bebias.checkpoint import file_sha256

    good = R.Reference("x", "ref.pth", file_sha256(f), R.weights_sha256(f), R.SUPERVISED_UNBIASED.config, "cmd", {})
    monkeypatch.setattr(R, "shipped_path", lambda ref: f)
    assert R.verified(good) == f
    run = R.install(good, str(tmp_path / "run"))
    assert file_sha256(run) == good.sha256 and os.path.exists(tmp_path / "run" / "origin.json")
    with pytest.raises(BebiasError, match="damaged or replaced"):
        R.verified(R.Reference("x", "ref.pth", "0" * 64, "", good.config, "cmd", {}))
    with pytest.raises(BebiasError, match="no reference checkpoint"):
        R.verified(R.Reference("x", "ref.pth", "", "", good.config, "cmd", {}))
    monkeypatch.setattr(R, "shipped_path", lambda ref: str(tmp_path / "missing.pth"))
    with pytest.raises(BebiasError, match="missing from the installed package"):
        R.verified(good)


def test_the_shipped_reference_matches_its_pin_and_opens_like_any_checkpoint():
    ref = R.SUPERVISED_UNBIASED
    if not ref.sha256:
        pytest.skip("no reference checkpoint pinned in this build")
    path = R.verified(ref)
    assert R.weights_sha256(path) == ref.weights_sha256
    from bebias.models.open import load_classifier

    model, meta = load_classifier(path, torch.device("cpu"))
    assert meta.config["split"] == "train-unbiased" and meta.config["epochs"] == ref.config.epochs
    assert os.path.getsize(path) < 20 * 2**20  # small: small3d in fp32
    assert ref.measured["conflict_top1"] >= THRESHOLD


# -- trainings side by side --------------------------------------------------------------

TINY = "synthetic:classes=3,videos_per_class=4,test_videos_per_class=2,frames=12,size=32"


def _jobs(root):
    from bebias.training.finetune import FinetuneConfig
    from bebias.workflows.parallel import Job, Stage

    return [Job(n, (Stage(n, FinetuneConfig(data=TINY, split=split, epochs=1, batch_size=4, workers=0,
                                            out=os.path.join(root, n))),), cost=c)
            for n, split, c in (("a", "train", 2.0), ("b", "train-unbiased", 1.0))]


@pytest.mark.slow
def test_two_at_a_time_gives_the_weights_of_one_at_a_time(tmp_path):
    from bebias.workflows.parallel import run_jobs

    seen = []
    one = run_jobs(_jobs(str(tmp_path / "one")), 1)
    two = run_jobs(_jobs(str(tmp_path / "two")), 2, progress=lambda p: seen.append(p.stage), log=seen.append)
    assert one == two == {"a": ["trained"], "b": ["trained"]}
    assert {"a", "b"} <= set(seen)  # progress came back from the worker processes
    for n in ("a", "b"):
        assert R.weights_sha256(str(tmp_path / "one" / n / "model.pth")) == \
            R.weights_sha256(str(tmp_path / "two" / n / "model.pth"))
    again = []
    assert run_jobs(_jobs(str(tmp_path / "two")), 2, log=again.append) == {"a": ["reused"], "b": ["reused"]}
    assert sorted(again) == sorted(f"reusing {tmp_path / 'two' / n}/model.pth" for n in ("a", "b"))


def test_a_finished_run_of_another_recipe_is_not_reused(tmp_path):
    from dataclasses import replace

    from bebias.atomic import write_json
    from bebias.workflows.parallel import Job, Stage, run_job

    job = _jobs(str(tmp_path))[0]
    cfg = job.stages[0].config
    os.makedirs(cfg.out)
    _classifier_file(os.path.join(cfg.out, "model.pth"))
    write_json(os.path.join(cfg.out, "config.json"), replace(cfg, epochs=8).to_dict())
    with pytest.raises(BebiasError, match="another recipe.*epochs"):
        run_job(job)
    write_json(os.path.join(cfg.out, "config.json"), replace(cfg, workers=3).to_dict())  # workers aside
    assert run_job(Job("a", (Stage("a", cfg),))) == ["reused"]


# -- which models the full demo trains and which it loads ----------------------------------

def _plan(tmp_path, monkeypatch, *, pinned=True, seed=0, from_scratch=False):
    from dataclasses import replace

    from bebias.checkpoint import file_sha256
    from bebias.workflows import demo as D

    f = str(tmp_path / "shipped.pth")
    if not os.path.exists(f):
        _classifier_file(f)
    ref = replace(R.SUPERVISED_UNBIASED, sha256=file_sha256(f) if pinned else "", weights_sha256=R.weights_sha256(f))
    monkeypatch.setattr(D, "REF", ref)
    monkeypatch.setattr(R, "shipped_path", lambda r: f)
    names = [n.format(debias="be") for n, _ in D.MODELS]
    common = dict(data=D.FULL.data, batch_size=D.FULL.batch_size, workers=0, seed=seed)
    said: list[str] = []
    jobs, ckpts, loaded = D._training_jobs(D.FULL, names, "be", common, lambda *p: str(tmp_path.joinpath("runs", *p)),
                                           fast=False, from_scratch=from_scratch, log=said.append)
    return {j.name: j for j in jobs}, ckpts, loaded, said


def test_the_full_demo_loads_the_pinned_control_and_trains_the_rest(tmp_path, monkeypatch):
    jobs, ckpts, loaded, said = _plan(tmp_path, monkeypatch)
    assert loaded == {"supervised-unbiased"} and "supervised-unbiased" not in jobs and len(jobs) == 4
    assert R.weights_sha256(ckpts["supervised-unbiased"]) == R.weights_sha256(str(tmp_path / "shipped.pth"))
    assert any(s.startswith("loaded the reference checkpoint of supervised-unbiased") for s in said)
    # the biggest jobs (MoCo: pre-training + linear probe) are costed above a supervised one
    assert jobs["moco"].cost > 0 and jobs["supervised-biased"].cost > 0
    jobs, _, loaded, said = _plan(tmp_path, monkeypatch)  # run again: the installed copy is reused
    assert loaded == {"supervised-unbiased"} and not said


@pytest.mark.parametrize("kw, why", [(dict(from_scratch=True), None), (dict(seed=1), "the shipped reference is seed 0"),
                                     (dict(pinned=False), "no reference checkpoint is pinned")])
def test_otherwise_the_control_is_trained_by_the_reference_recipe(tmp_path, monkeypatch, kw, why):
    _plan(tmp_path, monkeypatch)  # an earlier run installed the reference here
    jobs, ckpts, loaded, said = _plan(tmp_path, monkeypatch, **kw)
    assert not loaded and not os.path.exists(ckpts["supervised-unbiased"])  # the copy is gone: retrained
    cfg = jobs["supervised-unbiased"].stages[0].config
    base = R.SUPERVISED_UNBIASED.config
    assert (cfg.data, cfg.split, cfg.epochs, cfg.batch_size) == (base.data, base.split, base.epochs, base.batch_size)
    assert cfg.seed == kw.get("seed", 0)
    assert (why is None and not said) or any(why in s for s in said)
    assert jobs["supervised-unbiased"].cost > jobs["moco"].cost  # the longest job starts first


def test_make_reference_trains_evaluates_copies_and_prints_the_pin(tmp_path, monkeypatch, capsys):
    """experiments/make_reference.py end to end on a tiny recipe: the printed pin is the copied file's."""
    import dataclasses
    import importlib.util
    import json
    import pathlib

    from bebias.checkpoint import file_sha256
    from bebias.training.finetune import FinetuneConfig

    path = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "make_reference.py"
    spec = importlib.util.spec_from_file_location("make_reference", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cfg = FinetuneConfig(data=TINY, split="train-unbiased", epochs=1, batch_size=4, workers=0,
                         out=str(tmp_path / "run"))
    monkeypatch.setattr(mod, "REF", dataclasses.replace(R.SUPERVISED_UNBIASED, config=cfg, file="tiny.pth"))
    monkeypatch.setattr(mod, "FULL", dataclasses.replace(mod.FULL, data=TINY))
    monkeypatch.setattr(mod, "shipped_path", lambda ref: str(tmp_path / "shipped" / ref.file))
    monkeypatch.setattr(mod, "set_threads", lambda: torch.get_num_threads())
    mod.main()
    pin = json.loads(capsys.readouterr().out)
    shipped = tmp_path / "shipped" / "tiny.pth"
    assert pin["sha256"] == file_sha256(str(shipped)) and pin["weights_sha256"] == R.weights_sha256(str(shipped))
    assert set(pin["measured"]) == {"iid_top1", "conflict_top1", "conflict_background_follow"}
    assert 0 <= pin["measured"]["conflict_top1"] <= 1
