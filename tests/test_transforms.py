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


# ---- the official recipe's augmentation (--augment official) ----------------------------------

def _official_reference(clip: np.ndarray, size: int, u: list[float]) -> np.ndarray:
    """FingerRec/BE's pipeline (src/Contrastive/data/config.py:66-74) written with PIL as theirs
    runs it, driven by the same uniforms as ``OfficialTransform``: PIL rotate, short side to
    256/224 * size with PIL BILINEAR (skipped if already there), crop, then the ONE colour
    op their ColorJitter loop keeps, as torchvision's PIL kernel. -> (T, size, size, 3) uint8."""
    from PIL import Image
    from torchvision.transforms import functional as TF

    angle = 10 * (2 * u[0] - 1)
    imgs = [Image.fromarray(f).rotate(angle) for f in clip]
    w, h = imgs[0].size
    r = tr.official_resize(size)
    if min(w, h) != r:
        nw, nh = (r, int(r * h / w)) if w < h else (int(r * w / h), r)
        imgs = [im.resize((nw, nh), Image.BILINEAR) for im in imgs]
    w, h = imgs[0].size
    top, left = int(u[1] * (h - size + 1)), int(u[2] * (w - size + 1))
    imgs = [im.crop((left, top, left + size, top + size)) for im in imgs]
    op = min(int(u[3] * 4), 3)
    lo, hi = [(0.5, 1.5), (0.5, 1.5), (0.75, 1.25), (-0.5, 0.5)][op]
    f = lo + (hi - lo) * u[4]
    fn = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue][op]
    return np.stack([np.asarray(fn(im, f)) for im in imgs])


@pytest.mark.parametrize("H, W, size", [(36, 48, 32), (40, 30, 32), (30, 44, 24)])
def test_official_augmentation_matches_a_pil_rendition_of_theirs(H, W, size):
    clip = _clip(7, T=3, H=H, W=W)
    tf = tr.OfficialTransform(ClipSpec(frames=3, size=size), normalize=False)
    ops = set()
    for seed in range(16):
        torch.manual_seed(seed)
        u = torch.rand(tr.OfficialTransform.DRAWS, dtype=torch.float64).tolist()
        ops.add(min(int(u[3] * 4), 3))
        torch.manual_seed(seed)
        ours = tf(clip).permute(1, 2, 3, 0).numpy().astype(int)  # (T, size, size, 3)
        ref = _official_reference(clip, size, u).astype(int)
        diff = np.abs(ours - ref)
        # rounding (colour ops, antialias kernels; a nearest-rotation tie moves a pixel by one):
        # about a grey level; PIL's 8-bit HSV differs a little more from OpenCV's
        if min(int(u[3] * 4), 3) == 3:
            assert diff.mean() < 2 and np.percentile(diff, 99) <= 12, (seed, diff.mean())
        else:
            assert diff.mean() < 0.8 and np.percentile(diff, 99) <= 2, (seed, diff.mean())
    assert ops == {0, 1, 2, 3}


def test_official_rotation_is_pil_rotate_and_its_window_is_exact():
    from PIL import Image

    clip = _clip(8, T=2, H=50, W=64)
    for angle in (-10.0, -3.7, 0.0, 6.2, 10.0):
        ours = tr.rotate_frames(clip, angle)
        ref = np.stack([np.asarray(Image.fromarray(f).rotate(angle)) for f in clip])
        assert (ours != ref).any(-1).mean() < 0.01  # nearest-neighbour rounding ties only
        assert np.array_equal(tr.rotate_frames(clip, angle, 7, 5, 30, 40), ours[:, 7:37, 5:45])


def test_official_augmentation_is_identical_across_frames_and_deterministic():
    spec = ClipSpec(frames=6, size=32)
    frame = _clip(9, T=1, H=40, W=52)
    clip = np.repeat(frame, 6, axis=0)  # six equal frames: any per-frame draw would show
    tf = train_transform(spec, augment="official")
    assert isinstance(tf, tr.OfficialTransform)
    for seed in range(12):
        torch.manual_seed(seed)
        out = tf(clip)
        assert out.shape == (3, 6, 32, 32) and out.dtype == torch.float32
        assert all(torch.equal(out[:, t], out[:, 0]) for t in range(6))
        torch.manual_seed(seed)
        assert torch.equal(out, tf(clip))
    raw = tr.OfficialTransform(spec, normalize=False)(clip)
    assert raw.shape == (3, 6, 32, 32) and raw.dtype == torch.uint8


def test_official_augmentation_applies_exactly_one_colour_op(monkeypatch):
    calls = []
    for name in ("adjust_brightness", "adjust_contrast", "adjust_saturation", "adjust_hue"):
        fn = getattr(tr, name)
        monkeypatch.setattr(tr, name, lambda *a, _fn=fn, _n=name: (calls.append(_n), _fn(*a))[1])
    tf = tr.OfficialTransform(ClipSpec(frames=2, size=16), normalize=False)
    seen = set()
    for seed in range(40):
        calls.clear()
        torch.manual_seed(seed)
        tf(_clip(seed, T=2, H=20, W=20))
        assert len(calls) == 1  # their loop keeps only the last op's result
        seen.add(calls[0])
    assert len(seen) == 4


def test_official_resize_and_default_dispatch():
    assert tr.official_resize(224) == 256 and tr.official_resize(112) == 128  # their config.py:57-61
    spec = ClipSpec(frames=4, size=16)
    assert type(train_transform(spec)) is tr.TrainTransform
    assert type(train_transform(spec, augment="default")) is tr.TrainTransform
    clip = _clip(3)
    torch.manual_seed(2)
    a = train_transform(spec)(clip)
    torch.manual_seed(2)
    assert torch.equal(a, train_transform(spec, augment="default")(clip))  # the default path is untouched
    with pytest.raises(ValueError, match="augment"):
        train_transform(spec, augment="simclr")
