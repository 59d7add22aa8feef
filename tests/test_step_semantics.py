"""What one pre-training step feeds to which encoder, and what it leaves in the queue.

A real ``pretrain`` run (tiny config, 2 steps) is observed from outside: forward hooks on
the query / key backbones and heads record every clip each encoder received and every
embedding it produced; the training step's ``batch`` is recorded on its way in. Then:

* the KEY encoder received exactly the normalised clean view 2, and nothing else;
* the QUERY encoder received, per sample, ``(1-λ)·v1 + λ·v1[:, :, k]`` for a frame k of the
  same clip and ONE λ in (0, λmax) for the batch (recovered by least squares over k), plus
  the normalised intra-video negative; never a clean view 2;
* the logits are ``[q·k, q·queue, q·n] / τ`` with the queue as it stood at that step (the
  initial queue, then the same with the previous step's keys written in);
* after the run the checkpoint's queue holds the keys of both steps, in order, and the
  pointer moved by 2·B.

These checks are about behaviour, not about where inside ``MoCo.forward`` or the step the
work is done: the enqueue may happen in the forward, in a commit after it, or at the next
forward; only the state after a finished step is examined.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bebias.checkpoint import load_checkpoint
from bebias.data.transforms import normalize
from bebias.models.backbones import build_backbone
from bebias.models.moco import MoCo
from bebias.training import loop
from bebias.training.pretrain import PretrainConfig, pretrain
from tiny import tiny_pretrain

B, K, STEPS, TAU, LAM_MAX = 4, 10, 2, 0.07, 0.3


class Recorder:
    """Per step: the batch, the clips into / embeddings out of each encoder, MoCo's output."""

    def __init__(self) -> None:
        self.steps: list[dict] = []
        self.moco: MoCo | None = None

    @property
    def cur(self) -> dict:
        return self.steps[-1]

    def attach(self, moco: MoCo) -> None:
        self.moco = moco

        def rec(key):
            def hook(_m, args, out):
                if self.steps:  # ignore anything outside a training step
                    self.cur[key + "_in"].append(args[0].detach().float().clone())
                    self.cur[key + "_out"].append(out.detach().float().clone())
            return hook

        moco.backbone_q.register_forward_hook(rec("bq"))
        moco.backbone_k.register_forward_hook(rec("bk"))
        moco.head_q.register_forward_hook(rec("hq"))
        moco.head_k.register_forward_hook(rec("hk"))

        def pre(_m, _args):
            if self.steps:
                self.cur["queue_before"].append(moco.queue.detach().clone())

        def post(_m, _args, out):
            if self.steps:
                self.cur["out"].append({k: v.detach().float().clone() for k, v in out.items()
                                        if isinstance(v, torch.Tensor)})

        moco.register_forward_pre_hook(pre)
        moco.register_forward_hook(post)

    def new_step(self, batch: dict, step: int) -> None:
        self.steps.append({"step": step, "batch": {k: v.clone() if isinstance(v, torch.Tensor) else v
                                                   for k, v in batch.items()},
                           **{f"{e}_{d}": [] for e in ("bq", "bk", "hq", "hk") for d in ("in", "out")},
                           "queue_before": [], "out": []})


def _cfg(tmp_path, **kw) -> PretrainConfig:
    base = dict(batch_size=B, max_steps=STEPS, queue_size=K, temperature=TAU, be_lambda_max=LAM_MAX, seed=0)
    return tiny_pretrain(str(tmp_path / "run"), **{**base, **kw})


def _observed_pretrain(tmp_path, monkeypatch, **kw) -> tuple[PretrainConfig, Recorder, dict]:
    """Run ``pretrain`` with recording; returns the config, the record and the final checkpoint."""
    rec = Recorder()
    orig_init, orig_run = MoCo.__init__, loop.run

    def init(self, *a, **k):
        orig_init(self, *a, **k)
        rec.attach(self)

    def run(*a, **k):
        step_fn = k["step_fn"]

        def recorded_step(batch, step, *sa, **sk):
            rec.new_step(batch, step)
            return step_fn(batch, step, *sa, **sk)

        return orig_run(*a, **{**k, "step_fn": recorded_step})

    monkeypatch.setattr(MoCo, "__init__", init)
    monkeypatch.setattr(loop, "run", run)
    cfg = _cfg(tmp_path, **kw)
    res = pretrain(cfg)
    assert res.steps == STEPS and res.skipped_steps == 0
    assert len(rec.steps) == STEPS and all(len(s["out"]) == 1 for s in rec.steps)
    return cfg, rec, load_checkpoint(res.model_path)


def _views(cfg: PretrainConfig, st: dict) -> tuple[torch.Tensor, torch.Tensor]:
    v = normalize(st["batch"]["clip"], cfg.clip_spec).double()  # (B, 2, 3, T, H, W)
    assert v.shape[:2] == (B, 2)
    return v[:, 0], v[:, 1]


