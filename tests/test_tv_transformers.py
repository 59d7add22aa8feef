"""torchvision's video transformers as bebias archs: swin3d_t/s/b, mvit_v1_b, mvit_v2_s.

Cheap on a 2-core CPU: the real Swin3D models run at 4x32x32 (any size works); MViT takes
16x224 only, so its behaviour is checked on a small MViT built with torchvision's own
constructor (``_mvit`` with two blocks at 4x32x32) and the real one runs one forward pass
(about 5 s single-threaded).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torchvision.models.video as tvv
from torchvision.models.video.mvit import MSBlockConfig, _mvit

from bebias.errors import BebiasError
from bebias.models.backbones import build_backbone
from bebias.models.cam import GradCam
from bebias.models.classifier import VideoClassifier
from bebias.models.presets import preset_for
from bebias.models.tv_transformers import TorchvisionMViT, check_fixed_input
from bebias.training.finetune import FinetuneConfig
from tests.inproc import bebias

TRANSFORMERS = ("swin3d_t", "swin3d_s", "swin3d_b", "mvit_v1_b", "mvit_v2_s")
DATA = "synthetic:classes=3,videos_per_class=2,test_videos_per_class=1,frames=12,size=32"


def tiny_mvit(seed: int = 0) -> torch.nn.Module:
    """MViTv2-S's block type (pooled attention, relative positions, residual pooling) at 4x32x32:
    tokens 2x8x8, then q-pooling to 2x4x4 in the second block."""
    torch.manual_seed(seed)
    cfg = [MSBlockConfig(num_heads=1, input_channels=8, output_channels=8, kernel_q=[3, 3, 3], kernel_kv=[3, 3, 3],
                         stride_q=[1, 1, 1], stride_kv=[1, 2, 2]),
           MSBlockConfig(num_heads=2, input_channels=8, output_channels=16, kernel_q=[3, 3, 3], kernel_kv=[3, 3, 3],
                         stride_q=[1, 2, 2], stride_kv=[1, 1, 1])]
    return _mvit(block_setting=cfg, stochastic_depth_prob=0.0, weights=None, progress=False, spatial_size=(32, 32),
                 temporal_size=4, residual_pool=True, residual_with_cls_embed=False, rel_pos_embed=True,
                 proj_after_attn=True, num_classes=3).eval()


@pytest.mark.parametrize("arch", TRANSFORMERS)
def test_state_dict_is_torchvisions_minus_the_head(arch):
    with torch.device("meta"):
        ours = set(build_backbone(arch).state_dict())
        theirs = {k for k in getattr(tvv, arch)().state_dict() if not k.startswith("head.")}
    assert ours == theirs


def test_swin3d_t_matches_torchvision_at_a_small_input():
    torch.manual_seed(0)
    net = tvv.swin3d_t().eval()
    bb = build_backbone("swin3d_t").eval()
    bb.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("head.")})
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        feats, pooled, logits = bb.features(x), bb(x), net(x)
    assert feats.shape == (2, 768, 2, 1, 1) and bb.dim == 768
    assert torch.allclose(pooled, feats.mean(dim=(2, 3, 4)), atol=1e-6)
    assert torch.allclose(net.head(pooled), logits, atol=1e-5)


def test_mvit_wrapper_matches_torchvision_and_drops_the_cls_token():
    net = tiny_mvit()
    bb = TorchvisionMViT("mvit_v2_s", net=net).eval()
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        tokens, thw = bb.tokens(x)
        feats, pooled = bb.features(x), bb(x)
        logits = net(x)
    assert bb.input_size == (4, 32, 32) and thw == (2, 4, 4) and tokens.shape == (2, 1 + 32, 16)
    assert torch.equal(pooled, tokens[:, 0])  # the CLS token is what the head reads
    assert feats.shape == (2, 16, 2, 4, 4)
    assert torch.equal(feats[:, :, 1, 2, 3], tokens[:, 1 + 1 * 16 + 2 * 4 + 3])  # raster order t, h, w
    assert torch.allclose(net.head(pooled), logits, atol=1e-6)


def test_mvit_fixed_input_is_one_error_line():
    bb = TorchvisionMViT("mvit_v2_s", net=tiny_mvit()).eval()
    with pytest.raises(BebiasError) as e:
        bb(torch.randn(1, 3, 8, 32, 32))
    assert "exactly 4 frames at 32x32 px" in str(e.value) and "got 8x32x32" in str(e.value)
    assert "\n" not in str(e.value)
    with pytest.raises(BebiasError, match="mvit_v1_b takes clips of exactly 16 frames at 224x224 px"):
        check_fixed_input("mvit_v1_b", 8, 112)
    check_fixed_input("mvit_v2_s", 16, 224)
    check_fixed_input("swin3d_t", 4, 32)  # Swin3D takes any size
    with pytest.raises(BebiasError, match="exactly 16 frames"):  # finetune / train refuse before any work
        FinetuneConfig.from_dict({"arch": "mvit_v2_s", "frames": 8, "size": 112})


def test_real_mvit_v2_s_one_forward_at_16x224():
    torch.manual_seed(0)
    bb = build_backbone("mvit_v2_s").eval()
    assert bb.input_size == (16, 224, 224) and bb.cam_layer == "blocks.15.norm1"
    with torch.no_grad():
        feats = bb.features(torch.randn(1, 3, 16, 224, 224))
    assert feats.shape == (1, 768, 8, 7, 7) and torch.isfinite(feats).all()
    with pytest.raises(BebiasError, match="exactly 16 frames at 224x224"):
        bb(torch.randn(1, 3, 8, 112, 112))


def test_presets_come_from_torchvisions_weight_metadata():
    sw = preset_for("swin3d_b").spec
    assert (sw["frames"], sw["stride"], sw["size"], sw["resize"]) == (32, 2, 224, 256)
    assert sw["mean"] == pytest.approx([0.485, 0.456, 0.406])
    for arch in ("mvit_v1_b", "mvit_v2_s"):
        mv = preset_for(arch).spec
        # 16 frames (the only length it takes) at 7.5 fps from ~30 fps video: stride 4
        assert (mv["frames"], mv["stride"], mv["size"], mv["resize"]) == (16, 4, 224, 256)
        assert mv["std"] == pytest.approx([0.225] * 3)
        check_fixed_input(arch, mv["frames"], mv["size"])


def test_a_run_config_starts_from_the_weights_preset_with_pretrained_or_a_fixed_input():
    from bebias.training.finetune import FinetuneConfig
    from bebias.training.pretrain import PretrainConfig

    sw = preset_for("swin3d_t").spec
    c = FinetuneConfig(arch="swin3d_t", pretrained=True).clip  # Kinetics weights: their own mean/std
    assert (c.frames, c.stride, c.size, c.resize) == (sw["frames"], sw["stride"], sw["size"], sw["resize"])
    assert c.mean == pytest.approx(sw["mean"]) and c.std == pytest.approx(sw["std"])
    c = FinetuneConfig.from_dict({"arch": "swin3d_t", "pretrained": True, "frames": 8}).clip  # flags override
    assert c.frames == 8 and c.size == sw["size"] and c.mean == pytest.approx(sw["mean"])
    # MViT takes 16 x 224 only: even from random init the run starts there, instead of being refused
    c = PretrainConfig(arch="mvit_v2_s").clip
    assert (c.frames, c.size, c.std) == (16, 224, pytest.approx((0.225,) * 3))
    # without weights or a fixed size: the CPU-sized default, as before
    assert FinetuneConfig(arch="swin3d_t").clip == FinetuneConfig().clip
    assert (FinetuneConfig().clip.frames, FinetuneConfig().clip.size) == (8, 32)
    # a saved config reads back to the same clip (resume)
    cfg = FinetuneConfig(arch="mvit_v2_s", pretrained=True, stride=2)
    assert FinetuneConfig.from_dict(cfg.to_dict()).clip == cfg.clip


def test_finetune_cli_announces_the_preset_it_starts_from(tmp_path):
    # (the dry run then stops at the tiny split, before any 224 px step is timed)
    r = bebias("finetune", "--arch", "mvit_v2_s", "--data", DATA, "--dry-run", "--out", str(tmp_path / "f"))
    out = " ".join(r.stdout.split())  # rich wraps long lines
    assert "input spec defaults: the torchvision MViT_V2_S_Weights" in out, r.stdout + r.stderr
    assert "this run: 16 frames at stride 4, 224 px" in out
    assert r.returncode == 2 and "fewer than one batch" in r.stderr


@pytest.mark.parametrize("arch,file", [("swin3d_t", "swin3d_t-7615ae03.pth"), ("mvit_v2_s", "mvit_v2_s-ae3be167.pth")])
def test_pretrained_comes_from_the_local_torch_cache(tmp_path, monkeypatch, arch, file):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda *a, **k: pytest.fail("tried to download"))
    with pytest.raises(BebiasError, match="not in the local cache") as e:
        build_backbone(arch, pretrained=True)
    assert str(tmp_path / "hub" / "checkpoints" / file) in str(e.value)
    torch.manual_seed(1)
    ref = getattr(tvv, arch)()  # stands in for the published file: same keys and shapes
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(ref.state_dict(), tmp_path / "hub" / "checkpoints" / file)
    bb = build_backbone(arch, pretrained=True)
    assert torch.equal(bb.norm.weight, ref.norm.weight) and torch.equal(bb.state_dict()[next(iter(bb.state_dict()))],
                                                                        next(iter(ref.state_dict().values())))


# ------------------------------------------------------------------------------ Grad-CAM

def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel())[0, 1])


def _pytorch_grad_cam(model, layer, x, targets, reshape):
    """pytorch-grad-cam's GradCAM map at the layer's resolution (before its min-max scaling)."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    with GradCAM(model=model, target_layers=[layer], reshape_transform=reshape) as g:
        g(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets])
        acts = g.activations_and_grads.activations[0].cpu().numpy()
        grads = g.activations_and_grads.gradients[0].cpu().numpy()
        return np.maximum(g.get_cam_image(x, layer, None, acts, grads, False), 0)


