"""The bootstrap (bebias.stats): the batched statistics the probe uses give, bit for bit, what
their one-replicate definitions give, so metrics.json does not depend on which form ran."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bebias import stats
from bebias.probing.metrics import accuracy_block, background_reliance, prediction_agreement
from bebias.probing.metrics.reliance import agreement_null, excess
from bebias.stats import bootstrap_ci, estimate, resamples, row_means

CASES = [(1, 3, 50, 0), (2, 2, 7, 1), (5, 7, 200, 2), (13, 9, 200, 3), (40, 10, 300, 4), (150, 40, 100, 5),
         (64, 101, 60, 6)]


def _probs(rng: np.random.Generator, n: int, k: int, conc: float = 0.3) -> np.ndarray:
    return rng.dirichlet(np.full(k, conc), size=n)


def test_resamples_are_one_integers_call_per_replicate_and_shared():
    rng = np.random.default_rng(4)
    want = np.stack([rng.integers(0, 9, 9) for _ in range(30)])
    got = resamples(9, 30, 4)
    assert np.array_equal(got, want)
    assert resamples(9, 30, 4) is got and not got.flags.writeable  # one draw, kept read-only


def test_row_means_is_the_one_dimensional_mean_bit_for_bit():
    rng = np.random.default_rng(0)
    for k in (1, 3, 8, 9, 17, 40, 130, 300):
        v = rng.uniform(size=(200, k)) / rng.integers(1, 30, size=(200, k))
        keep = rng.uniform(size=(200, k)) < rng.uniform(0.05, 1.0, size=(200, 1))
        got = row_means(v, keep)
        for b in range(200):
            ref = v[b][keep[b]].mean() if keep[b].any() else math.nan
            assert (math.isnan(ref) and math.isnan(got[b])) or got[b] == ref, (k, b)


@pytest.mark.parametrize("block", [1 << 18, 7])
def test_a_batched_statistic_equals_its_per_replicate_form(monkeypatch, block):
    monkeypatch.setattr(stats, "_BLOCK", block)  # 7: the replicates come in many blocks of rows
    v = np.random.default_rng(1).normal(size=23)
    one = estimate(lambda i: float(np.median(v[i]) - v[i].mean()), 23, n_boot=300, seed=3)
    many = estimate(lambda idx: np.median(v[idx], axis=1) - v[idx].mean(axis=1), 23, n_boot=300, seed=3,
                    batched=True)
    assert _same(one, many)
    with pytest.raises(ValueError, match="one value per replicate"):
        bootstrap_ci(lambda idx: np.zeros(3), 23, n_boot=300, batched=True)


def _same(a: dict, b: dict) -> bool:
    """Equal estimates, bit for bit (NaN equals NaN)."""
    return a.keys() == b.keys() and all(repr(float(a[k])) == repr(float(b[k])) for k in a)


def _kappa(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Cohen's kappa as a one-replicate statistic (the definition)."""
    po = float((a == b).mean())
    pe = float((np.bincount(a, minlength=k) / a.size) @ (np.bincount(b, minlength=k) / a.size))
    return math.nan if pe >= 1.0 - 1e-12 else (po - pe) / (1.0 - pe)


@pytest.mark.parametrize("n,k,n_boot,seed", CASES)
def test_probe_metrics_equal_their_per_replicate_definitions(n, k, n_boot, seed):
    rng = np.random.default_rng(seed)
    boot = {"n_boot": n_boot, "seed": seed}
    p, q, d = _probs(rng, n, k), _probs(rng, n, k), _probs(rng, n, k)
    y = rng.integers(0, k, n)
    c1 = (p.argmax(1) == y).astype(np.float64)

    def mean_class(i: np.ndarray) -> float:
        count = np.bincount(y[i], minlength=k)
        hits = np.bincount(y[i], weights=c1[i], minlength=k)
        return float((hits[count > 0] / count[count > 0]).mean())

    assert _same(accuracy_block(p, y, k, **boot)["mean_class"], estimate(mean_class, n, **boot))
    ya, yb = p.argmax(1), q.argmax(1)
    assert _same(prediction_agreement(p, q, **boot)["kappa"], estimate(lambda i: _kappa(ya[i], yb[i], k), n, **boot))
    const = np.zeros((n, k))
    const[:, 0] = 1.0
    assert all(math.isnan(x) for x in prediction_agreement(const, const, **boot)["kappa"].values())
    ys, yd = q.argmax(1), d.argmax(1)
    rel = background_reliance(p, q, d, **boot)
    ref = estimate(lambda i: excess(float((ys[i] == yd[i]).mean()), agreement_null(ys[i], yd[i], k)), n, **boot)
    assert _same({key: rel[key] for key in ref}, ref)
