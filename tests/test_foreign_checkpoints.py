"""Other toolkits' checkpoints without the toolkits: mmaction2's Video Swin layout, ALBAR-style
``model_state_dict`` files, and ``--model module:function`` for any other network.

The mmaction2 fixture is written here from bebias's own swin3d_t with the inverse of the key
map, spelt out independently of :mod:`bebias.models.toolkits` (mmaction2's module names:
``layers.i.blocks.j``, ``downsample``, ``mlp.fc1/fc2``, ``norm3``, ``cls_head.fc_cls``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch
import torchvision.models.video as tvv

from bebias.errors import BebiasError
from bebias.models.backbones import build_backbone
from bebias.models.classifier import VideoClassifier
from bebias.models.foreign import adapt_state_dict
from bebias.models.open import open_model

DATA = "synthetic:classes=3,videos_per_class=2,test_videos_per_class=1,frames=12,size=32"
X = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(0))


def bebias(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p)}
    return subprocess.run([sys.executable, "-m", "bebias", *args], capture_output=True, text=True, timeout=600,
                          cwd=cwd, env=env)


def _to_mmaction2(key: str) -> str:
    """bebias / torchvision swin3d key -> mmaction2's (the test's own inverse map)."""
    m = re.fullmatch(r"features\.(\d+)\.(.*)", key)
    if m:
        idx, rest = int(m.group(1)), m.group(2)
        if idx % 2:  # patch merging after stage idx // 2
            return f"backbone.layers.{idx // 2}.downsample.{rest}"
        block, rest = rest.split(".", 1)
        rest = rest.replace("mlp.0.", "mlp.fc1.").replace("mlp.3.", "mlp.fc2.")
        return f"backbone.layers.{idx // 2}.blocks.{block}.{rest}"
    if key.startswith("norm."):
        return "backbone.norm3." + key[len("norm."):]
    return "backbone." + key


@pytest.fixture(scope="module")
def swin():
    torch.manual_seed(0)
    net = VideoClassifier(build_backbone("swin3d_t"), 3).eval()
    sd = {_to_mmaction2(k): v for k, v in net.backbone.state_dict().items()}
    sd.update({"cls_head.fc_cls.weight": net.fc.weight.detach(), "cls_head.fc_cls.bias": net.fc.bias.detach()})
    with torch.no_grad():
        ref = net(X)
    return net, sd, ref


def _save(tmp_path, sd, name="mm.pth", meta=True):
    path = tmp_path / name
    torch.save({"meta": {"mmaction2_version": "1.2.0", "epoch": 30}, "state_dict": sd} if meta else sd, path)
    return str(path)


def test_mmaction2_swin_loads_with_its_head(tmp_path, swin):
    _, sd, ref = swin
    m = open_model(_save(tmp_path, sd), "swin3d_t")
    assert m.kind == "classifier" and m.meta.num_classes == 3 and m.meta.foreign["toolkit"] == "mmaction2"
    assert "Swin3D_T_Weights" in m.meta.input_preset  # the same Kinetics recipe as torchvision's port
    with torch.no_grad():
        assert torch.allclose(m.classifier()(X), ref, atol=1e-5)


def test_mmaction2_older_layout_norm_and_no_window_index(tmp_path, swin):
    """The Video-Swin repository's ``backbone.norm`` and a file without the derived index buffers
    (one per block: 2 + 2 + 6 + 2)."""
    _, sd, ref = swin
    old = {("backbone.norm." + k[len("backbone.norm3."):] if k.startswith("backbone.norm3.") else k): v
           for k, v in sd.items() if not k.endswith("relative_position_index")}
    old["data_preprocessor.mean"] = torch.tensor([123.675, 116.28, 103.53])
    m = open_model(_save(tmp_path, old), "swin3d_t")
    assert m.meta.foreign["toolkit_filled"] == 12 and m.meta.foreign["toolkit_dropped"] == ["data_preprocessor.mean"]
    with torch.no_grad():
        assert torch.allclose(m.classifier()(X), ref, atol=1e-5)


def test_mmaction2_renamed_key_is_refused_naming_it(tmp_path, swin):
    _, sd, _ = swin
    bad = dict(sd)
    bad["backbone.layers.2.blocks.3.mlp.fc_1.weight"] = bad.pop("backbone.layers.2.blocks.3.mlp.fc1.weight")
    path = _save(tmp_path, bad)
    with pytest.raises(BebiasError) as e:
        open_model(path, "swin3d_t")
    assert "'backbone.layers.2.blocks.3.mlp.fc_1.weight' does not map to swin3d_t" in str(e.value)
    r = bebias("probe", path, "--arch", "swin3d_t", "--data", DATA)
    assert r.returncode == 2 and "backbone.layers.2.blocks.3.mlp.fc_1.weight" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_mmaction2_other_arch_and_deeper_network_are_refused(tmp_path, swin):
    _, sd, _ = swin
    path = _save(tmp_path, sd)
    with pytest.raises(BebiasError, match="onto swin3d_t, swin3d_s or swin3d_b, not --arch r3d_18"):
        open_model(path, "r3d_18")
    deeper = {**sd, "backbone.layers.2.blocks.6.norm1.weight": torch.ones(384)}  # a Swin-S block
    with pytest.raises(BebiasError, match="'backbone.layers.2.blocks.6.norm1.weight' does not map to swin3d_t"):
        open_model(_save(tmp_path, deeper, "deep.pth"), "swin3d_t")
    wrong = dict(sd)
    wrong["backbone.layers.0.blocks.0.attn.relative_position_index"] = torch.zeros(392, 392, dtype=torch.long)
    with pytest.raises(BebiasError, match="window index"):
        open_model(_save(tmp_path, wrong, "idx.pth"), "swin3d_t")


def test_mmaction2_head_without_meta_is_recognised(tmp_path, swin):
    _, sd, ref = swin
    m = open_model(str(_save(tmp_path, {"state_dict": sd}, "nometa.pth", meta=False)), "swin3d_t")
    assert m.meta.foreign["toolkit"] == "mmaction2"
    with torch.no_grad():
        assert torch.allclose(m.classifier()(X), ref, atol=1e-5)


# ------------------------------------------------------------------------------ ALBAR-style

@pytest.fixture(scope="module")
def albar():
    torch.manual_seed(2)
    net = tvv.swin3d_t(num_classes=3).eval()  # ALBAR fine-tunes torchvision's swin3d_t
    with torch.no_grad():
        ref = net(X)
    sd = {"module." + k: v for k, v in net.state_dict().items()}  # DataParallel
    return sd, ref


def test_albar_style_model_state_dict_loads(tmp_path, albar):
    sd, ref = albar
    path = tmp_path / "albar.pth"
    torch.save({"epoch": 7, "model_state_dict": sd, "optimizer_state_dict": {}}, path)
    m = open_model(str(path), "swin3d_t")
    assert m.meta.foreign["toolkit"] == "albar" and m.meta.num_classes == 3
    with torch.no_grad():
        assert torch.allclose(m.classifier()(X), ref, atol=1e-5)


def test_albar_style_unknown_key_is_refused_naming_it(tmp_path, albar):
    sd, _ = albar
    bad = {**sd, "module.bias_head.weight": torch.zeros(3, 768)}
    path = tmp_path / "albar-bad.pth"
    torch.save({"epoch": 7, "model_state_dict": bad}, path)
    with pytest.raises(BebiasError, match="key 'module.bias_head.weight' does not map to torchvision's swin3d_t"):
        open_model(str(path), "swin3d_t")


def test_torchvision_mvit_head_is_recognised():
    with torch.device("meta"):
        sd = tvv.mvit_v2_s(num_classes=5).state_dict()
    _, head, report = adapt_state_dict(sd, "mvit_v2_s")
    assert report["head"] == "head.1.weight" and head["weight"].shape == (5, 768)


# ------------------------------------------------------------------------------ --model

NETS = '''
import torch
from torch import nn


def build():
    """(B, 3, T, H, W) -> (B, 4) logits."""
    return nn.Sequential(nn.Conv3d(3, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten(),
                         nn.Linear(6, 4))


def broken():
    raise RuntimeError("no GPU here")
'''


@pytest.fixture()
def user_ckpt(tmp_path):
    (tmp_path / "nets.py").write_text(NETS)
    sys.path.insert(0, str(tmp_path))
    try:
        import importlib

        nets = importlib.import_module("nets")
        importlib.reload(nets)
        torch.manual_seed(3)
        net = nets.build().eval()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("nets", None)
    torch.save({"state_dict": {"module." + k: v for k, v in net.state_dict().items()}}, tmp_path / "user.pth")
    return tmp_path, net


def test_user_model_is_filled_strictly(user_ckpt):
    tmp, net = user_ckpt
    m = open_model(str(tmp / "user.pth"), model=f"{tmp / 'nets.py'}:build")
    assert m.meta.foreign == {"layout": "user-model", "model": f"{tmp / 'nets.py'}:build",
                                 "container": ["state_dict"], "prefix": "module."}
    with torch.no_grad():
        assert torch.equal(m.head(m.backbone(X)), net(X))
    torch.save({"4.weight": torch.zeros(4, 6)}, tmp / "partial.pth")
    with pytest.raises(BebiasError, match=r"weights do not fill --model .*missing: 0.weight"):
        open_model(str(tmp / "partial.pth"), model=f"{tmp / 'nets.py'}:build")
    for spec, why in (("nets", "must be MODULE:FUNCTION"), (f"{tmp / 'nets.py'}:nothing", "has no 'nothing'"),
                      (f"{tmp / 'nets.py'}:broken", "failed: RuntimeError: no GPU here"),
                      ("no_such_module_xyz:build", "no module 'no_such_module_xyz'")):
        with pytest.raises(BebiasError, match=why):
            open_model(str(tmp / "user.pth"), model=spec)
    with pytest.raises(BebiasError, match="alternatives"):
        open_model(str(tmp / "user.pth"), "r3d_18", model=f"{tmp / 'nets.py'}:build")


def test_user_model_probe_and_cam_from_the_cli(user_ckpt):
    tmp, _ = user_ckpt
    (tmp / "nets3.py").write_text(NETS.replace("nn.Linear(6, 4)", "nn.Linear(6, 3)"))
    torch.manual_seed(0)
    import importlib.util

    spec = importlib.util.spec_from_file_location("nets3_test", tmp / "nets3.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.save(mod.build().state_dict(), tmp / "user3.pth")
    r = bebias("probe", "user3.pth", "--model", "nets3:build", "--frames", "4", "--size", "32", "--data", DATA,
               "--swap-backgrounds", "--max-videos", "3", "--out", "p", cwd=str(tmp))
    assert r.returncode == 0, r.stderr
    assert (tmp / "p" / "metrics.json").exists()
    r = bebias("cam", "user3.pth", "--model", "nets3:build", "--layer", "0", "--frames", "4", "--size", "32",
               "--data", DATA, "--n", "2", "--format", "none", "--out", "c", cwd=str(tmp))
    assert r.returncode == 0, r.stderr
    assert (tmp / "c" / "cam.json").exists()
