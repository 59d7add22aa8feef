"""Hostile model files (issue 23): a torch.export graph that writes files, TorchScript code at
load and at run time, a model that fails or hangs on a batch, decompression bombs, and bebias
checkpoints with hand-edited metadata. Each is refused in one line, and nothing it carries runs."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from typing import Tuple

import pytest
import torch
from torch import nn

from bebias.errors import BebiasError
from bebias.models.foreign import ArchiveClassifier, load_foreign
from tests.inproc import message_lines

DATA = "synthetic:classes=3,videos_per_class=4,test_videos_per_class=3,frames=12,size=32"
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.:FutureWarning")  # the tests write TorchScript


def _bebias(*args: str, before: str = "") -> subprocess.CompletedProcess:
    """The CLI in a fresh process; ``before``: Python run first (e.g. a shorter time bound)."""
    code = f"{before}\nfrom bebias.cli import main\nmain()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def _one_line_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    lines = message_lines(r.stderr)  # progress lines may come before the one error line
    assert len(lines) == 1, lines
    return lines[0]


class Tiny(nn.Module):
    """conv / bn / relu / pool / linear: (B, 3, T, H, W) -> (B, 3)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn, self.pool = nn.Conv3d(3, 4, 3, padding=1), nn.BatchNorm3d(4), nn.MaxPool3d(2)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(torch.relu(self.bn(self.conv(x)))).mean((2, 3, 4)))


# --------------------------------------------------------------------------------------
# item 1: torch.export graphs may call only pure tensor operators
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_pt2(tmp_path_factory):
    torch.manual_seed(0)
    ep = torch.export.export(Tiny().eval(), (torch.randn(2, 3, 4, 16, 16),))
    path = tmp_path_factory.mktemp("pt2") / "tiny.pt2"
    torch.export.save(ep, str(path))
    return path


def _program(path) -> dict:
    with zipfile.ZipFile(path) as z:
        root = z.namelist()[0].split("/")[0]
        return json.loads(z.read(f"{root}/models/model.json"))


def _with_program(src, dst, program: dict) -> None:
    with zipfile.ZipFile(src) as s, zipfile.ZipFile(dst, "w") as d:
        for info in s.infolist():
            data = s.read(info.filename)
            d.writestr(info, json.dumps(program).encode() if info.filename.endswith("models/model.json") else data)


def _tensor_value(dtype: int, sizes: list[int]) -> dict:
    strides = [1] * len(sizes)
    for i in range(len(sizes) - 2, -1, -1):
        strides[i] = strides[i + 1] * sizes[i + 1]
    return {"dtype": dtype, "sizes": [{"as_int": s} for s in sizes], "requires_grad": False,
            "device": {"type": "cpu", "index": None}, "strides": [{"as_int": s} for s in strides],
            "storage_offset": {"as_int": 0}, "layout": 7}


def _node(target: str, inputs: list, out: str, kwonly=("dtype",)) -> dict:
    return {"target": target, "inputs": [{"name": k, "arg": v, "kind": 2 if k in kwonly else 1} for k, v in inputs],
            "outputs": [{"as_tensor": {"name": out}}], "metadata": {}, "is_hop_single_tensor_return": None}


def _from_file_writer(program: dict, marker: str, content: bytes) -> dict:
    """The reported exploit: ``aten.from_file(marker, shared=True, size=n)`` then, per byte,
    ``select`` + ``fill_``: the mapped file gets ``content``."""
    g = program["graph_module"]["graph"]
    nodes = [_node("torch.ops.aten.from_file.default", [("filename", {"as_string": marker}),
             ("shared", {"as_bool": True}), ("size", {"as_int": len(content)}), ("dtype", {"as_scalar_type": 1})],
             "evil_file")]
    g["tensor_values"]["evil_file"] = _tensor_value(1, [len(content)])
    for i, b in enumerate(content):
        nodes.append(_node("torch.ops.aten.select.int", [("self", {"as_tensor": {"name": "evil_file"}}),
                           ("dim", {"as_int": 0}), ("index", {"as_int": i})], f"evil_sel{i}"))
        nodes.append(_node("torch.ops.aten.fill_.Scalar", [("self", {"as_tensor": {"name": f"evil_sel{i}"}}),
                           ("value", {"as_int": b})], f"evil_fill{i}"))
        g["tensor_values"][f"evil_sel{i}"] = g["tensor_values"][f"evil_fill{i}"] = _tensor_value(1, [])
    g["nodes"] = nodes + g["nodes"]
    return program