def _fit_static_mix(x: torch.Tensor, v: torch.Tensor) -> tuple[float, float, int]:
    """Best (relative residual, λ, k) of x ≈ (1-λ)·v + λ·v[:, k] (v, x: (C, T, H, W)) over frames k."""
    best = (float("inf"), float("nan"), -1)
    r = x - v
    for k in range(v.shape[1]):
        d = v[:, k:k + 1] - v
        dd = float((d * d).sum())
        if dd == 0:
            continue
        lam = float((r * d).sum()) / dd
        res = float((r - lam * d).norm() / v.norm())
        if res < best[0]:
            best = (res, lam, k)
    return best


def _row_match(rows: torch.Tensor, x: torch.Tensor, atol: float = 1e-5) -> list[int]:
    """Indices of the rows of ``rows`` (N, ...) equal to ``x`` (...) within atol."""
    return [i for i in range(rows.shape[0]) if torch.allclose(rows[i].double(), x.double(), atol=atol, rtol=0)]


def _expected_initial_queue(cfg: PretrainConfig) -> torch.Tensor:
    return MoCo(build_backbone(cfg.arch), dim=cfg.dim, queue_size=cfg.queue_size).queue.clone()


def _check_key_encoder_got_clean_view2(cfg, st):
    _, v2 = _views(cfg, st)
    xk = torch.cat(st["bk_in"]).double()
    assert xk.shape == v2.shape, f"the key encoder received {tuple(xk.shape)} clips, expected the {B} clean views"
    torch.testing.assert_close(xk, v2, atol=1e-5, rtol=0,
                               msg="the key encoder did not receive the normalised clean view 2")


def _query_rows(st) -> tuple[torch.Tensor, torch.Tensor]:
    """Every clip through the query backbone in this step, and the matching query-head outputs."""
    xq, hq = torch.cat(st["bq_in"]).double(), torch.cat(st["hq_out"]).double()
    assert xq.shape[0] == hq.shape[0]
    return xq, hq


def _distracted_rows(cfg, st) -> tuple[list[int], float]:
    """For each sample b: the query-encoder row that is v1_b with a static frame of itself mixed in; λ."""
    v1, v2 = _views(cfg, st)
    xq, _ = _query_rows(st)
    rows, lams = [], []
    for b in range(B):
        assert not _row_match(xq, v2[b]), f"sample {b}: the clean view 2 went through the query encoder"
        fits = [(_fit_static_mix(xq[i], v1[b]), i) for i in range(xq.shape[0])]
        (res, lam, k), i = min(fits, key=lambda f: f[0][0])
        assert res < 1e-5, (f"sample {b}: no query-encoder input is view 1 with one of its own frames mixed in "
                            f"(best relative residual {res:.3g})")
        assert 0 < lam < cfg.be_lambda_max, f"sample {b}: λ = {lam} is not in (0, {cfg.be_lambda_max})"
        assert 0 <= k < v1.shape[2]
        rows.append(i)
        lams.append(lam)
    assert max(lams) - min(lams) < 1e-5, f"λ is drawn once per batch, got {lams}"
    assert lams[0] > 1e-3, "this seed's λ is too small to tell BE from no BE; pick another seed"
    return rows, lams[0]


def _negative_rows(cfg, st) -> list[int]:
    neg = normalize(st["batch"]["negative"], cfg.clip_spec).double()
    v1, _ = _views(cfg, st)
    xq, _ = _query_rows(st)
    rows = []
    for b in range(B):
        assert not torch.allclose(neg[b], v1[b]), "the negative clip should be another clip than view 1"
        hit = _row_match(xq, neg[b])
        assert hit, f"sample {b}: the intra-video negative never went through the query encoder"
        rows.append(hit[0])
    return rows


