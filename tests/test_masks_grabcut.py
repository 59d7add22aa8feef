"""Motion-seeded GrabCut masks (bebias.probing.masks.grabcut) and the general camera model
(bebias.probing.masks.camera): held-out benchmark IoU, camera pans, a moving square,
determinism."""

import cv2
import numpy as np
import pytest

from bebias.data.sampling import center_clip
from bebias.data.synth import SynthConfig, render_video, split_specs
from bebias.probing.masks import (DEFAULT_METHOD, METHODS, camera_transforms, mask_iou, motion_masks)

NEW = ("grabcut", "grabcut-refine")


def texture(size: int, seed: int = 0) -> np.ndarray:
    """A (size, size, 3) uint8 scene with structure at several scales (corners to track,
    no period to alias): blurred noise plus random rectangles."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3)).astype(np.float32), (0, 0), 2.0)
    img = (img - img.mean()) * 3 + 128
    for _ in range(size // 6):
        y, x = rng.integers(0, size - 8, 2)
        h, w = rng.integers(3, 10, 2)
        img[y:y + h, x:x + w] = rng.integers(0, 256, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


def camera_clip(T: int, S: int, affines: list[np.ndarray], scene: np.ndarray) -> np.ndarray:
    """Frames t = the scene seen through ``affines[t]`` (2 x 3: frame pixel -> scene pixel)."""
    return np.stack([cv2.warpAffine(scene, a, (S, S), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                    borderMode=cv2.BORDER_REFLECT) for a in affines[:T]])


def square_clip(T=8, S=48, side=12, step=2, pan=(0, 0), seed=1):
    """A static (or integer-panned) textured scene with a uniform square moving right by
    ``step`` px per frame; returns (clip, ground-truth masks)."""
    scene = texture(S + 2 * 16, seed)
    frames, masks = [], []
    for t in range(T):
        oy, ox = 16 + pan[0] * t, 16 + pan[1] * t
        f = scene[oy:oy + S, ox:ox + S].copy()
        m = np.zeros((S, S), bool)
        m[18:18 + side, 6 + step * t:6 + step * t + side] = True
        f[m] = (250, 30, 30)
        frames.append(f)
        masks.append(m)
    return np.stack(frames), np.stack(masks)


# --------------------------------------------------------------------------------------
# the benchmark, held out from the tuning (seed 1, train): seed 2, iid
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def heldout():
    """One iid video per class of a seed-2 benchmark (camera pan on), cut as the probe
    cuts clips: 8 frames at stride 2 (the demo's checkpoint) and 16 at stride 1."""
    cfg = SynthConfig(seed=2)
    seen, out = set(), []
    for spec in split_specs(cfg, "iid"):
        if spec.label in seen:
            continue
        seen.add(spec.label)
        out.append(render_video(cfg, spec))
    return out


@pytest.mark.parametrize("frames,stride", [(8, 2), (16, 1)])
def test_default_method_reaches_iou_08_on_heldout_benchmark(heldout, frames, stride):
    idx = center_clip(32, frames, stride)
    ious = {m: [] for m in ("diff", DEFAULT_METHOD)}
    for v in heldout:
        for m in ious:
            ious[m].append(mask_iou(motion_masks(v.frames[idx], m), v.masks[idx]))
    mean = {m: float(np.mean(x)) for m, x in ious.items()}
    print(f"{frames}x{stride}: mean IoU {mean}")
    # measured: grabcut-refine 0.94 / 0.95, diff 0.66 / 0.62 (8x2 / 16x1)
    assert mean[DEFAULT_METHOD] >= 0.8, mean
    assert mean[DEFAULT_METHOD] >= mean["diff"] + 0.2, mean


# --------------------------------------------------------------------------------------
# camera motion without an actor: (almost) nothing is foreground
# --------------------------------------------------------------------------------------

def _pan(T, dx, dy, zoom=1.0, S=64, margin=24):
    """Affines of a camera panning by (dx, dy) px per frame and zooming by ``zoom`` per frame."""
    c = S / 2
    out = []
    for t in range(T):
        z = zoom ** t
        out.append(np.array([[1 / z, 0, margin + c - c / z + dx * t], [0, 1 / z, margin + c - c / z + dy * t]]))
    return out


@pytest.mark.parametrize("method", NEW)
@pytest.mark.parametrize("dx,dy,zoom", [(1, -1, 1.0), (0.6, 0.3, 1.0), (0.4, 0.0, 1.01)],
                         ids=["integer-pan", "subpixel-pan", "pan-and-zoom"])
def test_camera_motion_alone_gives_an_almost_empty_mask(method, dx, dy, zoom):
    scene = texture(64 + 48, seed=4)
    clip = camera_clip(8, 64, _pan(8, dx, dy, zoom), scene)
    m = motion_masks(clip, method)
    assert m.mean() < 0.01, (method, float(m.mean()))


def test_without_camera_compensation_a_pan_is_foreground():
    """The same pan with the camera model switched off: the check above can fail."""
    scene = texture(64 + 48, seed=4)
    clip = camera_clip(8, 64, _pan(8, 1, -1), scene)
    assert motion_masks(clip, "grabcut-refine", camera="none").mean() > 0.05


def test_camera_transforms_recover_pan_and_zoom():
    scene = texture(64 + 48, seed=5)
    aff = _pan(6, 1, 0)
    clip = camera_clip(6, 64, aff, scene)
    A = camera_transforms(clip, model="translation")
    ref = len(clip) // 2
    # frame t's pixel p shows scene column p + t, the reference's q shows q + ref: A_t q = q + (ref - t, 0)
    assert np.array_equal(A[:, :, 2], np.stack([ref - np.arange(6), np.zeros(6)], 1))
    assert np.array_equal(camera_transforms(clip, model="auto"), A)  # whole-pixel pan: the exact integer estimate
    zoomed = camera_clip(6, 64, _pan(6, 0, 0, zoom=1.02), scene)
    Z = camera_transforms(zoomed, model="auto")
    scale = np.sqrt(np.linalg.det(Z[:, :, :2]))
    # frame t magnifies the scene 1.02 ** t times about the centre: A_t scales by 1.02 ** (t - ref)
    assert np.allclose(scale, 1.02 ** (np.arange(6) - ref), atol=0.004)
    with pytest.raises(ValueError):
        camera_transforms(clip, model="homography")


# --------------------------------------------------------------------------------------
# one mover
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", NEW)
@pytest.mark.parametrize("pan", [(0, 0), (1, 1)], ids=["static-camera", "panning-camera"])
def test_one_moving_square_is_found(method, pan):
    clip, gt = square_clip(pan=pan)
    m = motion_masks(clip, method)
    assert m.shape == gt.shape and m.dtype == bool
    assert mask_iou(m, gt) >= 0.8, (method, pan, mask_iou(m, gt))


@pytest.mark.parametrize("method", NEW)
def test_static_clip_has_no_foreground_and_bad_input_is_refused(method):
    clip, _ = square_clip()
    assert not motion_masks(np.repeat(clip[:1], 6, axis=0), method).any()
    with pytest.raises(ValueError):
        motion_masks(clip[:1], method)
    with pytest.raises(TypeError):
        motion_masks(clip, method, window=3)  # a parameter of "diff", not of this method
    with pytest.raises(ValueError):
        motion_masks(clip, method, blur=4)


def test_large_clips_are_computed_at_the_working_size():
    """A 4x larger copy of a clip gives (nearly) the 4x larger mask of the small one."""
    clip, gt = square_clip(S=48)
    big = np.stack([cv2.resize(f, (192, 192), interpolation=cv2.INTER_NEAREST) for f in clip])
    m_big = motion_masks(big, DEFAULT_METHOD, work_size=48)
    m_small = motion_masks(clip, DEFAULT_METHOD, work_size=48)
    assert m_big.shape == (8, 192, 192)
    down = np.stack([cv2.resize(f.astype(np.uint8), (48, 48), interpolation=cv2.INTER_AREA) > 0 for f in m_big])
    assert mask_iou(down, m_small) >= 0.9
    assert mask_iou(m_big, np.stack([cv2.resize(g.astype(np.uint8), (192, 192), interpolation=cv2.INTER_NEAREST)
                                     for g in gt]) > 0) >= 0.8


# --------------------------------------------------------------------------------------
# determinism
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
def test_deterministic_whatever_opencv_random_state(method):
    # a benchmark clip on which GrabCut's k-means start matters (without the re-seeding, 82
    # pixels of grabcut's mask differ between two generator states)
    cfg = SynthConfig(seed=2)
    clip = render_video(cfg, split_specs(cfg, "iid")[0]).frames[center_clip(32, 8, 2)]
    cv2.setRNGSeed(1)
    a = motion_masks(clip, method)
    cv2.randu(np.zeros((64, 64), np.float32), 0, 1)  # advance OpenCV's generator
    cv2.setRNGSeed(777)
    b = motion_masks(clip, method)
    assert np.array_equal(a, b)
    assert a.any()
