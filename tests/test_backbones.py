"""Backbones: one interface (features -> 5-D map, forward -> its global mean), shapes, errors.

Input sizes per arch (batch 2), chosen to be cheap on a 2-core CPU yet leave a feature map
with more than one position where the arch allows it:

- small3d, r3d_18, mc3_18, r2plus1d_18, c3d: 3x8x32x32 (any size works for these);
- s3d: 3x8x64x64 (torchvision's S3D needs T >= 5 and H, W >= 17; 32 px gives 1x1x1);
- i3d: 3x8x64x64 (any size works; 32 px gives a 1x1x1 map);
- swin3d_t/s/b: 3x4x32x32 (any size works: windows are padded);
- mvit_v1_b / mvit_v2_s take 16x224x224 only and pool a CLS token: tests/test_tv_transformers.py.
"""

from __future__ import annotations

import pytest
import torch

from bebias.errors import BebiasError
from bebias.models.backbones import ARCHS, Backbone, S3DBackbone, Small3D, build_backbone
from tests.inproc import bebias

CLIP = {"s3d": (3, 8, 64, 64), "i3d": (3, 8, 64, 64), "swin3d_t": (3, 4, 32, 32), "swin3d_s": (3, 4, 32, 32),
        "swin3d_b": (3, 4, 32, 32)}
DEFAULT_CLIP = (3, 8, 32, 32)
DIMS = {"small3d": 256, "r3d_18": 512, "mc3_18": 512, "r2plus1d_18": 512, "s3d": 1024, "c3d": 512, "i3d": 1024,
        "swin3d_t": 768, "swin3d_s": 768, "swin3d_b": 1024}


TRANSFORMERS = {"mvit_v1_b", "mvit_v2_s"}  # tests/test_tv_transformers.py


def test_archs_listed() -> None:
    """ARCHS (what build_backbone knows) is the source of truth: every arch has its row in this
    file's tables (so test_interface covers it) and is named in ``--arch``'s help."""
    assert len(set(ARCHS)) == len(ARCHS) and ARCHS[0] == "small3d"  # the default first
    assert set(DIMS) | TRANSFORMERS == set(ARCHS), set(ARCHS) ^ (set(DIMS) | TRANSFORMERS)
    assert set(CLIP) <= set(ARCHS)
    r = bebias("train", "--help", env={"COLUMNS": "400"})
    assert r.returncode == 0, r.stderr
    assert [a for a in ARCHS if a not in r.stdout] == [], r.stdout


@pytest.mark.parametrize("arch", [a for a in ARCHS if not a.startswith("mvit")])
def test_interface(arch: str) -> None:
    torch.manual_seed(0)
    model = build_backbone(arch).eval()  # eval: BN uses running stats, so two calls agree
    assert isinstance(model, Backbone)
    assert model.dim == DIMS[arch]
    clip = torch.randn(2, *CLIP.get(arch, DEFAULT_CLIP))
    with torch.no_grad():
        feats = model.features(clip)
        pooled = model(clip)
    assert feats.dim() == 5 and feats.shape[:2] == (2, model.dim)
    assert pooled.shape == (2, model.dim)
    assert torch.allclose(pooled, feats.mean(dim=(2, 3, 4)), atol=1e-5, rtol=1e-4)
    assert torch.isfinite(pooled).all()


def test_unknown_arch_lists_names() -> None:
    with pytest.raises(BebiasError) as err:
        build_backbone("resnet9000")
    msg = str(err.value)
    assert "resnet9000" in msg and "\n" not in msg
    assert all(name in msg for name in ARCHS)


def test_arch_name_case_insensitive() -> None:
    assert isinstance(build_backbone("Small3D"), Small3D)


@pytest.mark.parametrize("arch", ["small3d", "c3d", "i3d"])
def test_no_pretrained_weights_is_a_user_error(arch: str) -> None:
    with pytest.raises(BebiasError, match="no pretrained weights"):
        build_backbone(arch, pretrained=True)


def test_small3d_gradient_reaches_first_conv() -> None:
    torch.manual_seed(0)
    model = build_backbone("small3d").train()
    model(torch.randn(2, 3, 8, 32, 32)).pow(2).mean().backward()
    grad = model.stem[0].weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


@pytest.mark.parametrize("frames,size,expected", [
    (8, 32, (2, 2, 2)), (16, 32, (4, 2, 2)), (8, 64, (2, 4, 4)), (16, 64, (4, 4, 4)),
])
def test_small3d_clip_sizes(frames: int, size: int, expected: tuple[int, int, int]) -> None:
    model = Small3D().eval()
    with torch.no_grad():
        feats = model.features(torch.randn(2, 3, frames, size, size))
    assert feats.shape == (2, 256, *expected)


def test_small3d_widths() -> None:
    model = Small3D(widths=(8, 16, 24, 40)).eval()
    assert model.dim == 40
    with torch.no_grad():
        assert model(torch.randn(2, 3, 8, 32, 32)).shape == (2, 40)
    with pytest.raises(BebiasError):
        Small3D(widths=(8, 16))


def test_init_scheme() -> None:
    model = Small3D()
    bn = model.stem[1]
    assert torch.equal(bn.weight, torch.ones_like(bn.weight)) and torch.equal(bn.bias, torch.zeros_like(bn.bias))
    # kaiming_normal_(fan_out, relu): std = sqrt(2 / (cout * k)); conv2 of layer4 has many weights
    w = model.layer4.conv2.weight
    expected = (2.0 / (w.shape[0] * w[0, 0].numel())) ** 0.5
    assert abs(w.std().item() - expected) / expected < 0.05


@pytest.mark.parametrize("arch,head", [("r3d_18", "fc."), ("mc3_18", "fc."), ("r2plus1d_18", "fc."),
                                       ("s3d", "classifier.")])
def test_torchvision_state_dict_keys_map(arch: str, head: str) -> None:
    import torchvision.models.video as tvv

    ours = set(build_backbone(arch).state_dict())
    theirs = {k for k in getattr(tvv, arch)().state_dict() if not k.startswith(head)}
    assert ours == theirs
    if arch == "r3d_18":
        assert "layer4.1.conv2.0.weight" in ours and "stem.0.weight" in ours


def test_s3d_trunk_and_features_method_coexist() -> None:
    model = S3DBackbone()
    assert isinstance(model.trunk, torch.nn.Sequential)
    assert callable(model.features) and any(k.startswith("features.") for k in model.state_dict())


def test_i3d_tiny_input_does_not_collapse() -> None:
    model = build_backbone("i3d").eval()
    with torch.no_grad():
        feats = model.features(torch.randn(1, 3, 2, 8, 8))
    assert feats.shape == (1, 1024, 1, 1, 1)


def test_c3d_pools_round_up() -> None:
    model = build_backbone("c3d").eval()
    with torch.no_grad():
        feats = model.features(torch.randn(1, 3, 4, 24, 24))
    assert feats.shape == (1, 512, 1, 2, 2)