def test_pt2_graph_that_writes_a_file_is_refused_and_writes_nothing(tmp_path, tiny_pt2):
    marker = tmp_path / "written"
    evil = tmp_path / "evil.pt2"
    _with_program(tiny_pt2, evil, _from_file_writer(_program(tiny_pt2), str(marker), b"pwned\n"))
    with pytest.raises(BebiasError, match=r"refused.*aten\.from_file\.default") as info:
        m, _ = load_foreign(evil, None)
        m(torch.zeros(2, 3, 4, 16, 16))  # the old code loaded it, and this call wrote the file
    assert "\n" not in str(info.value) and not marker.exists()
    line = _one_line_error(_bebias("probe", str(evil), "--data", DATA, "--max-videos", "3", "--static-frame",
                                   "--out", str(tmp_path / "p"), "--device", "cpu"))
    assert "aten.from_file.default" in line and str(evil) in line
    assert not marker.exists()


def _first(g: dict, target: str) -> dict:
    return next(n for n in g["nodes"] if n["target"] == target)


def _edit(case: str, program: dict) -> dict:
    g = program["graph_module"]["graph"]
    sig = program["graph_module"]["signature"]
    if case == "inplace_on_weight":  # relu_ on the conv weight: the module's own state
        g["nodes"].insert(0, _node("torch.ops.aten.relu_.default", [("self", {"as_tensor": {"name": "p_conv_weight"}})],
                                   "evil"))
    elif case == "inplace_on_view_of_input":  # fill_ through a view of the clip
        g["nodes"][:0] = [_node("torch.ops.aten.select.int", [("self", {"as_tensor": {"name": "x"}}),
                                ("dim", {"as_int": 0}), ("index", {"as_int": 0})], "v"),
                          _node("torch.ops.aten.fill_.Scalar", [("self", {"as_tensor": {"name": "v"}}),
                                ("value", {"as_int": 0})], "evil")]
    elif case == "dropout_in_training":
        g["nodes"].insert(0, _node("torch.ops.aten.dropout.default", [("input", {"as_tensor": {"name": "x"}}),
                                   ("p", {"as_float": 0.5}), ("train", {"as_bool": True})], "evil"))
    elif case == "batch_norm_in_training":  # updates the running statistics in place
        n = _first(g, "torch.ops.aten.batch_norm.default")
        next(i for i in n["inputs"] if i["name"] == "training")["arg"] = {"as_bool": True}
    elif case == "random":
        g["nodes"].insert(0, _node("torch.ops.aten.rand.default", [("size", {"as_ints": [3]})], "evil"))
    elif case == "python_function":  # deserialize_operator resolves any torch.X attribute
        n = _first(g, "torch.ops.aten.linear.default")
        n["target"] = "torch.save"
    elif case == "out_overload":
        n = _first(g, "torch.ops.aten.relu.default")
        n["target"] = "torch.ops.aten.relu.out"
    elif case == "higher_order":
        g["nodes"].insert(0, {**_node("torch.ops.higher_order.cond", [], "evil")})
    elif case == "graph_argument":
        n = _first(g, "torch.ops.aten.relu.default")
        n["inputs"].append({"name": "g", "arg": {"as_graph": {"name": "sub", "graph": {"nodes": []}}}, "kind": 1})
    elif case == "buffer_mutation":  # an output written back into a buffer after every call
        sig["output_specs"].append({"buffer_mutation": {"arg": {"name": "linear"}, "buffer_name": "bn.running_mean"}})
    else:
        raise AssertionError(case)
    return program


