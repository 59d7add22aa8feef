"""The headline background-reliance score on simulated probe runs (N = 128, K = 8): its
anchors (random, both oracles, weak motion models) and its monotonicity in a mixture,
through the probe's own assembly (compute_metrics), plus a hand computation."""

import numpy as np
import pytest
import torch

import reliance_sim as S
from bebias.probing.assemble import compute_metrics
from bebias.probing.metrics import agreement_null, background_reliance
from bebias.probing.suite import ALL_VARIANTS, ProbeSuite

CLASSES = [f"c{i}" for i in range(S.K)]
SEEDS = range(5)


def reliance(model, split: str = "iid", seed: int = 0, **kw) -> dict:
    rows = S.simulate(model, split, seed, **kw)
    rel = compute_metrics(rows, CLASSES, ProbeSuite(n_boot=200), seed=seed)["background_reliance"]
    assert rel["n"] == S.N and rel["n_without_reference"] == 0
    for c in rel["components"].values():  # every component comes with its null from this run
        assert c is not None and 0.0 <= c["null"] <= 1.0 and c["n"] == S.N
    return rel


@pytest.mark.parametrize("split", ["iid", "conflict"])
def test_random_decisions_are_no_signal_never_reliance(split):
    rels = [reliance(S.random_model, split, seed) for seed in SEEDS]
    assert all(r["value"] <= 0.1 for r in rels), [r["value"] for r in rels]
    assert sum(r["no_signal"] for r in rels) >= 4  # a 95 % CI clears its null by chance now and then
    for r in rels:  # the null is chance for uniform decisions: 1/K
        assert r["components"]["background_follow"]["null"] == pytest.approx(1 / S.K, abs=0.02)


@pytest.mark.parametrize("split", ["iid", "conflict"])
@pytest.mark.parametrize("mapping", ["usual-scene", "arbitrary"])
def test_background_oracle_scores_one(split, mapping):
    perm = None if mapping == "usual-scene" else np.random.default_rng(3).permutation(S.K)
    for seed in SEEDS:
        r = reliance(S.background_oracle(perm), split, seed)
        assert r["value"] >= 0.95 and not r["no_signal"]
        assert r["components"]["background_follow"]["value"] == 1.0


@pytest.mark.parametrize("split", ["iid", "conflict"])
def test_motion_oracle_scores_zero(split):
    for seed in SEEDS:
        r = reliance(S.motion_oracle, split, seed)
        assert r["value"] <= 0.05 and not r["no_signal"]
        assert r["components"]["motion_follow"]["value"] == 1.0


@pytest.mark.parametrize("accuracy", [0.25, 0.6])
def test_motion_only_model_with_noise_errors_scores_near_zero(accuracy):
    for seed in SEEDS:
        r = reliance(S.motion_noise(accuracy), "iid", seed)
        assert r["value"] <= 0.1, (accuracy, seed, r["value"])
    assert not reliance(S.motion_noise(0.6))["no_signal"]  # its swaps follow the motion beyond chance


@pytest.mark.parametrize("bare_scene", [False, True])
def test_mixing_the_oracles_moves_the_score_monotonically(bare_scene):
    """A share p of the clips decided by the background oracle, the rest by the motion
    oracle; with ``bare_scene`` the background-only clips are read as the background oracle
    reads them (nothing else is in them)."""
    ps = np.linspace(0, 1, 6)
    for seed in range(3):
        kw = {"bg_only_model": S.background_oracle()} if bare_scene else {}
        v = [reliance((S.motion_oracle, S.background_oracle(), p), "iid", seed, **kw)["value"] for p in ps]
        assert all(b >= a for a, b in zip(v, v[1:])), v
        if bare_scene:  # ~p: strictly increasing
            assert all(b > a for a, b in zip(v, v[1:])), v
        # ~p**2 clip by clip: a clip follows its background only if the donor's bare scene was
        # read by the background oracle as well; at p = 0.2 that is within chance, clipped to 0
        assert v[0] <= 0.05 and v[-1] >= 0.95 and v[3] > v[1]


def test_background_reliance_hand_computed():
    s = S.onehot(np.array([1, 1, 0, 2]))  # decisions on the swaps (K = 8; classes 0-2 used)
    b = S.onehot(np.array([1, 0, 0, 2]))  # on the donors' background-only clips
    o = S.onehot(np.array([0, 1, 2, 0]))  # on the originals
    r = background_reliance(o, s, b, sufficiency_probs=(o, b), n_boot=200)
    c = r["components"]
    # background-follow: s = b on videos 0, 2, 3 -> 3/4; q_s = (1, 2, 1)/4, q_b = (2, 1, 1)/4
    #   null = (1*2 + 2*1 + 1*1)/16 = 5/16; score = (12/16 - 5/16) / (11/16) = 7/11
    assert c["background_follow"]["value"] == pytest.approx(3 / 4)
    assert c["background_follow"]["null"] == pytest.approx(5 / 16)
    assert r["value"] == pytest.approx(7 / 11)
    # motion-follow: s = o on video 1 -> 1/4; q_o = (2, 1, 1)/4 -> null 5/16
    assert c["motion_follow"]["value"] == pytest.approx(1 / 4) and c["motion_follow"]["null"] == pytest.approx(5 / 16)
    # sufficiency: o = (0, 1, 2, 0) and b = (1, 0, 0, 2) agree nowhere; null = (2*2 + 1*1 + 1*1)/16
    assert c["sufficiency"]["value"] == 0.0 and c["sufficiency"]["null"] == pytest.approx((2 * 2 + 1 + 1) / 16)
    assert r["ci_low"] <= r["value"] <= r["ci_high"] and r["no_signal"] in (True, False)
    assert "null" in r["definition"] and "background_follow" in r["definition"]
    # below chance is no reliance: clipped at 0; a constant model is undefined and no signal
    assert background_reliance(o, s, S.onehot(np.array([2, 0, 1, 1])), n_boot=50)["value"] == 0.0
    const = background_reliance(o, S.onehot(np.zeros(4, int)), S.onehot(np.zeros(4, int)), n_boot=50)
    assert np.isnan(const["value"]) and const["no_signal"]


