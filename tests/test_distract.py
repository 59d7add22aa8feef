"""Distractors (bebias.distract): BE, its donor variant, the FAME mask and merge, temporal ops."""

import pytest
import torch

from bebias.distract import (background_erasing, fame_merge, motion_mask, reverse_frames, shuffle_frames,
                             static_clip, static_frame_from)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def clip(B=4, C=3, T=6, H=5, W=7, seed=0) -> torch.Tensor:
    return torch.randn(B, C, T, H, W, generator=gen(seed))


def frame_of(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """(B, C, 1, H, W): frame k_b of clip b."""
    return torch.stack([x[b, :, int(k[b])] for b in range(x.shape[0])]).unsqueeze(2)


# --------------------------------------------------------------------------------------
# Background Erasing
# --------------------------------------------------------------------------------------

def test_be_lam_zero_is_exact_identity():
    x = clip()
    out, info = background_erasing(x, lam=0.0, generator=gen())
    assert torch.equal(out, x)
    assert torch.equal(info["lam"], torch.zeros(4))


def test_be_static_video_unchanged_for_any_lam():
    x = clip(T=1).expand(-1, -1, 6, -1, -1).contiguous()  # every frame equal
    for lam in (0.0, 0.1, 0.29, 0.7, 1.0):
        out, _ = background_erasing(x, lam=lam, generator=gen())
        assert torch.equal(out, x), lam
    out, _ = background_erasing(x, lam_max=0.3, generator=gen(5))
    assert torch.equal(out, x)


def test_be_output_between_its_two_inputs_and_matches_recipe():
    x = clip(B=8, seed=1)
    for seed in range(5):
        out, info = background_erasing(x, lam_max=0.3, per_clip=True, generator=gen(seed))
        still = frame_of(x, info["frame"])
        lo, hi = torch.minimum(x, still), torch.maximum(x, still)
        assert bool(((out >= lo) & (out <= hi)).all())
        lam = info["lam"].view(-1, 1, 1, 1, 1)
        torch.testing.assert_close(out, (1 - lam) * x + lam * still)


def test_be_lam_range_shared_or_per_clip_and_frame_range():
    x = clip(B=16, T=5, H=2, W=2)
    shared, per, frames = [], [], []
    for seed in range(100):
        _, a = background_erasing(x, lam_max=0.3, generator=gen(seed))
        _, b = background_erasing(x, lam_max=0.3, per_clip=True, generator=gen(seed))
        assert (a["lam"] == a["lam"][0]).all()  # one lambda per mini-batch
        assert len(set(b["lam"].tolist())) > 1  # one per clip
        shared.append(a["lam"]), per.append(b["lam"]), frames.append(a["frame"])
    lams = torch.cat(shared + per)
    assert lams.min() >= 0 and lams.max() < 0.3
    assert lams.max() > 0.25 and lams.min() < 0.05  # spans the interval
    f = torch.cat(frames)
    assert f.dtype == torch.long and f.min() >= 0 and f.max() < 5
    assert set(f.tolist()) == set(range(5))  # every frame can be the static one
    assert len(set(frames[0].tolist())) > 1  # drawn per clip, not per batch


def test_be_same_seed_same_output_different_seed_differs():
    x = clip()
    a, ia = background_erasing(x, generator=gen(7))
    b, ib = background_erasing(x, generator=gen(7))
    c, _ = background_erasing(x, generator=gen(8))
    assert torch.equal(a, b) and torch.equal(ia["lam"], ib["lam"]) and torch.equal(ia["frame"], ib["frame"])
    assert not torch.equal(a, c)


def test_be_hand_case():
    # B=1, C=3, T=2, 1x1 pixels; frame 0 = (1, 2, 3), frame 1 = (5, 6, 7)
    x = torch.tensor([[1.0, 5.0], [2.0, 6.0], [3.0, 7.0]]).view(1, 3, 2, 1, 1)
    out, info = background_erasing(x, lam=0.25, frame_index=torch.tensor([1]))
    # frame 0: 0.75 * (1,2,3) + 0.25 * (5,6,7) = (2,3,4); frame 1 is the static frame itself
    expected = torch.tensor([[2.0, 5.0], [3.0, 6.0], [4.0, 7.0]]).view(1, 3, 2, 1, 1)
    assert torch.equal(out, expected)
    assert info["frame"].tolist() == [1] and info["lam"].tolist() == [0.25]
    out0, _ = background_erasing(x, lam=0.5, frame_index=0)
    assert torch.equal(out0[:, :, 1].flatten(), torch.tensor([3.0, 4.0, 5.0]))


def test_be_rejects_bad_overrides():
    x = clip(B=2, T=3)
    with pytest.raises(ValueError):
        background_erasing(x, frame_index=torch.tensor([0, 3]))
    with pytest.raises(ValueError):
        background_erasing(x, lam=1.5)
    with pytest.raises(ValueError):
        background_erasing(x, lam=torch.tensor([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError):
        background_erasing(x[0])


def test_static_frame_from_uses_the_donors_frame():
    # B=2, C=1, T=2, 1x1: clip 0 = (0, 2), clip 1 = (10, 30)
    x = torch.tensor([[0.0, 2.0], [10.0, 30.0]]).view(2, 1, 2, 1, 1)
    donor = x.roll(1, 0)  # clip 0's donor is clip 1 and vice versa
    out, info = static_frame_from(x, donor, lam=0.5, frame_index=torch.tensor([0, 1]))
    # clip 0 + donor frame 0 (= 10): (5, 6); clip 1 + donor frame 1 (= 2): (6, 16)
    assert out.flatten().tolist() == [5.0, 6.0, 6.0, 16.0]
    assert info["frame"].tolist() == [0, 1]
    x3 = clip(B=3, T=4)
    d3 = clip(B=3, T=9, seed=1)  # the donor may have another length
    out, info = static_frame_from(x3, d3, generator=gen(2))
    assert out.shape == x3.shape and info["frame"].max() < 9
    lam = info["lam"].view(-1, 1, 1, 1, 1)
    torch.testing.assert_close(out, (1 - lam) * x3 + lam * frame_of(d3, info["frame"]))


# --------------------------------------------------------------------------------------
# FAME
# --------------------------------------------------------------------------------------

def moving_square(size=32, T=8, side=16, x0=0, step=2, seed=0):
    """(1, 3, T, size, size): a bright square moving right over a static textured
    background (diagonal two-colour stripes plus pixel noise), and (size, size) bool: the
    region the square sweeps."""
    g = gen(seed)
    a, b = torch.rand(3, 1, 1, 1, generator=g) * 0.6, torch.rand(3, 1, 1, 1, generator=g) * 0.6
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    w = (torch.sin((xx + yy) * 0.7) + 1) / 2  # stripes, period ~9 px
    bg = a + (b - a) * w + 0.03 * torch.rand(3, 1, size, size, generator=g)
    x = bg.expand(3, T, size, size).clone()
    swept = torch.zeros(size, size, dtype=torch.bool)
    top = (size - side) // 2
    for t in range(T):
        c = x0 + step * t
        x[:, t, top: top + side, c: c + side] = torch.tensor([1.0, 0.9, 0.8]).view(3, 1, 1)
        swept[top: top + side, c: c + side] = True
    return x.unsqueeze(0), swept


def iou(mask: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    m = mask[:, 0, 0].bool()
    return (m & gt).flatten(1).sum(1) / (m | gt).flatten(1).sum(1)


@pytest.mark.parametrize("refine", [True, False])
def test_motion_mask_finds_a_moving_square(refine):
    x, swept = moving_square()  # sweeps 16 x 30 px = 47% of the frame: FAME keeps 50%
    m = motion_mask(x, refine=refine)
    assert m.shape == (1, 1, 1, 32, 32) and set(m.unique().tolist()) == {0.0, 1.0}
    assert int(m.sum()) == 512  # exactly half of the pixels
    assert iou(m, swept[None]).item() > 0.85
    xs, small = moving_square(side=8, step=1, x0=6)  # sweeps 8 x 15 px = 12%
    assert iou(motion_mask(xs, refine=refine, keep=None), small[None]).item() > 0.85


def test_motion_mask_is_per_clip_and_batched():
    a, _ = moving_square(seed=1)
    b, _ = moving_square(side=8, step=1, x0=4, seed=2)
    batch = torch.cat([a, b, a.flip(-1)])
    for kw in ({}, {"keep": None}, {"refine": False}):
        m = motion_mask(batch, **kw)
        each = torch.cat([motion_mask(c[None], **kw) for c in batch])
        assert torch.equal(m, each), kw
    with pytest.raises(ValueError):
        motion_mask(batch[:, :, :1])  # one frame has no motion


def benchmark_clips(camera: bool, n: int):
    from bebias.data.synth import SynthBenchmark, SynthConfig
    from bebias.data.transforms import KINETICS_MEAN, KINETICS_STD

    bench = SynthBenchmark(SynthConfig(frames=16, camera=camera), cache=False)
    xs, gts = [], []
    for i in range(n):
        v = bench.video("train", i)
        x = torch.from_numpy(v.frames).float().div(255).permute(3, 0, 1, 2)  # (3, T, H, W)
        xs.append((x - torch.tensor(KINETICS_MEAN).view(3, 1, 1, 1)) / torch.tensor(KINETICS_STD).view(3, 1, 1, 1))
        gts.append(torch.from_numpy(v.masks.any(axis=0)))  # union over time
    return torch.stack(xs), torch.stack(gts)


def test_motion_mask_on_the_embedded_benchmark():
    # measured on 32 videos (camera=False): FAME defaults IoU 0.30 (its 50% area caps the
    # IoU at ~0.32: the objects sweep ~16% of the frame), recall 0.95; keep=None,
    # refine=False IoU 0.79. Loose bounds on 16 of them:
    x, gt = benchmark_clips(camera=False, n=16)
    m = motion_mask(x)
    inter = (m[:, 0, 0].bool() & gt).flatten(1).sum(1)
    assert (inter / gt.flatten(1).sum(1)).mean() > 0.85  # the mask covers the object
    assert iou(m, gt).mean() > 0.25
    assert iou(motion_mask(x, keep=None, refine=False), gt).mean() > 0.6


def test_fame_merge_hand_case():
    x = torch.arange(8.0).view(1, 1, 2, 2, 2)  # frames [[0,1],[2,3]] and [[4,5],[6,7]]
    bg = torch.full_like(x, -1.0)
    mask = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(1, 1, 1, 2, 2)
    out = fame_merge(x, bg, mask)
    assert out.flatten().tolist() == [0.0, -1.0, -1.0, 3.0, 4.0, -1.0, -1.0, 7.0]
    xs, _ = moving_square()
    other = torch.zeros_like(xs)
    merged = fame_merge(xs, other)  # mask from motion_mask
    m = motion_mask(xs)
    assert torch.equal(merged, xs * m)
    with pytest.raises(ValueError):
        fame_merge(xs, other[:, :, :3])


# --------------------------------------------------------------------------------------
# temporal distractors
# --------------------------------------------------------------------------------------

def indexed(B: int, T: int) -> torch.Tensor:
    """(B, 2, T, 2, 2): every pixel of frame t of clip b holds 100 b + t."""
    v = 100.0 * torch.arange(B).view(B, 1, 1, 1, 1) + torch.arange(T).view(1, 1, T, 1, 1)
    return v.expand(B, 2, T, 2, 2).contiguous()


@pytest.mark.parametrize("T", [2, 3, 8])
def test_shuffle_is_a_permutation_never_the_identity(T):
    B = 64
    x = indexed(B, T)
    out = shuffle_frames(x, generator=gen(T))
    perm = (out[:, 0, :, 0, 0] - 100.0 * torch.arange(B).view(B, 1)).long()  # stays in its own clip
    assert (out == out[:, :1, :, :1, :1]).all()  # frames moved whole
    assert torch.equal(perm.sort(dim=1).values, torch.arange(T).expand(B, T))
    assert not (perm == torch.arange(T)).all(dim=1).any()
    if T > 2:  # T = 2 has a single non-identity permutation
        assert len({tuple(p) for p in perm.tolist()}) > 1  # random, not a fixed derangement
    assert torch.equal(out, shuffle_frames(x, generator=gen(T)))  # reproducible
    one = indexed(3, 1)
    assert torch.equal(shuffle_frames(one, generator=gen()), one)


def test_reverse_frames():
    x = indexed(2, 4)
    assert reverse_frames(x)[:, 0, :, 0, 0].tolist() == [[3, 2, 1, 0], [103, 102, 101, 100]]
    y = clip()
    assert torch.equal(reverse_frames(reverse_frames(y)), y)


def test_static_clip_frames_all_equal():
    x = clip(B=3, T=5)
    for k in (2, torch.tensor([0, 4, 1]), None):
        out = static_clip(x, k, generator=gen())
        assert out.shape == x.shape and out.is_contiguous()
        assert (out == out[:, :, :1]).all()
        if k is not None:
            ks = torch.as_tensor(k).expand(3)
            assert torch.equal(out[:, :, :1], frame_of(x, ks))
    assert torch.equal(static_clip(x, generator=gen(3)), static_clip(x, generator=gen(3)))
    assert not torch.equal(static_clip(x, frame_index=0), static_clip(x, frame_index=1))
    with pytest.raises(ValueError):
        static_clip(x, frame_index=5)