def test_swin3d_cam_is_channel_last_stage_output_on_its_grid():
    pytest.importorskip("pytorch_grad_cam")
    torch.manual_seed(0)
    bb = build_backbone("swin3d_t").eval()
    net = VideoClassifier(bb, 3).eval()
    x = torch.randn(1, 3, 8, 128, 128)
    out = GradCam(bb, net.fc)(x)
    assert out.raw.shape == (1, 4, 4, 4) and out.cams.shape == (1, 8, 128, 128)  # T/2, H/32, W/32
    assert out.raw.amax() > 0
    ref = _pytorch_grad_cam(net, bb.norm, x, out.target, lambda t: t.permute(0, 4, 1, 2, 3))
    assert _corr(out.raw[0].numpy(), ref[0]) >= 0.99
    # an inner stage (channel-last too) and the patch projection (a conv: channel-first)
    assert GradCam(bb, net.fc, "features.4")(x).raw.shape == (1, 4, 8, 8)
    assert GradCam(bb, net.fc, "patch_embed.proj")(x).raw.shape == (1, 4, 32, 32)


def test_mvit_cam_drops_the_cls_token_and_matches_pytorch_grad_cam():
    pytest.importorskip("pytorch_grad_cam")
    bb = TorchvisionMViT("mvit_v2_s", net=tiny_mvit()).eval()
    torch.manual_seed(0)
    net = VideoClassifier(bb, 3).eval()
    x = torch.randn(2, 3, 4, 32, 32)
    cam = GradCam(bb, net.fc)
    assert cam.layer_name == "blocks.1.norm1"
    out = cam(x)
    assert out.raw.shape == (2, 2, 8, 8) and (out.raw.flatten(1).amax(1) > 0).all()

    def vit_reshape(t):  # pytorch-grad-cam's ViT recipe: drop CLS, tokens onto the grid
        return t[:, 1:].reshape(t.shape[0], 2, 8, 8, t.shape[2]).permute(0, 4, 1, 2, 3)

    ref = _pytorch_grad_cam(net, bb.blocks[1].norm1, x, out.target, vit_reshape)
    for i in range(2):
        assert _corr(out.raw[i].numpy(), ref[i]) >= 0.99
    # a block returns (tokens, thw): its output after q-pooling is on the 2x4x4 grid
    assert GradCam(bb, net.fc, "blocks.0")(x).raw.shape == (2, 2, 8, 8)
    assert GradCam(bb, net.fc, "blocks.1.mlp")(x).raw.shape == (2, 2, 4, 4)