def test_agreement_null_is_the_permutation_mean():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 3, 7), rng.integers(0, 3, 7)
    perms = [rng.permutation(7) for _ in range(20000)]
    sampled = np.mean([(a[p] == b).mean() for p in perms])
    assert agreement_null(a, b, 3) == pytest.approx(sampled, abs=0.01)


def test_background_reliance_refuses_misaligned_inputs():
    with pytest.raises(ValueError, match="rows"):
        background_reliance(S.onehot(np.zeros(3, int)), S.onehot(np.zeros(4, int)), S.onehot(np.zeros(4, int)))
    with pytest.raises(ValueError, match="classes"):
        background_reliance(np.eye(3), np.eye(3), np.eye(4)[:3])


def test_swaps_without_a_donor_reference_are_counted_out():
    rows = S.simulate(S.background_oracle())
    # the background-only clips of videos 0-9 missing (unusable masks)
    keep = ~((rows["variant"] == ALL_VARIANTS.index("background-only")) & (rows["video"] < 10))
    cut = {k: v[keep] for k, v in rows.items()}
    rel = compute_metrics(cut, CLASSES, ProbeSuite(n_boot=50))["background_reliance"]
    swap = rows["variant"] == ALL_VARIANTS.index("swap-background")
    expect = int((rows["donor"][swap] < 10).sum())
    assert rel["n_without_reference"] == expect and rel["n"] == S.N - expect
    assert rel["components"]["sufficiency"]["n"] == S.N - 10
    # no donors recorded (an image / stripes swap): no headline
    nod = {**rows, "donor": np.full_like(rows["donor"], -1)}
    m = compute_metrics(nod, CLASSES, ProbeSuite(n_boot=50))
    assert m["background_reliance"] is None and m["headline"]["background_reliance"] is None


def test_cli_summary_shows_the_parts_their_nulls_and_no_signal():
    from bebias.cli.probe import reliance_summary
    from bebias.probing.assemble import jsonable

    rand = jsonable(reliance(S.random_model, "iid", 0))
    assert rand["no_signal"]
    line = reliance_summary(rand)
    assert "no signal" in line and line.count("(null ") == 3 and "background follow" in line
    motion = jsonable(reliance(S.motion_oracle))
    line = reliance_summary(motion)
    assert "no signal" not in line and "motion follow 1.000 (null 0.125)" in line
    undefined = {**motion, "value": None, "ci_low": None, "ci_high": None}
    assert "undefined" in reliance_summary(undefined)


class _PixelHash(torch.nn.Module):
    """Effectively random decisions: logits = W2 · sin(gain · W1 · pixels). Any change of the
    pixels (an actor moved onto another plate, the actor removed) scrambles the decision, so
    neither cue is followed: (B, 3, T, H, W) -> (B, K)."""

    def __init__(self, n_in: int, k: int, gain: float = 1e3) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w1 = torch.nn.Parameter(torch.randn(n_in, 64, generator=g) / n_in ** 0.5)
        self.w2 = torch.nn.Parameter(torch.randn(64, k, generator=g))
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.gain * (x.flatten(1) @ self.w1)) @ self.w2


def test_a_model_with_random_decisions_probed_through_the_cli_is_not_background_reliant(tmp_path):
    """Issue 19's check: a pixel-hash model exported with torch.export, probed from the command
    line on the benchmark's conflict split, is reported as no signal (or within 0.1 of 0)."""
    import json
    import os
    import subprocess
    import sys

    k, shape = 4, (3, 4, 32, 32)
    net = _PixelHash(int(np.prod(shape)), k).eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    ep = torch.export.export(net, (torch.randn(2, *shape),), dynamic_shapes=({0: batch},))
    path = tmp_path / "hash.pt2"
    torch.export.save(ep, str(path))
    out = tmp_path / "probe"
    r = subprocess.run([sys.executable, "-m", "bebias", "probe", str(path), "--swap-backgrounds", "--background-only",
                        "--data", "synthetic:classes=4,videos_per_class=2,test_videos_per_class=24,frames=12",
                        "--split", "conflict", "--max-videos", "96", "--frames", "4", "--size", "32",
                        "--out", str(out)], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    rel = json.loads((out / "metrics.json").read_text())["background_reliance"]
    assert rel is not None and rel["components"]["background_follow"]["n"] >= 64
    assert rel["no_signal"] or rel["value"] <= 0.1, rel
    assert "background reliance" in r.stdout and ("no signal" in r.stdout or f"{rel['value']:.3f}" in r.stdout)
