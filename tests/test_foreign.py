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
from bebias.models.foreign import adapt_state_dict, archive_layout, is_torchscript, load_foreign
from bebias.models.open import load_classifier


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
    assert m2.fc.out_features == 7 and meta2.arch == "r3d_18"


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


@pytest.mark.filterwarnings("ignore:`torch.jit.:FutureWarning")  # the test writes a TorchScript archive
def test_torchscript_small3d_probe_cli(tmp_path):
    torch.manual_seed(0)
    model = VideoClassifier(build_backbone("small3d"), 3).eval()
    traced = torch.jit.trace(model, torch.zeros(1, 3, 4, 32, 32))
    path = tmp_path / "model.pt"
    torch.jit.save(traced, str(path), _extra_files={"bebias.json": json.dumps({"input": {"stride": 1}})})
    assert is_torchscript(path)
    m, meta = load_foreign(path, None, trust_code=True)
    assert meta["kind"] == "archive" and meta["input"] == {"stride": 1}
    out = tmp_path / "probe"
    data = "synthetic:classes=3,videos_per_class=4,test_videos_per_class=3,frames=12,size=32"
    res = _bebias("probe", str(path), "--data", data, "--max-videos", "3", "--frames", "4", "--size", "32",
                  "--static-frame", "--out", str(out), "--device", "cpu", "--trust-code")
    assert res.returncode == 0, res.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    pv = metrics["provenance"]
    assert pv["foreign"]["layout"] == "torchscript" and pv["checkpoint_kind"] == "classifier"
    assert pv["input"]["frames"] == 4 and pv["input"]["size"] == 32 and pv["input"]["stride"] == 1
    assert metrics["videos"]["probed"] == 3
    # without --frames/--size (and none in the archive) it says what is missing
    torch.jit.save(traced, str(path))
    res = _bebias("probe", str(path), "--data", data, "--out", str(out / "x"), "--trust-code")
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


# --------------------------------------------------------------------------------------
# crafted .pt2 archives: every place torch.export.load would unpickle, every pickle protocol
# --------------------------------------------------------------------------------------

