"""Input presets for foreign checkpoints, and the evaluation resize they need."""

import numpy as np
import pytest
import torch
import torchvision.models.video as tvv

from bebias.data.transforms import ClipSpec, eval_transform
from bebias.models.open import open_model
from bebias.models.presets import preset_for
from tests.inproc import bebias


@pytest.mark.parametrize("arch,weights", [("r3d_18", tvv.R3D_18_Weights), ("mc3_18", tvv.MC3_18_Weights),
                                          ("r2plus1d_18", tvv.R2Plus1D_18_Weights), ("s3d", tvv.S3D_Weights)])
def test_torchvision_presets_are_read_from_torchvision(arch, weights):
    p = preset_for(arch)
    tf = weights.DEFAULT.transforms()
    assert p.spec["size"] == tf.crop_size[0] and p.spec["resize"] == min(tf.resize_size)
    assert p.spec["mean"] == pytest.approx(list(tf.mean)) and p.spec["std"] == pytest.approx(list(tf.std))
    assert weights.DEFAULT.name in p.name and type(weights.DEFAULT).__name__ in p.name
    # torchvision states its clip length in the weights' docs: 16 (ResNets), 128 (S3D)
    assert p.spec["frames"] == (128 if arch == "s3d" else 16) and p.spec["stride"] == 2
    ClipSpec.from_dict(p.spec)  # a valid spec


def test_presets_of_the_other_archs():
    assert preset_for("I3D").spec["mean"] == [0.5] * 3 and preset_for("i3d").spec["size"] == 224
    assert preset_for("c3d").spec["size"] == 112 and preset_for("c3d").spec["resize"] == 128
    assert preset_for("small3d") is None and preset_for(None) is None


def test_a_torchvision_state_dict_gets_its_preset(tmp_path):
    net = tvv.r3d_18(num_classes=5)
    path = tmp_path / "r3d.pth"
    torch.save(net.state_dict(), path)
    m = open_model(path, "r3d_18")
    assert m.kind == "classifier" and m.meta.input["size"] == 112 and m.meta.input["resize"] == 128
    assert "R3D_18_Weights.KINETICS400_V1" in m.meta.input_preset
    # a file that records its own spec keeps it
    torch.save({"state_dict": net.state_dict(), "input": {"frames": 8, "size": 64}}, path)
    m = open_model(path, "r3d_18")
    assert m.meta.input == {"frames": 8, "size": 64} and m.meta.input_preset is None


def test_clip_spec_resize_round_trip_and_old_dicts_unchanged():
    old = ClipSpec(frames=8, size=32)
    assert "resize" not in old.to_dict()  # specs without a resize serialise as before
    spec = ClipSpec(frames=4, size=112, resize=128)
    assert ClipSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="unknown input-spec key"):
        ClipSpec.from_dict({"frames": 4, "crop": 3})
    with pytest.raises(ValueError):
        ClipSpec.from_dict({"frames": 0})


def test_eval_transform_resizes_the_short_side_then_crops():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 240, 320, 3), dtype=np.uint8)
    spec = ClipSpec(frames=2, size=112, resize=128, mean=(0, 0, 0), std=(1, 1, 1))
    out = eval_transform(spec)(frames)
    assert out.shape == (3, 2, 112, 112)
    import torchvision.transforms.v2.functional as F

    ref = F.center_crop(F.resize(torch.from_numpy(frames).permute(0, 3, 1, 2), [128], antialias=True), [112])
    torch.testing.assert_close(out, ref.permute(1, 0, 2, 3).float() / 255)
    # without a resize the crop is the whole short side, as before
    assert torch.equal(eval_transform(ClipSpec(frames=2, size=112, mean=(0, 0, 0), std=(1, 1, 1)))(frames),
                       eval_transform(spec, resize=112)(frames))


@pytest.mark.slow  # an r3d_18 probed at 112 px: the slowest test of its run (113 s, loaded machine)
def test_probe_of_a_torchvision_state_dict_needs_no_input_flags(tmp_path):
    """`bebias probe r3d.pth --arch r3d_18` applies torchvision's preset and says so in one line."""
    import json

    net = tvv.r3d_18(num_classes=3)
    path = tmp_path / "r3d.pth"
    torch.save(net.state_dict(), path)
    data = "synthetic:classes=3,videos_per_class=2,test_videos_per_class=1,frames=12,size=32"
    r = bebias("probe", str(path), "--arch", "r3d_18", "--data", data, "--swap-backgrounds", "--max-videos", "3",
               "--out", str(tmp_path / "p"))
    assert r.returncode == 0, r.stderr
    assert "input spec: the torchvision R3D_18_Weights.KINETICS400_V1" in r.stderr and "--frames" in r.stderr
    pv = json.loads((tmp_path / "p" / "metrics.json").read_text())["provenance"]
    assert pv["input"]["frames"] == 16 and pv["input"]["size"] == 112 and pv["input"]["resize"] == 128
    assert "R3D_18_Weights" in pv["input_preset"]


def test_pretrained_weights_come_from_the_local_cache_only(tmp_path, monkeypatch):
    """--pretrained reads torchvision's file from $TORCH_HOME/hub/checkpoints; a missing one is
    one line saying where to put it (no download is attempted)."""
    from bebias.errors import BebiasError
    from bebias.models.backbones import build_backbone

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda *a, **k: pytest.fail("tried to download"))
    with pytest.raises(BebiasError, match="not in the local cache") as e:
        build_backbone("r3d_18", pretrained=True)
    assert str(tmp_path / "hub" / "checkpoints" / "r3d_18-b3b3357e.pth") in str(e.value)
    ref = tvv.r3d_18()  # stands in for the published file: same keys and shapes
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(ref.state_dict(), tmp_path / "hub" / "checkpoints" / "r3d_18-b3b3357e.pth")
    bb = build_backbone("r3d_18", pretrained=True)
    assert torch.equal(bb.layer4[1].conv2[0].weight, ref.layer4[1].conv2[0].weight)
