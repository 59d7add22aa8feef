"""Property-based tests (hypothesis): BE and every probe variant on arbitrary small clips
keep their shapes, dtypes and value ranges and satisfy the identities they promise; the
reliance metric does not depend on what the classes are called."""

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bebias import distract
from bebias.probing import metrics as M
from bebias.probing import testsets as TS

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def scenes(draw):
    """(clip (T,H,W,3) uint8, mask (T,H,W) bool, plate (H,W,3) uint8, foreground (T,H,W,3))
    with clip = foreground where mask, plate elsewhere: a moving actor over a still scene."""
    T = draw(st.integers(1, 6))
    H = draw(st.integers(2, 9))
    W = draw(st.integers(2, 9))
    plate = draw(arrays(np.uint8, (H, W, 3)))
    fg = draw(arrays(np.uint8, (T, H, W, 3)))
    mask = draw(arrays(np.bool_, (T, H, W)))
    clip = np.where(mask[..., None], fg, plate[None])
    return clip, mask, plate, fg


@st.composite
def float_clips(draw):
    B = draw(st.integers(1, 3))
    T = draw(st.integers(1, 5))
    H = draw(st.integers(1, 6))
    x = draw(arrays(np.float32, (B, 3, T, H, H), elements=st.floats(-3, 3, width=32)))
    return torch.from_numpy(x)


# ------------------------------------------------------------------ Background Erasing

@SETTINGS
@given(float_clips(), st.floats(0, 1), st.integers(0, 2**31 - 1))
def test_be_shape_dtype_and_stays_between_frame_and_still(x, lam_max, seed):
    out, info = distract.background_erasing(x, lam_max, generator=torch.Generator().manual_seed(seed))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert ((info["lam"] >= 0) & (info["lam"] < max(lam_max, 1e-30)) | (info["lam"] == 0)).all()
    still = x[torch.arange(x.shape[0]), :, info["frame"]].unsqueeze(2)
    lo, hi = torch.minimum(x, still), torch.maximum(x, still)
    assert (out >= lo - 1e-6).all() and (out <= hi + 1e-6).all()  # a convex mix of the two


@SETTINGS
@given(float_clips(), st.floats(0, 1))
def test_be_leaves_a_static_clip_unchanged(x, lam):
    static = x[:, :, :1].expand_as(x).contiguous()
    out, _ = distract.background_erasing(static, lam=lam)
    assert torch.equal(out, static)


@SETTINGS
@given(float_clips())
def test_be_with_lambda_zero_is_the_identity(x):
    out, _ = distract.background_erasing(x, lam=0.0)
    assert torch.equal(out, x)


# ------------------------------------------------------------------ probe variants

@SETTINGS
@given(scenes())
def test_swap_onto_own_plate_with_own_mask_reproduces_the_clip(scene):
    clip, mask, plate, _ = scene
    v = TS.swap_background(clip, mask, plate)
    assert v["frames"].dtype == np.uint8 and np.array_equal(v["frames"], clip)


@SETTINGS
@given(scenes(), st.integers(0, 2**31 - 1))
def test_swap_keeps_foreground_and_places_new_background(scene, seed):
    clip, mask, _, _ = scene
    T, H, W = mask.shape
    new = np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)
    f = TS.swap_background(clip, mask, new)["frames"]
    assert f.shape == clip.shape and f.dtype == np.uint8
    assert np.array_equal(f[mask], clip[mask])
    assert np.array_equal(f[~mask], np.broadcast_to(new, clip.shape)[~mask])


@SETTINGS
@given(scenes())
def test_reverse_twice_is_the_identity(scene):
    clip, mask, _, _ = scene
    once = TS.reverse(clip, mask=mask)
    twice = TS.reverse(once["frames"], mask=once["mask"])
    assert np.array_equal(twice["frames"], clip) and np.array_equal(twice["mask"], mask)


@SETTINGS
@given(scenes(), st.integers(0, 2**31 - 1))
def test_shuffle_is_a_permutation_of_the_frames(scene, seed):
    clip, mask, _, _ = scene
    v = TS.shuffle(clip, seed, mask=mask)
    perm = v["meta"]["perm"]
    assert sorted(perm) == list(range(len(clip)))
    assert len(clip) == 1 or perm != list(range(len(clip)))  # never the identity
    assert np.array_equal(v["frames"], clip[perm]) and np.array_equal(v["mask"], mask[perm])


@SETTINGS
@given(scenes(), st.integers(0, 2**31 - 1))
def test_static_frame_repeats_one_frame_of_the_clip(scene, seed):
    clip, _, _, _ = scene
    v = TS.static_frame(clip, rng=seed)
    k = v["meta"]["frame"]
    assert v["frames"].shape == clip.shape and (v["frames"] == clip[k][None]).all()


@SETTINGS
@given(scenes(), st.sampled_from(["still", "plate", "inpaint"]))
def test_background_only_shapes_and_the_still_plate_is_the_scene(scene, fill):
    clip, mask, plate, _ = scene
    v = TS.background_only(clip, mask, fill)
    assert v["frames"].shape == clip.shape and v["frames"].dtype == np.uint8 and v["mask"] is None
    if fill == "still":  # no motion left, and wherever the scene was ever seen, it is the scene
        f = v["frames"]
        assert (f == f[:1]).all()
        seen = ~mask.all(axis=0)
        assert np.array_equal(f[0][seen], plate[seen])


@SETTINGS
@given(scenes())
def test_foreground_only_keeps_the_actor_exactly(scene):
    clip, mask, _, _ = scene
    v = TS.foreground_only(clip, mask)
    assert v["frames"].shape == clip.shape and v["frames"].dtype == np.uint8
    assert np.array_equal(v["frames"][mask], clip[mask])
    # the background is one still colour
    bg = v["frames"][~mask]
    assert len(bg) == 0 or (bg == bg[0]).all()


# ------------------------------------------------------------------ metric invariance

@SETTINGS
@given(st.integers(2, 6), st.integers(8, 40), st.integers(0, 2**31 - 1))
def test_reliance_does_not_depend_on_class_names(K, N, seed):
    rng = np.random.default_rng(seed)
    orig, swap, donor_bo = (rng.dirichlet(np.ones(K), N) for _ in range(3))
    perm = rng.permutation(K)  # relabel: old class c is called perm[c]
    inv = np.argsort(perm)
    kw = dict(seed=1, n_boot=50)
    a = M.background_reliance(orig, swap, donor_bo, sufficiency_probs=(orig, donor_bo), **kw)
    b = M.background_reliance(orig[:, inv], swap[:, inv], donor_bo[:, inv],
                              sufficiency_probs=(orig[:, inv], donor_bo[:, inv]), **kw)
    for name in M.RELIANCE_COMPONENTS:
        assert a["components"][name]["value"] == b["components"][name]["value"]
        assert np.isclose(a["components"][name]["null"], b["components"][name]["null"])
    assert a["no_signal"] == b["no_signal"]
    assert (np.isnan(a["value"]) and np.isnan(b["value"])) or np.isclose(a["value"], b["value"])