@pytest.mark.parametrize("case,why", [
    ("inplace_on_weight", r"in-place aten\.relu_\.default on p_conv_weight"),
    ("inplace_on_view_of_input", r"in-place aten\.fill_\.Scalar on v"),
    ("dropout_in_training", r"aten\.dropout\.default with train not False"),
    ("batch_norm_in_training", r"aten\.batch_norm\.default with training not False"),
    ("random", r"aten\.rand\.default, which is not one of the pure"),
    ("python_function", r"calls torch\.save, which"),
    ("out_overload", r"aten\.relu\.out, which"),
    ("higher_order", r"torch\.ops\.higher_order\.cond, which"),
    ("graph_argument", r"takes a as_graph argument"),
    ("buffer_mutation", r"buffer_mutation entry in output_specs"),
])
def test_pt2_graph_outside_the_operator_allowlist_is_refused(tmp_path, tiny_pt2, case, why):
    program = _program(tiny_pt2)
    assert program["graph_module"]["graph"]["inputs"][-1] == {"as_tensor": {"name": "x"}}  # what the edits use
    evil = tmp_path / "evil.pt2"
    _with_program(tiny_pt2, evil, _edit(case, program))
    with pytest.raises(BebiasError, match=f"refused.*{why}") as info:
        load_foreign(evil, None)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("arch,dynamic,decompose", [
    ("tiny", False, False), ("tiny", True, True), ("small3d", True, False), ("small3d", False, True),
    ("r3d_18", False, False),
])
def test_pt2_exports_of_our_own_backbones_pass_and_compute_the_same(tmp_path, arch, dynamic, decompose):
    """Real exports (training IR: relu_ / add_ on intermediates; decomposed: convolution, addmm,
    _native_batch_norm_legit_no_training, max_pool3d_with_indices, sym_size) are allowed."""
    from bebias.models.backbones import build_backbone
    from bebias.models.classifier import VideoClassifier

    torch.manual_seed(0)
    model = (Tiny() if arch == "tiny" else VideoClassifier(build_backbone(arch), 3)).eval()
    x = torch.randn(2, 3, 4, 16, 16)
    ep = torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim("b", min=1)},) if dynamic else None)
    path = tmp_path / "m.pt2"
    torch.export.save(ep.run_decompositions() if decompose else ep, str(path))
    m, meta = load_foreign(path, None)
    assert meta["foreign"]["layout"] == "torch.export"
    x = torch.randn(3, 3, 4, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(m(x), model(x), rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------------------
# item 2: TorchScript runs code: refused unless --trust-code; a __setstate__ always
# --------------------------------------------------------------------------------------

class _Payload(nn.Module):
    """A submodule whose scripted __setstate__ writes ``!`` into the file ``marker`` while
    torch.jit.load restores it."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    @torch.jit.export
    def __getstate__(self) -> Tuple[str, bool]:
        return (self.marker, self.training)

    @torch.jit.export
    def __setstate__(self, state: Tuple[str, bool]) -> None:
        self.marker = state[0]
        self.training = state[1]
        torch.from_file(state[0], True, 1, dtype=torch.uint8).fill_(33)


class _WithSetstate(nn.Module):
    def __init__(self, marker: str) -> None:
        super().__init__()
        self.payload, self.fc = _Payload(marker), nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.payload(x).mean(dim=(2, 3, 4)))


@pytest.fixture
def setstate_archive(tmp_path):
    marker = tmp_path / "written"
    path = tmp_path / "evil.pt"
    torch.jit.save(torch.jit.script(_WithSetstate(str(marker))), str(path))
    marker.unlink(missing_ok=True)
    return path, marker


def test_torchscript_is_refused_without_trust_code_and_its_setstate_even_with_it(setstate_archive):
    path, marker = setstate_archive
    with pytest.raises(BebiasError, match=r"TorchScript archive.*executes the code it carries.*--trust-code"):
        load_foreign(path, None)
    assert not marker.exists()
    with pytest.raises(BebiasError, match=r"refused even with --trust-code: code/.*\.py defines __setstate__"):
        load_foreign(path, None, trust_code=True)
    assert not marker.exists()


def test_torchscript_setstate_runs_in_no_command(tmp_path, setstate_archive):
    """eval and cam refuse an archive before loading it (the old code ran its __setstate__ first);
    probe with --trust-code names the __setstate__ (without, see the never-returning model below)."""
    path, marker = setstate_archive
    common = ("--data", DATA, "--frames", "4", "--size", "32", "--device", "cpu")
    assert "archive" in _one_line_error(_bebias("eval", str(path), "--data", DATA, "--device", "cpu"))
    assert "no layers to hook" in _one_line_error(_bebias("cam", str(path), *common, "--out", str(tmp_path / "c")))
    assert "__setstate__" in _one_line_error(_bebias("probe", str(path), *common, "--out", str(tmp_path / "p"),
                                                     "--trust-code"))
    assert not marker.exists()


# --------------------------------------------------------------------------------------
# item 20 and the hang: whatever a trusted archive's forward does is one line
# --------------------------------------------------------------------------------------

class _OneClipOnly(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > 1:
            raise RuntimeError("this model takes one clip at a time")
        return x.mean(dim=(2, 3, 4))


def test_torchscript_failing_on_a_batch_is_one_line_naming_file_and_shape(tmp_path):
    path = tmp_path / "one.pt"
    torch.jit.save(torch.jit.script(_OneClipOnly()), str(path))
    m, _ = load_foreign(path, None, trust_code=True)
    assert m(torch.zeros(1, 3, 2, 8, 8)).shape == (1, 3)
    with pytest.raises(BebiasError, match=r"one\.pt: the torchscript model fails on a \(2, 3, 2, 8, 8\) batch "
                                          r"\(.*one clip at a time"):
        m(torch.zeros(2, 3, 2, 8, 8))
    line = _one_line_error(_bebias("probe", str(path), "--data", DATA, "--frames", "4", "--size", "32",
                                   "--max-videos", "3", "--static-frame", "--out", str(tmp_path / "p"),
                                   "--device", "cpu", "--trust-code"))
    assert str(path) in line and "fails on a (" in line and "one clip at a time" in line


class _Spin(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        i = 0
        while i < 20000000:  # seconds of TorchScript interpreter: a hang, as far as a 0.3 s bound is concerned
            i += 1
        return x.mean(dim=(2, 3, 4))


class _Forever(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        while True:
            x = x + 1
        return x.mean(dim=(2, 3, 4))


def test_archive_first_call_is_bounded_in_time(tmp_path, monkeypatch):
    from bebias.models import foreign

    path = tmp_path / "spin.pt"
    torch.jit.save(torch.jit.script(_Spin()), str(path))
    m, _ = load_foreign(path, None, trust_code=True)
    assert isinstance(m, ArchiveClassifier)
    monkeypatch.setattr(foreign, "FIRST_CALL_TIMEOUT_S", 0.3)
    t0 = time.perf_counter()
    with pytest.raises(BebiasError, match=r"spin\.pt: the torchscript model did not return within 0\.3 s on a "
                                          r"\(1, 3, 2, 8, 8\) batch"):
        m(torch.zeros(1, 3, 2, 8, 8))
    assert time.perf_counter() - t0 < 2


def test_torchscript_that_never_returns_cannot_hang_the_probe(tmp_path):
    path = tmp_path / "forever.pt"
    torch.jit.save(torch.jit.script(_Forever()), str(path))
    args = ("probe", str(path), "--data", DATA, "--frames", "4", "--size", "32", "--static-frame", "--device", "cpu",
            "--out", str(tmp_path / "p"))
    assert "--trust-code" in _one_line_error(_bebias(*args))  # by default its code does not run at all
    t0 = time.perf_counter()
    line = _one_line_error(_bebias(*args, "--trust-code",
                                   before="import bebias.models.foreign as f; f.FIRST_CALL_TIMEOUT_S = 2"))
    assert "did not return within 2 s" in line and time.perf_counter() - t0 < 60


# --------------------------------------------------------------------------------------
# item 9: a checkpoint's declared record sizes are checked before anything is inflated
# --------------------------------------------------------------------------------------

def _bomb(path, nbytes: int):
    """A torch.save-format file of one tensor whose single record is ``nbytes`` of deflated zeros
    (1 GiB deflates to about 4.5 MB at level 1)."""
    import collections
    import pickle

    storage = object()

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.ByteStorage, "0", "cpu", nbytes) if obj is storage else None

    class Rebuilt:
        def __reduce__(self):
            return torch._utils._rebuild_tensor_v2, (storage, 0, (nbytes,), (1,), False, collections.OrderedDict())

    pkl = io.BytesIO()
    Pickler(pkl, protocol=2).dump(Rebuilt())
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pkl.getvalue())
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")
        info = zipfile.ZipInfo("archive/data/0")
        info.compress_type, info._compresslevel = zipfile.ZIP_DEFLATED, 1
        chunk = bytes(16 << 20)
        with z.open(info, "w", force_zip64=True) as f:
            for start in range(0, nbytes, len(chunk)):
                f.write(chunk[:nbytes - start])
    return path


def test_the_fixed_caps_hold_every_arch_bebias_builds():
    from bebias.checkpoint import MAX_RECORD_BYTES, MAX_TOTAL_BYTES
    from bebias.models.backbones import ARCHS, build_backbone

    with torch.device("meta"):
        sizes = [sum(v.numel() * v.element_size() for v in build_backbone(a).state_dict().values()) for a in ARCHS]
    assert MAX_RECORD_BYTES >= 2 * max(sizes) and MAX_TOTAL_BYTES >= 8 * max(sizes)


def test_a_decompression_bomb_is_refused_before_it_is_inflated(tmp_path):
    from bebias.checkpoint import MAX_TOTAL_BYTES, load_file

    bomb = _bomb(tmp_path / "bomb.pth", MAX_TOTAL_BYTES + (64 << 20))  # ~15 MB on disk
    assert os.path.getsize(bomb) < 24 << 20
    declared = (MAX_TOTAL_BYTES >> 20) + 64  # 3136 MiB
    with pytest.raises(BebiasError, match=rf"bomb\.pth: refused before loading: record data/0 declares {declared} MiB "
                                          r"uncompressed"):
        load_file(bomb)


def test_a_bomb_given_with_its_arch_is_refused_against_that_arch(tmp_path):
    """--arch small3d (14 MiB of parameters): a 64 MiB record is already too much for it."""
    bomb = _bomb(tmp_path / "bomb.pth", 64 << 20)
    line = _one_line_error(_bebias("probe", str(bomb), "--arch", "small3d", "--data", DATA, "--out",
                                   str(tmp_path / "p"), "--device", "cpu"))
    assert "refused before loading: record data/0 declares 64 MiB" in line and "arch 'small3d'" in line


# --------------------------------------------------------------------------------------
# item 19: hand-edited metadata of a bebias checkpoint
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bebias_ckpt(tmp_path_factory):
    """A real (untrained) small3d classifier checkpoint of 3 classes, as bebias finetune writes one."""
    from bebias.checkpoint import load_checkpoint, save_checkpoint
    from bebias.models.backbones import build_backbone

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ck") / "model.pth"
    save_checkpoint(path, {"kind": "classifier", "arch": "small3d", "method": "supervised",
                           "config": {"data": DATA}, "input": {"frames": 4, "stride": 1, "size": 32,
                                                               "mean": [0.45, 0.45, 0.45], "std": [0.225] * 3},
                           "classes": ["a", "b", "c"], "num_classes": 3,
                           "backbone": build_backbone("small3d").state_dict(), "head": nn.Linear(256, 3).state_dict()})
    return load_checkpoint(path)


_MISSING = object()


@pytest.mark.parametrize("command", ["eval", "probe"])
@pytest.mark.parametrize("field,value,named", [
    ("num_classes", "four", "num_classes"), ("num_classes", _MISSING, "num_classes"), ("num_classes", -3, "num_classes"),
    ("num_classes", 1e9, "num_classes"), ("num_classes", 10 ** 9, "num_classes"), ("arch", ["small3d"], "arch"),
    ("input.mean", "abc", "input.mean"), ("input.std", [0.2, 0.2, 0.0], "input.std"), ("input", "frames=4", "input"),
    ("input.frames", 2.5, "input.frames"), ("config", "a string", "config"), ("classes", "abc", "classes"),
])
def test_odd_checkpoint_metadata_is_one_line(tmp_path, bebias_ckpt, capsys, monkeypatch, command, field, value, named):
    from bebias.cli import main

    ck = {**bebias_ckpt, "input": dict(bebias_ckpt["input"])}
    key, _, sub = field.partition(".")
    where = ck[key] if sub else ck
    if value is _MISSING:
        del where[sub or key]
    else:
        where[sub or key] = value
    path = tmp_path / "odd.pth"
    torch.save(ck, path)
    extra = ["--out", str(tmp_path / "p")] if command == "probe" else []
    monkeypatch.setattr(sys, "argv", ["bebias", command, str(path), "--data", DATA, "--device", "cpu", *extra])
    with pytest.raises(SystemExit) as info:
        main()
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    lines = [s for s in err.splitlines() if s.strip()]
    assert len(lines) == 1 and "Traceback" not in err and str(path) in lines[0] and named in lines[0], lines
