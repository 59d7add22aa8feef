"""Grad-CAM (bebias.models.cam), its rendering (bebias.reporting.cam), ``bebias cam`` and
``bebias probe --cam``.

Tiny on purpose: 4-frame 32 px clips, a classifier trained for 2 steps. The maps of an
untrained model mean nothing; shapes, units, gradients, the actor share on constructed
cases, the reference implementation and the files are what is tested.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from bebias.errors import BebiasError
from bebias.probing.masks import DEFAULT_METHOD
from bebias.models.backbones import ARCHS, build_backbone
from bebias.models.cam import (GradCam, actor_share, chance_level, default_layer, find_layer, grad_cam_map,
                               input_view, normalise, upsample)
from bebias.models.classifier import VideoClassifier
from tests.inproc import bebias

DATA = "synthetic:classes=3,videos_per_class=4,test_videos_per_class=3,frames=12,size=32"


def _net(arch: str = "small3d", k: int = 5, seed: int = 0) -> VideoClassifier:
    torch.manual_seed(seed)
    return VideoClassifier(build_backbone(arch), k).eval()


@pytest.fixture(scope="module")
def classifier(tiny_classifier_ckpt, tiny_data):
    assert tiny_data == DATA
    return tiny_classifier_ckpt  # tests/conftest.py: trained once per session


@pytest.fixture(scope="module")
def linear(tiny_linear_ckpt):
    return tiny_linear_ckpt


# --------------------------------------------------------------------------------------
# pure maps
# --------------------------------------------------------------------------------------

def test_grad_cam_map_whole_clip_and_per_time_on_a_constructed_case():
    # one channel of ones; the score grows with it at t'=0 and shrinks at t'=1
    acts = torch.ones(1, 1, 2, 3, 3)
    grads = torch.ones(1, 1, 2, 3, 3)
    grads[:, :, 1] = -1
    # whole clip: the weights cancel (mean 0) -> no evidence anywhere
    assert torch.equal(grad_cam_map(acts, grads), torch.zeros(1, 2, 3, 3))
    # per time slice: t'=0 weight +1 -> map 1; t'=1 weight -1 -> ReLU -> 0
    per = grad_cam_map(acts, grads, per_time=True)
    assert torch.equal(per[0, 0], torch.ones(3, 3)) and torch.equal(per[0, 1], torch.zeros(3, 3))
    # two channels: w = mean grad per channel, map = ReLU(sum_c w_c A_c)
    acts = torch.stack([torch.full((1, 2, 2), 2.0), torch.arange(4.0).view(1, 2, 2)])[None]
    grads = torch.stack([torch.full((1, 2, 2), 0.5), torch.full((1, 2, 2), -1.0)])[None]
    expect = torch.relu(0.5 * acts[0, 0] - 1.0 * acts[0, 1])
    assert torch.allclose(grad_cam_map(acts, grads)[0], expect)
    with pytest.raises(ValueError):
        grad_cam_map(acts, grads[:, :1])


def test_upsample_and_normalise_units():
    raw = torch.tensor([[[[1.0, 2.0], [1.5, 4.0]]], [[[0.0, 0.0], [0.0, 0.0]]]])  # (2, 1, 2, 2), min > 0
    up = upsample(raw, (3, 8, 8))
    assert up.shape == (2, 3, 8, 8) and (up >= 0).all()
    n = normalise(up)
    assert math.isclose(float(n[0].max()), 1.0) and float(n[0].min()) >= 0
    assert torch.equal(n[1], torch.zeros(3, 8, 8))  # all-zero stays zero, no NaN
    # only the maximum is divided out: mass proportions are kept
    assert torch.allclose(n[0] / n[0].sum(), up[0] / up[0].sum())


def test_actor_share_on_hand_made_cases():
    mask = np.zeros((2, 4, 4), bool)
    mask[:, 1:3, 1:3] = True  # a quarter of the pixels
    inside = mask.astype(float) * np.random.default_rng(0).uniform(0.1, 1, mask.shape)
    assert actor_share(inside, mask) == pytest.approx(1.0)
    assert actor_share(~mask * 1.0, mask) == 0.0
    uniform = np.full(mask.shape, 0.3)
    assert actor_share(uniform, mask) == pytest.approx(0.25) == chance_level(mask)
    # half the mass in, half out
    half = np.zeros(mask.shape)
    half[0, 1, 1] = half[0, 0, 0] = 1.0
    assert actor_share(half, mask) == pytest.approx(0.5)
    assert math.isnan(actor_share(np.zeros(mask.shape), mask))  # no mass to share
    soft = mask * 0.5  # a resized mask: each pixel half foreground
    assert actor_share(uniform, soft) == pytest.approx(0.125)
    assert actor_share(torch.from_numpy(inside), torch.from_numpy(mask)) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        actor_share(uniform[0], mask[0])
    with pytest.raises(ValueError):
        actor_share(-uniform, mask)


def test_input_view_aligns_the_mask_with_the_models_pixels():
    from bebias.data.transforms import ClipSpec, eval_transform

    mask = np.zeros((3, 40, 64), bool)  # landscape: resized to 32 high, centre-cropped to 32 wide
    mask[:, 10:30, 30:50] = True
    frames = np.repeat((mask * 255).astype(np.uint8)[..., None], 3, axis=3)
    fv, mv = input_view(frames, 32), input_view(mask, 32)
    assert fv.shape == (3, 32, 32, 3) and fv.dtype == np.uint8 and mv.shape == (3, 32, 32)
    assert np.abs(fv[..., 0] / 255.0 - mv).max() < 0.01  # the same geometry
    # 40x64 -> 32x51 (x0.8), crop columns 10:42: the square 10:30 x 30:50 lands at 8:24 x 14:30
    assert mv[:, 9:23, 15:29].min() > 0.99 and mv[:, :, :12].max() == 0 and mv[:, :7].max() == 0
    # the uint8 view is exactly what the eval transform normalises
    spec = ClipSpec(frames=3, size=32)
    f = np.random.default_rng(0).integers(0, 256, (3, 40, 64, 3), dtype=np.uint8)
    back = eval_transform(spec)(f).permute(1, 2, 3, 0).numpy() * np.array(spec.std) + np.array(spec.mean)
    assert np.abs(back * 255 - input_view(f, 32)).max() < 1e-3


# --------------------------------------------------------------------------------------
# Grad-CAM on models
# --------------------------------------------------------------------------------------

def test_gradcam_shapes_units_and_targets():
    net = _net()
    x = torch.randn(3, 3, 8, 32, 32)
    o = GradCam(net.backbone, net.fc)(x)
    assert o.cams.shape == (3, 8, 32, 32) and o.raw.shape == (3, 2, 2, 2)
    assert o.cams.dtype == torch.float32 and float(o.cams.min()) >= 0
    assert torch.allclose(o.cams.flatten(1).amax(1), torch.ones(3))  # peak 1 per video
    assert torch.equal(o.target, net(x).argmax(1))
    assert torch.allclose(o.scores, net(x).gather(1, o.target[:, None])[:, 0], atol=1e-5)
    # another class gives another map
    other = (o.target + 1) % 5
    o2 = GradCam(net.backbone, net.fc)(x, other)
    assert torch.equal(o2.target, other) and not torch.allclose(o2.raw, o.raw)
    with pytest.raises(BebiasError, match="target"):
        GradCam(net.backbone, net.fc)(x, torch.tensor([0, 1, 7]))


def test_gradients_flow_through_a_frozen_backbone_and_leave_nothing_behind():
    net = _net()
    x = torch.randn(2, 3, 8, 32, 32)
    ref = GradCam(net.backbone, net.fc)(x)
    frozen = VideoClassifier(net.backbone, 5, freeze_backbone=True).eval()  # the linear probe's setting
    frozen.fc.load_state_dict(net.fc.state_dict())
    assert not any(p.requires_grad for p in frozen.backbone.parameters())
    cam = GradCam(frozen.backbone, frozen.fc)
    with torch.no_grad():  # even under an outer no_grad
        o = cam(x)
    assert torch.is_grad_enabled()  # restored after the block
    assert float(o.raw.sum()) > 0 and torch.allclose(o.cams, ref.cams, atol=1e-6)
    # no hook left, no parameter gradient accumulated, grad mode restored inside no_grad too
    assert not cam.layer._forward_hooks
    assert all(p.grad is None for p in net.parameters())
    with torch.no_grad():
        cam(x)
        assert not torch.is_grad_enabled()


def test_per_time_weights_versus_whole_clip():
    net = _net()
    x = torch.randn(2, 3, 8, 32, 32)
    # at the last block, followed by global average pooling and a linear head, ds/dA is the
    # same at every position: per-time weights equal the whole-clip ones (Grad-CAM = CAM)
    whole = GradCam(net.backbone, net.fc)(x)
    per = GradCam(net.backbone, net.fc, per_time=True)(x)
    assert torch.allclose(per.raw, whole.raw, rtol=1e-4, atol=1e-7)
    # one block earlier the gradient varies over time, and so do the weights
    whole = GradCam(net.backbone, net.fc, "layer3")(x)
    per = GradCam(net.backbone, net.fc, "layer3", per_time=True)(x)
    assert per.raw.shape == whole.raw.shape == (2, 4, 4, 4) and per.cams.shape == (2, 8, 32, 32)
    assert not torch.allclose(per.raw, whole.raw, rtol=1e-2)
    # the per-time map is the whole-clip formula applied to each time slice on its own
    acts, grads = _acts_grads(net, x, "layer3")
    assert torch.allclose(whole.raw, grad_cam_map(acts, grads), rtol=1e-4, atol=1e-7)
    for t in range(acts.shape[2]):
        expect = grad_cam_map(acts[:, :, t:t + 1], grads[:, :, t:t + 1])[:, 0]
        assert torch.allclose(per.raw[:, t], expect, rtol=1e-4, atol=1e-7)
    # with a single time slice (T = 2 -> T' = 1 at layer3) the two are the same map
    x1 = torch.randn(2, 3, 2, 32, 32)
    a, b = GradCam(net.backbone, net.fc, "layer3")(x1), GradCam(net.backbone, net.fc, "layer3", per_time=True)(x1)
    assert a.raw.shape[1] == 1 and torch.allclose(a.cams, b.cams, atol=1e-6)


def _acts_grads(net, x, layer=None):
    """Activations and gradients of the predicted class at ``layer``, the textbook way
    (full autograd through a plain forward, retain_grad)."""
    store = {}
    mod = find_layer(net.backbone, layer or default_layer(net.backbone))
    h = mod.register_forward_hook(lambda m, i, o: store.setdefault("a", o))
    logits = net(x)
    h.remove()
    store["a"].retain_grad()
    logits.gather(1, logits.argmax(1)[:, None]).sum().backward()
    return store["a"].detach(), store["a"].grad.detach()


def test_feature_norm_cam_of_an_encoder():
    net = _net()
    x = torch.randn(2, 3, 8, 32, 32)
    o = GradCam(net.backbone)(x)
    assert o.cams.shape == (2, 8, 32, 32) and torch.equal(o.target, torch.tensor([-1, -1]))
    z = net.backbone(x)
    assert torch.allclose(o.scores, 0.5 * (z ** 2).sum(1), rtol=1e-5)
    # ds/dA = z / (T'H'W') at the last block (global average pool): the map is A projected on z
    a = net.backbone.features(x)
    expect = torch.relu(torch.einsum("bc,bcthw->bthw", z / a[0, 0].numel(), a))
    assert torch.allclose(o.raw, expect, rtol=1e-4, atol=1e-6)
    assert GradCam(net.backbone).method == "grad-cam:feature-norm"


# MViT takes 16x224 clips only and its default layer is not its feature map (the head reads the
# CLS token): tests/test_tv_transformers.py checks it on a small MViT
@pytest.mark.parametrize("arch", [a for a in ARCHS if not a.startswith("mvit")])
def test_every_backbone_builds_a_cam_at_its_default_layer(arch):
    torch.manual_seed(0)
    bb = build_backbone(arch).eval()
    head = torch.nn.Linear(bb.dim, 3)
    x = torch.randn(1, 3, 8, 32, 32)
    cam = GradCam(bb, head)
    assert cam.layer_name == bb.cam_layer and cam.layer is find_layer(bb, bb.cam_layer)
    o = cam(x)
    assert o.cams.shape == (1, 8, 32, 32) and torch.isfinite(o.cams).all()
    # the default layer's output is the feature map the pooled features come from
    feats = bb.features(x)
    assert o.raw.shape == (1, *feats.shape[2:])


def test_layer_errors_are_user_errors():
    net = _net()
    with pytest.raises(BebiasError, match="no layer 'layer9'"):
        GradCam(net.backbone, net.fc, "layer9")
    # a module that returns no (B, C, T', H', W') map
    wrap = torch.nn.Sequential()
    wrap.add_module("backbone", net.backbone)
    wrap.add_module("flat", torch.nn.Flatten())
    with pytest.raises(BebiasError, match=r"returns \(1, 256\)"):
        GradCam(wrap, None, "flat")(torch.randn(1, 3, 4, 32, 32))
    assert not wrap.flat._forward_hooks  # removed on the error too
    # a layer after an in-place op works (the leaf is never modified in place)
    o = GradCam(net.backbone, net.fc, "layer4.bn2")(torch.randn(1, 3, 8, 32, 32))
    assert torch.isfinite(o.cams).all()
    o = GradCam(net.backbone, net.fc, "stem.1")(torch.randn(1, 3, 8, 32, 32))  # BN, then ReLU(inplace=True)
    assert o.raw.shape == (1, 8, 16, 16)


# --------------------------------------------------------------------------------------
# the reference: pytorch-grad-cam's GradCAM (test-only dependency)
# --------------------------------------------------------------------------------------

def _corr(a, b) -> float:
    return float(np.corrcoef(np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel())[0, 1])


@pytest.mark.parametrize("arch, shape", [("small3d", (3, 3, 8, 32, 32)), ("r3d_18", (2, 3, 16, 64, 64))])
def test_maps_match_pytorch_grad_cam(arch, shape):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.image import scale_cam_image

    net = _net(arch)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    layer = find_layer(net.backbone, default_layer(net.backbone))
    ours = GradCam(net.backbone, net.fc)(x)
    ref = GradCAM(net, [layer])
    theirs = ref(x, None)  # (B, T, H, W), predicted class
    acts = ref.activations_and_grads.activations[0].numpy()
    grads = ref.activations_and_grads.gradients[0].numpy()
    theirs_raw = np.maximum(ref.get_cam_image(x, layer, None, acts, grads), 0)  # at the layer's resolution
    for b in range(shape[0]):
        # the Grad-CAM itself: same weights, same map
        assert _corr(ours.raw[b], theirs_raw[b]) >= 0.999
        np.testing.assert_allclose(ours.raw[b].numpy(), theirs_raw[b], rtol=1e-3, atol=1e-5 * theirs_raw[b].max())
    # at the clip's resolution through their resampler (cubic spline, corners aligned)
    tsize = (shape[4], shape[3], shape[2])
    resampled = scale_cam_image(ours.raw.numpy(), tsize)
    for b in range(shape[0]):
        assert _corr(resampled[b], theirs[b]) >= 0.99
        # ours resamples trilinearly at half-pixel centres: the same map, another interpolation
        assert _corr(ours.cams[b], theirs[b]) >= 0.9
    ref.activations_and_grads.release()


# --------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------

def test_colours_overlay_and_strip_layout():
    from bebias.reporting.cam import STRIP_FRAMES, colorize, overlay, strip_image

    lo, hi = colorize(np.array([[0.0]]))[0, 0], colorize(np.array([[1.0]]))[0, 0]
    assert lo[2] > lo[0] and hi[0] > hi[2]  # blue at 0, red at the peak
    frames = np.random.default_rng(0).integers(0, 255, (12, 32, 32, 3), dtype=np.uint8)
    cam = np.zeros((12, 32, 32), np.float32)
    cam[:, :16] = 1.0
    ov = overlay(frames, cam)
    assert ov.shape == frames.shape and ov.dtype == np.uint8
    # on a grey frame: red where the CAM peaks, blue where it is 0, and the colour stronger at the peak
    grey = overlay(np.full((1, 2, 1, 3), 128, np.uint8), np.array([[[1.0], [0.0]]], np.float32)).astype(int)
    hot, cold = grey[0, 0, 0], grey[0, 1, 0]
    assert hot[0] > hot[2] + 80 and cold[2] > cold[0]
    assert np.abs(hot - 128).max() > np.abs(cold - 128).max()
    img = strip_image(frames, None, [(["a", "b"], cam), (["c"], cam * 0.5)])
    cell = 32 * 4  # enlarged to >= 112 px
    assert img.shape == (18 + 3 * (cell + 2) + 26, 150 + STRIP_FRAMES * (cell + 2), 3)
    # row 1 holds the frames, pixel for pixel (nearest enlargement; no mask outline)
    assert np.array_equal(img[18:18 + cell:4, 150:150 + cell:4], frames[0])


def test_explain_refuses_checkpoints_that_take_different_clips(tmp_path):
    from bebias.data.transforms import ClipSpec
    from bebias.models.cam_explain import CamModel
    from bebias.models.cam_result import CamClip
    from bebias.workflows.cam import explain

    net = _net()
    a = CamModel("a", "a.pth", "small3d", GradCam(net.backbone, net.fc), ClipSpec(frames=4, size=32))
    b = CamModel("b", "b.pth", "small3d", GradCam(net.backbone, net.fc), ClipSpec(frames=8, size=32))
    clip = CamClip("v", np.zeros((4, 32, 32, 3), np.uint8), None)
    with pytest.raises(BebiasError, match="different clips"):
        explain([a, b], [clip], str(tmp_path), n_boot=10)


def test_explain_clips_yields_typed_maps_in_the_models_view_and_renders_without_a_model(tmp_path):
    from bebias.data.transforms import ClipSpec
    from bebias.models.cam_explain import CamModel, CamTally, explain_clips
    from bebias.models.cam_result import CamClip
    from bebias.reporting.cam import render_clip, write_cam

    net = _net(k=3)
    a = CamModel("a", "a.pth", "small3d", GradCam(net.backbone, net.fc), ClipSpec(frames=4, size=32), ["x", "y", "z"])
    rng = np.random.default_rng(0)
    mask = np.zeros((4, 40, 48), bool)
    mask[:, 10:30, 12:30] = True
    clips = [CamClip("v0", rng.integers(0, 255, (4, 40, 48, 3), dtype=np.uint8), mask, "ground-truth", 2, "z"),
             CamClip("v1", rng.integers(0, 255, (4, 40, 48, 3), dtype=np.uint8), None)]
    items = list(explain_clips([a], clips, target="pred", batch_size=1))
    assert [it.index for it in items] == [0, 1]
    first, second = items
    assert first.frames.shape == (4, 32, 32, 3) and first.frames.dtype == np.uint8
    assert first.mask.shape == (4, 32, 32) and first.mask_fraction == pytest.approx(first.mask.mean())
    mc = first.cams[0]
    assert mc.cam.shape == (4, 32, 32) and mc.cam.dtype == np.float32 and 0 <= mc.cam.min() and mc.cam.max() <= 1
    assert mc.target_name == ["x", "y", "z"][mc.target] and mc.share == pytest.approx(actor_share(mc.cam, first.mask))
    assert math.isfinite(mc.terms.share_true) and len(mc.grid) == 3  # the true class (z) is known: its map too
    assert second.mask is None and second.mask_fraction is None and second.cams[0].share is None
    tally = CamTally([a])
    for it in items:
        tally.add(it)
    entry = render_clip(str(tmp_path), first, ["a"], formats=())
    res = write_cam(str(tmp_path), tally.summary(n_boot=10), [entry])
    assert (tmp_path / entry["strip"]).is_file() and entry["gif"] is None
    assert res["actor_share"]["a"]["n"] == 1 and res["chance"]["n"] == 1 and res["measure"]["a"]["grid"] == mc.grid


# --------------------------------------------------------------------------------------
# bebias cam, end to end
# --------------------------------------------------------------------------------------

def test_cam_cli_end_to_end_with_compare(tmp_path, classifier, linear):
    out = tmp_path / "cam"
    r = bebias("cam", classifier, "--compare", linear, "--labels", "ft,lin", "--data", DATA, "--n", "4",
               "--format", "gif,mp4", "--out", str(out), "--n-boot", "200")
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((out / "cam.json").read_text())
    # 4x32x32 clips: layer4 would be 1x2x2, layer3 (2x4x4) is the deepest with 4x4 cells
    assert res["kind"] == "bebias-cam" and res["layer"] == "layer3"
    assert [c["label"] for c in res["checkpoints"]] == ["ft", "lin"]
    for c in res["checkpoints"]:
        assert set(c) >= {"path", "label", "arch", "method"} and c["arch"] == "small3d"
        assert c["method"] == "grad-cam:class"
    assert len(res["videos"]) == 4
    labels = {v["label"] for v in res["videos"]}
    assert len(labels) == 3  # class-balanced: every class of the 3
    import imageio.v3 as iio

    for v in res["videos"]:
        assert set(v) >= {"path", "label", "strip", "gif", "actor_share"}
        assert set(v["actor_share"]) == {"ft", "lin"}
        assert all(0.0 <= s <= 1.0 for s in v["actor_share"].values())
        assert v["mask_source"] == "ground-truth"
        png = iio.imread(out / v["strip"])
        assert png.ndim == 3 and png.shape[2] == 3 and png.shape[0] == 18 + 3 * (128 + 2) + 26
        gif = iio.imread(out / v["gif"], index=None)
        assert gif.shape[0] == 4  # one frame per clip frame
        assert (out / v["mp4"]).stat().st_size > 0
    for lab in ("ft", "lin"):
        s = res["actor_share"][lab]
        vals = [v["actor_share"][lab] for v in res["videos"]]
        assert s["n"] == 4 and s["value"] == pytest.approx(np.mean(vals))
        assert s["ci_low"] <= s["value"] <= s["ci_high"]
    fr = [v["mask_fraction"] for v in res["videos"]]
    assert res["chance"]["value"] == pytest.approx(np.mean(fr)) and 0 < res["chance"]["value"] < 0.5
    for lab in ("ft", "lin"):
        m = res["measure"][lab]
        assert m["layer"] == "layer3" and m["grid"] == [2, 4, 4]
        for part in ("pred", "true"):  # labelled videos: both classes' maps are measured
            t = m[part]
            assert set(t) == {"share", "chance", "ceiling", "normalised", "videos_left_out"}
            # every term over the videos where this map's share is defined
            key = "share" if part == "pred" else "share_true"
            ok = [v for v in res["videos"] if v["measure"][lab][key] is not None]
            assert t["share"]["n"] == len(ok) and t["videos_left_out"] == 4 - len(ok)
            assert t["chance"]["value"] == pytest.approx(np.mean([v["mask_fraction"] for v in ok]))
            # the pooled mask beats a uniform map; the score is the ratio of the means
            assert t["chance"]["value"] < t["ceiling"]["value"] <= 1
            s, c, e = (t[k]["value"] for k in ("share", "chance", "ceiling"))
            assert t["normalised"]["value"] == pytest.approx((s - c) / (e - c))
            assert t["normalised"]["ci_low"] <= t["normalised"]["value"] <= t["normalised"]["ci_high"]
        # the shown map is the predicted class's (--target pred)
        assert res["actor_share"][lab] == m["pred"]["share"]
        assert [v["measure"][lab]["share"] for v in res["videos"]] == [v["actor_share"][lab] for v in res["videos"]]
    out_text = " ".join(r.stdout.split())  # the console wraps long lines
    assert "CAM on the actor" in out_text and "of the predicted class: share" in out_text
    assert "of the true class: share" in out_text and "normalised" in out_text


def test_cam_cli_per_time_on_a_video_file_and_a_foreign_state_dict(tmp_path):
    from bebias.data.synth import SynthBenchmark, SynthConfig
    from bebias.data.video_io import write_video

    bench = SynthBenchmark(SynthConfig(classes=3, videos_per_class=1, test_videos_per_class=1, frames=12, size=32))
    video = tmp_path / "clip.mkv"
    write_video(video, bench.video("iid", 0).frames)
    # a torchvision-style r3d_18 state_dict under DataParallel's prefix, with an fc head
    torch.manual_seed(0)
    bb, fc = build_backbone("r3d_18"), torch.nn.Linear(512, 4)
    sd = {f"module.{k}": v for k, v in {**bb.state_dict(), **{f"fc.{k}": v for k, v in fc.state_dict().items()}}
          .items()}
    ck = tmp_path / "r3d.pth"
    torch.save({"state_dict": sd}, ck)
    out = tmp_path / "cam"
    r = bebias("cam", str(ck), str(video), "--arch", "r3d_18", "--frames", "8", "--size", "32", "--per-time",
               "--format", "none", "--out", str(out), "--n-boot", "100")
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((out / "cam.json").read_text())
    assert res["checkpoints"][0]["arch"] == "r3d_18" and res["checkpoints"][0]["method"] == "grad-cam-per-time:class"
    assert res["per_time"] is True and res["videos"][0]["gif"] is None
    v = res["videos"][0]
    assert v["path"] == str(video) and v["label"] is None and v["mask_source"] == f"motion:{DEFAULT_METHOD}"
    assert (out / v["strip"]).is_file()
    # without labels, --target label is a user error (one line, exit 2)
    r = bebias("cam", str(ck), str(video), "--arch", "r3d_18", "--frames", "8", "--size", "32", "--target", "label",
               "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "needs labelled videos" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit's deprecation notices
@pytest.mark.parametrize("kind", ["torchscript", "pt2"])
def test_cam_refuses_an_archive_in_one_line(tmp_path, kind):
    net = _net(k=3)
    x = torch.zeros(1, 3, 4, 32, 32)
    if kind == "torchscript":
        path = tmp_path / "model.pt"
        torch.jit.save(torch.jit.trace(net, x), str(path))
    else:
        path = tmp_path / "model.pt2"
        torch.export.save(torch.export.export(net, (x,)), str(path))
    r = bebias("cam", str(path), "--data", DATA, "--frames", "4", "--size", "32", "--out", str(tmp_path / "o"))
    assert r.returncode == 2, r.stderr[-2000:]
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "archive" in err[0] and "no layers to hook" in err[0]
    if kind == "torchscript":  # bebias probe --cam says the same, before probing anything
        r = bebias("probe", str(path), "--data", DATA, "--frames", "4", "--size", "32", "--static-frame", "--cam",
                   "--out", str(tmp_path / "p"), "--trust-code")
        err = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(err) == 1 and "no layers to hook" in err[0]


# --------------------------------------------------------------------------------------
# bebias probe --cam
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cam_suite(tmp_path_factory):
    p = tmp_path_factory.mktemp("suite") / "s.toml"
    p.write_text('name = "s"\nvariants = ["swap-background", "static-frame"]\nn_boot = 100\nchunk = 4\n')
    return str(p)


def test_probe_cam_adds_its_block_and_changes_nothing_else(tmp_path, classifier, cam_suite):
    from bebias.probing.run import ProbeConfig, load_suite, run_probe

    suite, path = load_suite(cam_suite)
    plain = run_probe(ProbeConfig(classifier, data=DATA, suite=suite, suite_path=path, out=str(tmp_path / "a")))
    assert "cam" not in plain.metrics and "cam" not in plain.metrics["provenance"]
    withcam = run_probe(ProbeConfig(classifier, data=DATA, suite=suite, suite_path=path, out=str(tmp_path / "b"),
                                    cam=True))
    cam = withcam.metrics["cam"]
    assert cam["layer"] == "layer3" and cam["method"] == "grad-cam:class"
    assert set(cam["pred"]) == set(cam["true"]) == {"share", "chance", "ceiling", "normalised", "videos_left_out"}
    assert cam["pred"]["share"] == cam["actor_share"] and cam["pred"]["chance"] == cam["chance"]
    a = cam["actor_share"]
    assert set(a) == {"value", "ci_low", "ci_high", "n"} and a["n"] == 9
    assert 0 <= a["ci_low"] <= a["value"] <= a["ci_high"] <= 1
    assert 0 < cam["chance"]["value"] < 0.5
    # every other number is the same with and without --cam
    m = json.loads(json.dumps(withcam.metrics))
    del m["cam"], m["provenance"]["cam"]
    assert m == json.loads(json.dumps(plain.metrics))
    assert (tmp_path / "a" / "predictions.csv").read_text() == (tmp_path / "b" / "predictions.csv").read_text()
    # the same numbers as bebias cam computes on the same clips (same masks, same geometry)
    r = bebias("cam", classifier, "--data", DATA, "--n", "9", "--format", "none", "--out", str(tmp_path / "c"))
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "c" / "cam.json").read_text())
    lab = res["checkpoints"][0]["label"]
    assert res["actor_share"][lab]["value"] == pytest.approx(a["value"], rel=1e-4)
    assert res["chance"]["value"] == pytest.approx(cam["chance"]["value"], rel=1e-4)
    for part in ("pred", "true"):
        for k in ("share", "ceiling", "normalised"):
            assert res["measure"][lab][part][k]["value"] == pytest.approx(cam[part][k]["value"], rel=1e-4)


def test_probe_cam_is_resumable_and_fingerprinted(tmp_path, classifier, cam_suite):
    from bebias.probing.run import ProbeConfig, load_suite, run_probe

    suite, path = load_suite(cam_suite)
    cfg = ProbeConfig(classifier, data=DATA, suite=suite, suite_path=path, out=str(tmp_path / "p"), cam=True,
                      save_every=0)
    first = run_probe(cfg)
    (tmp_path / "p" / "metrics.json").unlink()
    again = run_probe(cfg)  # every video from partial.npz, the CAM shares included
    assert again.resumed == 9 and again.metrics["cam"] == first.metrics["cam"]
    # a probe without --cam does not reuse it (and one at another layer neither)
    plain = run_probe(ProbeConfig(classifier, data=DATA, suite=suite, suite_path=path, out=str(tmp_path / "p")))
    assert plain.discarded_partial and "cam" not in plain.metrics
    other = run_probe(ProbeConfig(classifier, data=DATA, suite=suite, suite_path=path, out=str(tmp_path / "p"),
                                  cam=True, cam_layer="layer4"))
    assert other.discarded_partial and other.metrics["cam"]["layer"] == "layer4"


def test_probe_cam_cli_flag(tmp_path, classifier, cam_suite):
    r = bebias("probe", classifier, "--data", DATA, "--suite", cam_suite, "--cam-layer", "layer3",  # implies --cam
               "--out", str(tmp_path / "p"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "CAM on the actor" in r.stdout
    m = json.loads((tmp_path / "p" / "metrics.json").read_text())
    assert m["cam"]["layer"] == "layer3" and m["provenance"]["cam"]["layer"] == "layer3"