class _WithConstant(nn.Module):
    """small3d classifier times a tensor constant (lifted into data/constants/tensor_0)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = VideoClassifier(build_backbone("small3d"), 3)
        self.scale = torch.tensor([1.0, 2.0, 0.5])

    def forward(self, x):
        return self.net(x) * self.scale


@pytest.fixture(scope="module")
def pt2_base(tmp_path_factory):
    """(model, path of its torch.export.save archive: weights + one tensor constant, static batch 2)."""
    torch.manual_seed(0)
    model = _WithConstant().eval()
    ep = torch.export.export(model, (torch.randn(2, 3, 4, 32, 32),))
    path = tmp_path_factory.mktemp("pt2") / "model.pt2"
    torch.export.save(ep, str(path), extra_files={"bebias.json": json.dumps({"classes": ["a", "b", "c"]})})
    return model, path


def _rewrite(src, dst, replace: dict | None = None, add: dict | None = None, configs=None) -> None:
    """Copy the zip ``src`` to ``dst``: entries (relative to the root folder) replaced / added;
    ``configs(name, dict)`` edits the weights/constants JSON configs."""
    import zipfile

    with zipfile.ZipFile(src) as s, zipfile.ZipFile(dst, "w") as d:
        root = s.namelist()[0].split("/")[0]
        for info in s.infolist():
            rel = info.filename[len(root) + 1:]
            data = s.read(info.filename)
            if rel in (replace or {}):
                data = replace[rel]
            if configs is not None and rel.endswith("_config.json"):
                data = json.dumps(configs(rel, json.loads(data))).encode()
            d.writestr(info, data)
        for rel, data in (add or {}).items():
            d.writestr(f"{root}/{rel}", data)


def _marker_pickle(marker, protocol: int) -> bytes:
    """A pickle (no torch.save framing: protocols 0 and 1 start without 0x80) that creates ``marker``."""
    import pickle

    return pickle.dumps(_Boom(str(marker)), protocol=protocol)


def _use_pickle(name: str, path_name: str):
    def edit(rel, cfg):
        if rel.startswith(name):
            for meta in cfg["config"].values():
                if meta["path_name"] == path_name:
                    meta["use_pickle"] = True
        return cfg
    return edit


def _add_opaque(rel, cfg):
    if rel.startswith("data/constants/"):
        cfg["config"]["evil"] = {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": True,
                                 "tensor_meta": None}
    return cfg


def _craft(base, dst, marker, protocol: int, where: str) -> None:
    blob = _marker_pickle(marker, protocol)
    if where == "opaque_obj":  # an opaque-object constant: torch.export.load runs pickle.loads on it
        _rewrite(base, dst, add={"data/constants/opaque_obj_0": blob}, configs=_add_opaque)
    elif where == "constant":  # a tensor constant marked use_pickle: torch.load(weights_only=False)
        _rewrite(base, dst, replace={"data/constants/tensor_0": blob},
                 configs=_use_pickle("data/constants/", "tensor_0"))
    elif where == "weight":  # a weight marked use_pickle: torch.load(weights_only=False)
        _rewrite(base, dst, replace={"data/weights/weight_0": blob}, configs=_use_pickle("data/weights/", "weight_0"))
    elif where == "sample_inputs":  # torch retries weights_only=False when weights_only=True fails
        _rewrite(base, dst, replace={"data/sample_inputs/model.pt": blob})
    elif where == "legacy_constants":  # an entry torch.save no longer writes, still unpickled by torch
        _rewrite(base, dst, add={"data/constants/model.pt": blob})
    elif where == "unknown_entry":
        _rewrite(base, dst, add={"evil.pkl": blob})
    else:
        raise AssertionError(where)


_PLACES = ("opaque_obj", "constant", "weight", "sample_inputs", "legacy_constants", "unknown_entry")


@pytest.mark.parametrize("where", _PLACES)
@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_pt2_pickled_code_is_refused_in_every_place_and_protocol(tmp_path, pt2_base, where, protocol):
    marker = tmp_path / "executed"
    evil = tmp_path / "evil.pt2"
    _craft(pt2_base[1], evil, marker, protocol, where)
    assert archive_layout(evil) == "torch.export"
    with pytest.raises(BebiasError, match="refused") as info:
        load_foreign(evil, None)
    assert "\n" not in str(info.value) and str(evil) in str(info.value)
    assert not marker.exists()


def test_pt2_torch_save_payload_is_checked_with_weights_only(tmp_path, pt2_base):
    import io

    marker = tmp_path / "executed"
    buf = io.BytesIO()
    torch.save(_Boom(str(marker)), buf)  # a zip-framed torch.save pickle
    evil = tmp_path / "evil.pt2"
    _rewrite(pt2_base[1], evil, replace={"data/constants/tensor_0": buf.getvalue()},
             configs=_use_pickle("data/constants/", "tensor_0"))
    with pytest.raises(BebiasError, match=r"tensor_0 is a pickle that torch.load\(weights_only=True\) refuses"):
        load_foreign(evil, None)
    assert not marker.exists()


def test_pt2_pickled_tensor_that_passes_weights_only_still_loads(tmp_path, pt2_base):
    """A use_pickle payload that is a plain tensor (torch.save) is allowed, and loads the same."""
    import io
    import zipfile

    model, base = pt2_base
    with zipfile.ZipFile(base) as z:
        root = z.namelist()[0].split("/")[0]
        raw = z.read(f"{root}/data/constants/tensor_0")
    buf = io.BytesIO()
    torch.save(torch.frombuffer(bytearray(raw), dtype=torch.float32).clone(), buf, pickle_protocol=2)
    ok = tmp_path / "ok.pt2"
    _rewrite(base, ok, replace={"data/constants/tensor_0": buf.getvalue()},
             configs=_use_pickle("data/constants/", "tensor_0"))
    m, _ = load_foreign(ok, None)
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(m(x), model(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("field,value,why", [
    ("expr_str", "__import__('os').system('touch {marker}') or Symbol('s77', positive=True, integer=True)",
     "symbolic size"),
    ("guards_code", ["__import__('os').system('touch {marker}') == 0"], "guard code"),
])
def test_pt2_program_code_is_refused(tmp_path, field, value, why):
    """models/model.json: symbolic sizes go through sympify (eval), guards through exec."""
    _, path = _export(tmp_path, None)  # a dynamic batch: the program has symbolic sizes
    marker = tmp_path / "executed"
    value = json.loads(json.dumps(value).replace("{marker}", str(marker)))

    def edit(program):
        if field == "guards_code":
            program["guards_code"] = value
        else:  # the first symbolic size (the batch) of the program
            sizes = [d for t in program["graph_module"]["graph"]["tensor_values"].values() for d in t["sizes"]]
            next(d for d in sizes if "as_expr" in d)["as_expr"]["expr_str"] = value
        return program

    import zipfile
    with zipfile.ZipFile(path) as z:
        root = z.namelist()[0].split("/")[0]
        program = json.loads(z.read(f"{root}/models/model.json"))
    evil = tmp_path / "evil.pt2"
    _rewrite(path, evil, replace={"models/model.json": json.dumps(edit(program)).encode()})
    with pytest.raises(BebiasError, match=f"refused.*{why}"):
        m, _ = load_foreign(evil, None)
        m(torch.randn(2, 3, 4, 32, 32))
    assert not marker.exists()


def test_pt2_harmless_archive_loads_once_with_the_same_output(tmp_path, pt2_base, monkeypatch):
    from bebias.models.open import open_model

    model, path = pt2_base
    calls = []
    real_load = torch.export.load

    def counting_load(*a, **k):
        calls.append(a)
        return real_load(*a, **k)

    monkeypatch.setattr(torch.export, "load", counting_load)
    assert archive_layout(path) == "torch.export" and calls == []  # a look at the zip, no load
    m = open_model(str(path))
    net, head = m.backbone, m.head
    assert len(calls) == 1 and m.kind == "classifier" and m.meta.classes == ("a", "b", "c")
    assert m.archive == "torch.export"
    x = torch.randn(3, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(head(net(x)), model(x), rtol=1e-4, atol=1e-5)


def test_pt2_opaque_object_protocol_0_probe_cli(tmp_path, pt2_base):
    """The reported exploit, through the CLI: exit code 2, one line, the payload did not run."""
    marker = tmp_path / "executed"
    evil = tmp_path / "evil.pt2"
    _craft(pt2_base[1], evil, marker, 0, "opaque_obj")
    res = _bebias("probe", str(evil), "--out", str(tmp_path / "p"), "--device", "cpu")
    assert res.returncode == 2, res.stderr[-2000:]
    lines = [s for s in (res.stdout + res.stderr).splitlines() if s.strip()]
    assert len(lines) == 1 and "refused" in lines[0] and "opaque_obj_0" in lines[0], lines
    assert not marker.exists()


@pytest.mark.parametrize("trick", ["duplicate", "outside_root", "aotinductor"])
def test_pt2_zip_tricks_are_refused(tmp_path, pt2_base, trick):
    """Entries that torch's zip reader and Python's could see differently, or that load_pt2 handles
    outside the exported program (the pre-2.8 format at the zip's top level, AOTInductor libraries)."""
    import warnings
    import zipfile

    marker = tmp_path / "executed"
    blob = _marker_pickle(marker, 0)
    evil = tmp_path / "evil.pt2"
    _rewrite(pt2_base[1], evil, configs=_use_pickle("data/constants/", "tensor_0"))
    with zipfile.ZipFile(evil, "a") as z, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile: "Duplicate name"
        root = z.namelist()[0].split("/")[0]
        name = {"duplicate": f"{root}/data/constants/tensor_0", "outside_root": "version",
                "aotinductor": f"{root}/data/aotinductor/model/model.so"}[trick]
        z.writestr(name, blob)
    why = {"duplicate": "appears twice", "outside_root": "outside the archive's folder",
           "aotinductor": "unexpected entry data/aotinductor/"}[trick]
    with pytest.raises(BebiasError, match=f"refused.*{why}") as info:
        load_foreign(evil, None)
    assert "\n" not in str(info.value)
    assert not marker.exists()