# ------------------------------------------------------------------------------ CLI

@pytest.fixture(scope="module")
def swin_classifier(tmp_path_factory):
    """A 2-step full fine-tune of swin3d_t at 4x32x32 through the CLI."""
    out = tmp_path_factory.mktemp("swin")
    r = bebias("finetune", "--arch", "swin3d_t", "--data", DATA, "--frames", "4", "--size", "32", "--batch-size",
               "2", "--max-steps", "2", "--workers", "0", "--out", str(out / "ft"))
    assert r.returncode == 0, r.stderr
    return out / "ft" / "model.pth"


def test_swin3d_finetune_probe_cam_eval_from_the_cli(swin_classifier, tmp_path):
    r = bebias("probe", str(swin_classifier), "--swap-backgrounds", "--max-videos", "3", "--out", str(tmp_path / "p"))
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "p" / "metrics.json").read_text())
    assert m["provenance"]["arch"] == "swin3d_t" and m["provenance"]["input"]["frames"] == 4
    r = bebias("cam", str(swin_classifier), "--n", "2", "--format", "none", "--out", str(tmp_path / "c"))
    assert r.returncode == 0, r.stderr
    c = json.loads((tmp_path / "c" / "cam.json").read_text())
    assert json.dumps(c).count('"norm"') >= 1
    r = bebias("eval", str(swin_classifier), "--out", str(tmp_path / "e.json"))
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "e.json").read_text())["arch"] == "swin3d_t"