def test_be_step_routes_distracted_query_clean_key_negative_and_fills_the_queue(tmp_path, monkeypatch):
    cfg, rec, ck = _observed_pretrain(tmp_path, monkeypatch, method="be", intra_negative=True)
    q0 = _expected_initial_queue(cfg).double()
    queue = q0.clone()
    for s, st in enumerate(rec.steps):
        _check_key_encoder_got_clean_view2(cfg, st)
        q_rows, _ = _distracted_rows(cfg, st)
        n_rows = _negative_rows(cfg, st)
        xq, hq = _query_rows(st)
        assert xq.shape[0] == 2 * B, f"query encoder: {xq.shape[0]} clips, expected B distracted + B negatives"

        out = st["out"][0]
        q, k, logits = out["q"].double(), out["k"].double(), out["logits"].double()
        assert logits.shape == (B, 1 + K + 1), "logits must be [positive, K queue negatives, intra-video negative]"
        torch.testing.assert_close(q, F.normalize(hq[q_rows], dim=1), atol=1e-5, rtol=0,
                                   msg="q is not the query encoder's embedding of the distracted clip")
        k_own = F.normalize(torch.cat(st["hk_out"]).double(), dim=1)
        torch.testing.assert_close(k, k_own, atol=1e-5, rtol=0, msg="k is not the key encoder's embedding")
        n = F.normalize(hq[n_rows], dim=1)
        torch.testing.assert_close(logits[:, 0], (q * k).sum(1) / TAU, atol=1e-4, rtol=0)
        torch.testing.assert_close(logits[:, 1:1 + K], q @ queue / TAU, atol=1e-4, rtol=0,
                                   msg=f"step {s}: the queue negatives are not the queue as it stood "
                                       "(initial, plus the earlier steps' keys)")
        torch.testing.assert_close(logits[:, -1], (q * n).sum(1) / TAU, atol=1e-4, rtol=0,
                                   msg="the last logit column is not q·n/τ of the intra-video negative")
        if s == 0:
            torch.testing.assert_close(st["queue_before"][0].double(), q0, atol=0, rtol=0)
        ptr = s * B % K
        queue[:, ptr:ptr + B] = k.T  # what a correct step leaves behind (no wrap at these sizes)

    moco = ck["moco"]
    assert int(moco["queue_ptr"]) == STEPS * B % K, "the pointer must advance by B per step"
    torch.testing.assert_close(moco["queue"].double(), queue, atol=1e-6, rtol=0,
                               msg="the queue must hold exactly the keys of each step, in order, "
                                   "and the initial columns elsewhere")


def test_be_without_intra_negative_has_no_extra_column(tmp_path, monkeypatch):
    cfg, rec, _ = _observed_pretrain(tmp_path, monkeypatch, method="be", intra_negative=False)
    st = rec.steps[0]
    _check_key_encoder_got_clean_view2(cfg, st)
    _distracted_rows(cfg, st)
    assert torch.cat(st["bq_in"]).shape[0] == B
    assert st["out"][0]["logits"].shape == (B, 1 + K)


def test_moco_step_routes_view1_to_query_view2_to_key(tmp_path, monkeypatch):
    cfg, rec, ck = _observed_pretrain(tmp_path, monkeypatch, method="moco")
    for st in rec.steps:
        v1, _ = _views(cfg, st)
        _check_key_encoder_got_clean_view2(cfg, st)
        torch.testing.assert_close(torch.cat(st["bq_in"]).double(), v1, atol=1e-5, rtol=0,
                                   msg="MoCo: the query encoder must receive view 1 unchanged")
        assert st["out"][0]["logits"].shape == (B, 1 + K)
    assert int(ck["moco"]["queue_ptr"]) == STEPS * B % K


@pytest.mark.parametrize("with_negative", [True, False])
def test_moco_forward_routes_each_input_to_its_encoder(with_negative):
    """MoCo alone: x_q (and x_neg) through the query encoder, x_k through the key encoder; the
    keys, and only they, land in the queue once the step is finished (commit, where MoCo has one)."""
    torch.manual_seed(0)
    moco = MoCo(build_backbone("small3d"), dim=8, queue_size=K, temperature=TAU)
    rec = Recorder()
    rec.attach(moco)
    rec.new_step({}, 0)
    x_q, x_k, x_neg = (torch.randn(B, 3, 4, 16, 16) for _ in range(3))
    q0 = moco.queue.clone()
    out = moco(x_q, x_k, x_neg if with_negative else None)
    commit = getattr(moco, "commit", None)
    if commit is not None:
        commit()
    st = rec.cur
    torch.testing.assert_close(torch.cat(st["bk_in"]), x_k, atol=0, rtol=0)
    xq = torch.cat(st["bq_in"])
    expect = [x_q, x_neg] if with_negative else [x_q]
    assert xq.shape[0] == len(expect) * B
    for x in expect:
        for b in range(B):
            assert _row_match(xq, x[b], atol=0), "a query-side clip did not reach the query encoder"
    assert not any(_row_match(xq, x_k[b], atol=0) for b in range(B)), "x_k reached the query encoder"
    q, k, logits = out["q"], out["k"], out["logits"]
    assert logits.shape == (B, 1 + K + int(with_negative))
    torch.testing.assert_close(logits[:, 1:1 + K], q.detach() @ q0 / TAU, atol=1e-4, rtol=0)
    if with_negative:
        hq = torch.cat(st["hq_out"])
        n = F.normalize(hq[[_row_match(xq, x_neg[b], atol=0)[0] for b in range(B)]], dim=1)
        torch.testing.assert_close(logits[:, -1], (q * n).sum(1).detach() / TAU, atol=1e-4, rtol=0)
    torch.testing.assert_close(moco.queue[:, :B], k.T, atol=1e-6, rtol=0)
    torch.testing.assert_close(moco.queue[:, B:], q0[:, B:], atol=0, rtol=0)
    assert int(moco.queue_ptr) == B
