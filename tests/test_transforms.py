"""The training transform's OpenCV ops against torchvision's reference kernels, the crop
box draw against ``v2.RandomResizedCrop``'s, and the transform's own invariants."""

import math

import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as F

from bebias.data import transforms as tr
from bebias.data.transforms import ClipSpec, train_transform


def _clip(seed: int = 0, T: int = 4, H: int = 24, W: int = 20) -> np.ndarray:
    """A real-looking clip: smooth colour gradients plus noise, (T, H, W, 3) uint8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:W]
    base = np.stack([x * 255 / W, y * 255 / H, (x + y) * 127 / (H + W) + 60], -1)
    return np.clip(base[None] + rng.normal(0, 25, (T, H, W, 3)), 0, 255).astype(np.uint8)


def _torch(clip: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(clip).permute(0, 3, 1, 2)  # (T, 3, H, W)


def _back(video: torch.Tensor) -> np.ndarray:
    return video.permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("factor", [0.6, 1.0, 1.4])
def test_colour_ops_agree_with_torchvision(factor):
    clip = _clip()
    T, H, W, _ = clip.shape
    img = clip.reshape(T * H, W, 3)
    pairs = [
        (tr.adjust_brightness(img, factor), F.adjust_brightness(_torch(clip), factor)),
        (tr.adjust_contrast(img, factor, T), F.adjust_contrast(_torch(clip), factor)),
        (tr.adjust_saturation(img, factor), F.adjust_saturation(_torch(clip), factor)),
        (tr.to_grayscale(img), F.rgb_to_grayscale(_torch(clip), num_output_channels=3)),
    ]
    for ours, ref in pairs:
        diff = np.abs(ours.reshape(T, H, W, 3).astype(int) - _back(ref).astype(int))
        # OpenCV rounds to nearest where torchvision truncates (and floors the luma): <= 1 level
        assert diff.max() <= 1 and diff.mean() < 0.75


def test_hue_agrees_with_torchvision():
    clip = _clip(1)
    T, H, W, _ = clip.shape
    for factor in (-0.1, 0.05, 0.25):
        ours = tr.adjust_hue(clip.reshape(T * H, W, 3), factor).reshape(T, H, W, 3).astype(int)
        ref = _back(F.adjust_hue(_torch(clip), factor)).astype(int)
        diff = np.abs(ours - ref)  # 8-bit HSV: hue in 1/256 turns, S and V rounded
        assert diff.mean() < 1.5 and np.percentile(diff, 99) <= 6


def test_contrast_uses_each_frames_own_mean():
    dark, bright = np.full((1, 8, 8, 3), 40, np.uint8), np.full((1, 8, 8, 3), 200, np.uint8)
    clip = np.concatenate([dark, bright])
    out = tr.adjust_contrast(clip.reshape(16, 8, 3), 0.0, 2).reshape(2, 8, 8, 3)
    assert (out[0] == 40).all() and (out[1] == 200).all()  # a flat frame is its own mean


def test_crop_box_matches_torchvision_draw():
    """Same uniforms -> same box as v2.RandomResizedCrop.make_params (which draws them one by one)."""
    from torchvision.transforms import v2

    rrc = v2.RandomResizedCrop(32, scale=(0.3, 1.0))
    for seed in range(50):
        H, W = [(64, 64), (48, 80), (120, 90)][seed % 3]
        torch.manual_seed(seed)
        ref = rrc.make_params([torch.empty(1, 3, H, W)])
        torch.manual_seed(seed)
        u, lo, hi = [], math.log(3 / 4), math.log(4 / 3)
        # replay torchvision's draws as uniforms: area U(0.3,1), log-ratio U(lo,hi), randint top/left
        while True:
            a = (torch.empty(1).uniform_(0.3, 1.0).item() - 0.3) / 0.7
            r = (torch.empty(1).uniform_(lo, hi).item() - lo) / (hi - lo)
            target, aspect = H * W * (0.3 + 0.7 * a), math.exp(lo + (hi - lo) * r)
            w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
            if 0 < w <= W and 0 < h <= H:
                top = torch.randint(0, H - h + 1, (1,)).item()
                left = torch.randint(0, W - w + 1, (1,)).item()
                u += [a, r, (top + 0.5) / (H - h + 1), (left + 0.5) / (W - w + 1)]
                break
            u += [a, r, 0.0, 0.0]
        u += [0.0] * (tr.CROP_DRAWS - len(u))
        box = tr.random_resized_crop_box(H, W, (0.3, 1.0), (3 / 4, 4 / 3), u)
        assert box == (ref["top"], ref["left"], ref["height"], ref["width"])


def test_crop_box_fallback_is_centred():
    # no attempt fits (area > 1 of the frame): the centre crop, clamped to the ratio range
    assert tr.random_resized_crop_box(40, 100, (2.0, 2.0), (3 / 4, 4 / 3), [0.5] * tr.CROP_DRAWS) == (0, 23, 40, 53)


def test_resized_crop_matches_torchvision():
    clip = _clip(2, H=48, W=40)
    ours = tr.resized_crop(clip, 5, 3, 30, 33, 16)
    ref = _back(F.resized_crop(_torch(clip), 5, 3, 30, 33, [16, 16], antialias=True))
    assert np.array_equal(ours, ref)


def test_transform_is_deterministic_given_the_seed_and_within_the_normalised_range():
    spec = ClipSpec(frames=4, size=16)
    tf = train_transform(spec)
    clip = _clip(3)
    torch.manual_seed(5)
    a = tf(clip)
    torch.manual_seed(5)
    assert torch.equal(a, tf(clip))
    lo = (0 - torch.tensor(spec.mean)) / torch.tensor(spec.std)
    hi = (1 - torch.tensor(spec.mean)) / torch.tensor(spec.std)
    assert a.shape == (3, 4, 16, 16) and a.dtype == torch.float32
    for c in range(3):
        assert lo[c] - 1e-5 <= a[c].min() and a[c].max() <= hi[c] + 1e-5


def test_no_augmentation_is_a_plain_resize_and_normalise():
    spec = ClipSpec(frames=4, size=20)
    clip = _clip(4)  # 24 x 20: the full-frame box at scale 1 and aspect 20/24 is inside (3/4, 4/3)
    tf = train_transform(spec, scale=(1.0, 1.0), hflip=False, p_jitter=0.0, p_gray=0.0, )
    tf.ratio = (20 / 24, 20 / 24)
    out = tf(clip)
    ref = tr.resized_crop(clip, 0, 0, 24, 20, 20).astype(np.float32) / 255
    ref = (torch.from_numpy(ref).permute(3, 0, 1, 2) - torch.tensor(spec.mean).view(3, 1, 1, 1)) \
        / torch.tensor(spec.std).view(3, 1, 1, 1)
    assert torch.allclose(out, ref, atol=1e-5)


def test_flip_mirrors_every_frame():
    spec = ClipSpec(frames=4, size=20)
    clip = _clip(5)
    kw = dict(scale=(1.0, 1.0), p_jitter=0.0, p_gray=0.0)
    flips = []
    for seed in range(12):  # some seeds flip, some do not
        torch.manual_seed(seed)
        tf = train_transform(spec, hflip=True, **kw)
        tf.ratio = (20 / 24, 20 / 24)
        flips.append(tf(clip))
    plain = train_transform(spec, hflip=False, **kw)
    plain.ratio = (20 / 24, 20 / 24)
    ref = plain(clip)
    kinds = {("same" if torch.equal(f, ref) else "flipped" if torch.equal(f, ref.flip(-1)) else "other") for f in flips}
    assert kinds == {"same", "flipped"}