def test_swin3d_linear_probe_from_the_cli(swin_classifier, tmp_path):
    r = bebias("finetune", str(swin_classifier), "--linear", "--data", DATA, "--frames", "4", "--size", "32",
               "--batch-size", "2", "--max-steps", "1", "--workers", "0", "--out", str(tmp_path / "lin"))
    assert r.returncode == 0, r.stderr
    from bebias.checkpoint import load_checkpoint

    ck, init = load_checkpoint(str(tmp_path / "lin" / "model.pth")), load_checkpoint(str(swin_classifier))
    assert ck["method"] == "linear" and ck["arch"] == "swin3d_t"
    assert all(torch.equal(v, init["backbone"][k]) for k, v in ck["backbone"].items())  # frozen


def test_mvit_finetune_at_another_size_is_one_line_exit_2(tmp_path):
    r = bebias("finetune", "--arch", "mvit_v2_s", "--data", DATA, "--frames", "8", "--size", "32", "--out",
               str(tmp_path / "m"))
    assert r.returncode == 2
    assert "mvit_v2_s takes clips of exactly 16 frames at 224x224 px" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_real_mvit_v2_s_probe_cam_eval_from_the_cli(tmp_path):
    """The real MViTv2-S (16x224 only), random init, written by fine-tuning's own checkpoint writer
    (a training step would add ~15 s); probe, cam and eval, with no input flags, read 16 frames at
    224 px from it (about 60 s on 2 busy cores)."""
    from bebias.checkpoint import save_checkpoint
    from bebias.data.open import open_data
    from bebias.data.synth import SynthBenchmark, SynthConfig
    from bebias.data.video_io import write_video
    from bebias.training.finetune import build_classifier, classifier_payload

    data = "synthetic:classes=3,videos_per_class=1,test_videos_per_class=1,frames=16,size=32"
    cfg = FinetuneConfig.from_dict({"arch": "mvit_v2_s", "data": data, "frames": 16, "size": 224})
    classes = list(open_data(data).videos.classes)
    torch.manual_seed(0)
    ck = tmp_path / "ft" / "model.pth"
    ck.parent.mkdir()
    save_checkpoint(ck, classifier_payload(build_classifier(cfg, len(classes)), cfg, classes))

    # probe: 3 conflict videos, each with a donor of another motion and scene class
    r = bebias("probe", str(ck), "--swap-backgrounds", "--max-videos", "3", "--out", str(tmp_path / "p"))
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "p" / "metrics.json").read_text())
    assert m["provenance"]["arch"] == "mvit_v2_s"
    assert (m["provenance"]["input"]["frames"], m["provenance"]["input"]["size"]) == (16, 224)
    for v in ("original", "swap-background", "swap-background-static"):
        assert m["accuracy"][v]["n"] == 3 and 0 <= m["accuracy"][v]["top1"]["value"] <= 1
    for v in ("swap-background", "swap-background-static"):
        assert np.isfinite(m["similarity"][v]["value"]) and -1 <= m["similarity"][v]["value"] <= 1

    # cam on a video file: the last block's 8x7x7 token grid is the 16x224 clip's (T/2, H/32, W/32)
    video = tmp_path / "clip.mkv"
    write_video(video, SynthBenchmark(SynthConfig(classes=3, videos_per_class=1, test_videos_per_class=1,
                                                  frames=16, size=32)).video("iid", 0).frames)
    r = bebias("cam", str(ck), str(video), "--format", "none", "--n-boot", "50", "--out", str(tmp_path / "c"))
    assert r.returncode == 0, r.stderr
    c = json.loads((tmp_path / "c" / "cam.json").read_text())
    assert c["layer"] == "blocks.15.norm1" and c["measure"]["ft"]["grid"] == [8, 7, 7]
    share = c["videos"][0]["measure"]["ft"]["share"]
    assert np.isfinite(share) and 0 <= share <= 1 and (tmp_path / "c" / c["videos"][0]["strip"]).is_file()

    r = bebias("eval", str(ck), "--split", "conflict", "--out", str(tmp_path / "e.json"))
    assert r.returncode == 0, r.stderr
    e = json.loads((tmp_path / "e.json").read_text())
    assert e["arch"] == "mvit_v2_s" and e["splits"]["conflict"]["n"] == 3
    assert 0 <= e["splits"]["conflict"]["top1"] <= 1 and e["splits"]["conflict"]["skipped"] == 0
