"""Checkpoints from other codebases: foreign state_dicts (--arch), TorchScript and torch.export archives."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch import nn
from bebias.errors import BebiasError
from bebias.models.backbones import build_backbone
from bebias.models.classifier import VideoClassifier
from bebias.models.foreign import adapt_state_dict, is_torchscript, load_foreign
from bebias.training.finetune import load_classifier


def _bebias(*args: str) -> subprocess.CompletedProcess:
    # a fresh process (as tests/test_cli.py): the TorchScript forward stalled inside the pytest process here
    return subprocess.run([sys.executable, "-m", "bebias", *args], capture_output=True, text=True, timeout=300)


def _tv_r3d(num_classes: int = 7) -> tuple[dict, nn.Module, nn.Linear]:
    """A torchvision-style r3d_18 state_dict: backbone keys + ``fc`` head."""
    torch.manual_seed(0)
    bb, fc = build_backbone("r3d_18"), nn.Linear(512, num_classes)
    return {**bb.state_dict(), **{f"fc.{k}": v for k, v in fc.state_dict().items()}}, bb, fc


def test_dataparallel_r3d_with_fc_head(tmp_path):
    sd, bb, fc = _tv_r3d(7)
    path = tmp_path / "r3d.pth"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in sd.items()}}, path)
    model, meta = load_foreign(path, "r3d_18")
    assert isinstance(model, VideoClassifier) and meta["kind"] == "classifier" and meta["num_classes"] == 7
    assert meta["foreign"]["prefixes"] == ["module."] and meta["foreign"]["layout"] == "dataparallel"
    assert torch.equal(model.fc.weight, fc.weight)
    assert torch.equal(model.backbone.state_dict()["layer4.1.conv2.0.weight"], bb.state_dict()["layer4.1.conv2.0.weight"])
    # load_classifier's callers take it too
    m2, meta2 = load_classifier(str(path), arch="r3d_18")
    assert m2.fc.out_features == 7 and meta2["arch"] == "r3d_18"


def test_moco_keeps_the_query_encoder_only():
    torch.manual_seed(0)
    q, k = build_backbone("small3d"), build_backbone("small3d")
    sd = {**{f"encoder_q.{n}": v for n, v in q.state_dict().items()},
          "encoder_q.fc.0.weight": torch.zeros(64, 256), "encoder_q.fc.2.weight": torch.zeros(32, 64),
          **{f"encoder_k.{n}": v + 1 for n, v in k.state_dict().items()},
          "queue": torch.zeros(32, 128), "queue_ptr": torch.zeros(1, dtype=torch.long)}
    bsd, head, report = adapt_state_dict({"state_dict": {f"module.{n}": v for n, v in sd.items()}}, "small3d")
    assert head is None and report["layout"] == "moco" and report["num_classes"] is None
    assert set(bsd) == set(q.state_dict())
    assert all(torch.equal(bsd[n], v) for n, v in q.state_dict().items())
    assert report["dropped"] == len(k.state_dict()) + 4


def test_lightning_layout_backbone_prefix_and_s3d_style_head():
    bb = build_backbone("small3d")
    sd = {**{f"model.backbone.{n}": v for n, v in bb.state_dict().items()},
          "model.classifier.1.weight": torch.randn(5, 256, 1, 1, 1), "model.classifier.1.bias": torch.zeros(5)}
    bsd, head, report = adapt_state_dict({"state_dict": sd, "hyper_parameters": {}}, "small3d")
    assert report["prefixes"] == ["model.", "backbone."] and report["layout"] == "lightning"
    assert head is not None and head["weight"].shape == (5, 256) and report["num_classes"] == 5


def test_missing_key_is_named():
    sd, _, _ = _tv_r3d()
    del sd["layer2.0.conv1.0.weight"]
    with pytest.raises(BebiasError, match=r"1 missing: layer2\.0\.conv1\.0\.weight"):
        adapt_state_dict(sd, "r3d_18")


def test_wrong_arch():
    sd, _, _ = _tv_r3d()
    with pytest.raises(BebiasError, match="do not match arch 'mc3_18'.*shape-mismatched"):
        adapt_state_dict(sd, "mc3_18")
    with pytest.raises(BebiasError, match="do not match arch 'small3d'.*missing"):
        adapt_state_dict(sd, "small3d")


def test_state_dict_without_arch_says_so(tmp_path):
    sd, _, _ = _tv_r3d()
    path = tmp_path / "r3d.pth"
    torch.save(sd, path)
    with pytest.raises(BebiasError, match="--arch"):
        load_foreign(path, None)


def test_torchscript_small3d_probe_cli(tmp_path):
    torch.manual_seed(0)
    model = VideoClassifier(build_backbone("small3d"), 3).eval()
    traced = torch.jit.trace(model, torch.zeros(1, 3, 4, 32, 32))
    path = tmp_path / "model.pt"
    torch.jit.save(traced, str(path), _extra_files={"bebias.json": json.dumps({"input": {"stride": 1}})})
    assert is_torchscript(path)
    m, meta = load_foreign(path, None)
    assert meta["kind"] == "archive" and meta["input"] == {"stride": 1}
    out = tmp_path / "probe"
    data = "synthetic:classes=3,videos_per_class=4,test_videos_per_class=3,frames=12,size=32"
    res = _bebias("probe", str(path), "--data", data, "--max-videos", "3", "--frames", "4", "--size", "32",
                  "--static-frame", "--out", str(out), "--device", "cpu")
    assert res.returncode == 0, res.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    pv = metrics["provenance"]
    assert pv["foreign"]["layout"] == "torchscript" and pv["checkpoint_kind"] == "classifier"
    assert pv["input"]["frames"] == 4 and pv["input"]["size"] == 32 and pv["input"]["stride"] == 1
    assert metrics["videos"]["probed"] == 3
    # without --frames/--size (and none in the archive) it says what is missing
    torch.jit.save(traced, str(path))
    res = _bebias("probe", str(path), "--data", data, "--out", str(out / "x"))
    assert res.returncode == 2 and "--frames" in res.stderr


def _export(tmp_path, batch: int | None, extra: dict | None = None):
    torch.manual_seed(0)
    model = VideoClassifier(build_backbone("small3d"), 3).eval()
    x = torch.randn(2 if batch is None else batch, 3, 4, 32, 32)
    dyn = ({0: torch.export.Dim("batch", min=1)},) if batch is None else None
    ep = torch.export.export(model, (x,), dynamic_shapes=dyn)
    path = tmp_path / "model.pt2"
    torch.export.save(ep, str(path), extra_files=extra)
    return model, path


@pytest.mark.parametrize("batch", [None, 2])
def test_torch_export_archive_loads_with_its_input_spec(tmp_path, batch):
    model, path = _export(tmp_path, batch, {"bebias.json": json.dumps({"input": {"stride": 2}})})
    m, meta = load_foreign(path, None)
    assert meta["kind"] == "archive" and meta["foreign"]["layout"] == "torch.export"
    assert meta["input"] == {"frames": 4, "size": 32, "stride": 2}  # static T, H = W from the program
    x = torch.randn(5, 3, 4, 32, 32)  # 5: not a multiple of a static batch of 2 -> chunked and padded
    with torch.no_grad():
        torch.testing.assert_close(m(x), model(x), rtol=1e-4, atol=1e-5)


def test_torch_export_probe_cli(tmp_path):
    _, path = _export(tmp_path, 2)
    out = tmp_path / "probe"
    data = "synthetic:classes=3,videos_per_class=4,test_videos_per_class=3,frames=12,size=32"
    res = _bebias("probe", str(path), "--data", data, "--max-videos", "3", "--static-frame", "--out", str(out),
                  "--device", "cpu")
    assert res.returncode == 0, res.stderr[-2000:]
    pv = json.loads((out / "metrics.json").read_text())["provenance"]
    assert pv["foreign"]["layout"] == "torch.export" and pv["input"]["frames"] == 4 and pv["input"]["size"] == 32


class _Boom:
    """Unpickling this runs code (it would create the marker file)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_torch_export_archive_with_pickled_code_is_refused(tmp_path):
    import io
    import zipfile

    _, path = _export(tmp_path, 2)
    marker = tmp_path / "executed"
    evil = tmp_path / "evil.pt2"
    buf = io.BytesIO()
    torch.save(_Boom(str(marker)), buf)
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(evil, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith("sample_inputs/model.pt"):
                data = buf.getvalue()
            dst.writestr(info, data)
    with pytest.raises(BebiasError, match="refused"):
        load_foreign(evil, None)
    assert not marker.exists()
    res = _bebias("probe", str(evil), "--out", str(tmp_path / "p"))
    assert res.returncode == 2 and "refused" in res.stderr and "Traceback" not in res.stderr
    assert not marker.exists()
