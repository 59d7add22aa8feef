"""Fuzzing the command line with hostile numbers and small hostile files (issue 23).

Every example runs a real ``bebias`` command in this process (``bebias.cli.main`` with a
patched ``sys.argv``) and must end in one of two ways:

- exit 0, or
- exit 2 with ONE line on stderr (``error: ...``),

with no traceback, no file written outside its ``--out`` folder, within a time bound
(SIGALRM, :data:`TIME_LIMIT`) and within two memory bounds: the address space is capped at
what the process already maps plus :data:`HEADROOM`, so a memory bomb fails its
allocation, escapes as an exception and turns the example red instead of exhausting the
machine; and the peak resident memory (this process and its DataLoader / rendering
children) may grow by at most :data:`RSS_GROWTH` over what was resident before.

Hypothesis runs derandomized: CI sees the same examples every time. One file, marked
``fuzz``: ``pytest tests/test_fuzz.py`` runs it alone (``-m "not fuzz"`` leaves it out).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import resource
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(__file__))
from tiny import TINY, tiny_classifier  # noqa: E402

#: bytes of address space a command may map beyond what the test process maps already
HEADROOM = 3 << 30
#: bytes the peak resident memory may grow by during one command
RSS_GROWTH = 2 << 30
#: seconds one command may run
TIME_LIMIT = 60

pytestmark = pytest.mark.fuzz

FUZZ = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class _Timeout(BaseException):  # BaseException: the command must not swallow it
    pass


def _status(key: str) -> int:
    """A ``key: N kB`` line of /proc/self/status, in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {key}")


def _vm_size() -> int:
    return _status("VmSize")


def _peak_rss() -> int:
    """The largest resident set so far of this process or any child it waited for (bytes)."""
    return 1024 * max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            with contextlib.suppress(OSError):
                st_ = os.lstat(p)
                out[p] = (st_.st_size, st_.st_mtime_ns)
    return out


def run_cli(world: Path, *args: str) -> tuple[int, str, str]:
    """Run ``bebias ARGS`` in-process with cwd = ``world`` -> (exit code, stdout, stderr).

    Fails the test on a traceback, a time-out, a memory bomb, or a file written in
    ``world`` outside the command's ``--out``.
    """
    from bebias.cli.common import main

    args = tuple(str(a) for a in args)
    out_dir = args[args.index("--out") + 1] if "--out" in args else None
    out_abs = os.path.abspath(os.path.join(world, out_dir)) if out_dir else None
    before = _tree(world)
    rss0, peak0 = _status("VmRSS"), _peak_rss()
    stdout, stderr = io.StringIO(), io.StringIO()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cwd, argv = os.getcwd(), sys.argv

    def alarm(*_):
        raise _Timeout()

    old_alarm = signal.signal(signal.SIGALRM, alarm)
    code: int | None = None
    try:
        os.chdir(world)
        sys.argv = ["bebias", *args]
        resource.setrlimit(resource.RLIMIT_AS, (_vm_size() + HEADROOM, hard))
        signal.alarm(TIME_LIMIT)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                main()
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except _Timeout:
        pytest.fail(f"bebias {' '.join(args)}: still running after {TIME_LIMIT} s")
    except MemoryError:
        pytest.fail(f"bebias {' '.join(args)}: memory bomb (MemoryError past {HEADROOM >> 30} GiB of headroom)")
    except Exception as e:  # anything that escapes main() is a traceback for the user
        pytest.fail(f"bebias {' '.join(args)}: traceback {type(e).__name__}: {e}\n{stderr.getvalue()[-2000:]}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old_alarm)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        sys.argv = argv
        os.chdir(cwd)
    peak = _peak_rss()
    if peak > peak0:  # a new peak during this command (the peak of earlier tests hides smaller ones)
        assert peak - rss0 < RSS_GROWTH, (f"bebias {' '.join(args)}: resident memory grew by "
                                          f"{(peak - rss0) / 2**30:.1f} GiB")
    after = _tree(world)
    stray = [p for p, v in after.items() if before.get(p) != v
             and not (out_abs and (p == out_abs or p.startswith(out_abs + os.sep)))]
    assert not stray, f"bebias {' '.join(args)} wrote outside --out: {stray[:5]}"
    return code, stdout.getvalue(), stderr.getvalue()


def assert_clean(res: tuple[int, str, str], args: tuple) -> None:
    """Exit 0, or exit 2 with exactly one line on stderr naming the problem."""
    code, _, err = res
    assert "Traceback" not in err, err
    assert code in (0, 2), f"exit {code} for {args}: {err[-1500:]}"
    if code == 2:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("error:")]
        assert len(errors) == 1, f"{args}: expected one error line, got:\n{err[-1500:]}"


# --------------------------------------------------------------------------------------
# fixtures: one tiny classifier and a world folder per test
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    return tiny_classifier(tmp_path_factory.mktemp("fuzz") / "clf")


@pytest.fixture
def world(tmp_path) -> Path:
    w = tmp_path / "world"
    w.mkdir()
    return w


#: values a user (or a script with a bug) may give to a numeric option
NUMBERS = st.one_of(
    st.integers(-3, 40),
    st.sampled_from([-1, 0, 10**6, 10**9, 10**12, 2**63, -(2**63)]),
    st.sampled_from(["nan", "inf", "-inf", "1e308", "1e-320", "abc", "", "0x10", "1,2", "3.5"]),
)


#: the values every numeric option is tried with, besides the random ones
EXTREMES = [-1, 0, 10**12, "nan", "abc"]


def _grid(opts: list[str]) -> list[tuple[str, object]]:
    return [(o, v) for o in opts for v in EXTREMES]


def _counter() -> int:
    _counter.n += 1
    return _counter.n


_counter.n = 0


# --------------------------------------------------------------------------------------
# numeric options
# --------------------------------------------------------------------------------------

PROBE_OPTS = ["--frames", "--stride", "--size", "--seed", "--max-videos", "--fold", "--workers"]


def _probe(ckpt, world, opt, value):
    args = ("probe", ckpt, "--suite", "quick", "--max-videos", "3", "--device", "cpu", opt, value,
            "--out", f"out{_counter()}")
    assert_clean(run_cli(world, *args), args)


@pytest.mark.parametrize("opt,value", _grid(PROBE_OPTS))
def test_probe_numeric_extremes(ckpt, world, opt, value):
    _probe(ckpt, world, opt, value)


@FUZZ
@given(opt=st.sampled_from(PROBE_OPTS), value=NUMBERS)
def test_probe_numeric_options(ckpt, world, opt, value):
    _probe(ckpt, world, opt, value)


@FUZZ
@given(opt=st.sampled_from(["--mean", "--std"]),
       value=st.one_of(st.sampled_from(["0,0,0", "nan,1,1", "1", "1,2", "inf,inf,inf", "-1,-1,-1", "a,b,c", ""]),
                       st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=4)
                       .map(lambda v: ",".join(map(str, v)))))
def test_probe_spec_triples(ckpt, world, opt, value):
    args = ("probe", ckpt, "--suite", "quick", "--max-videos", "3", "--device", "cpu", opt, value,
            "--out", f"out{_counter()}")
    assert_clean(run_cli(world, *args), args)


EVAL_OPTS = ["--clips", "--batch-size", "--fold", "--workers"]


@pytest.mark.parametrize("opt,value", _grid(EVAL_OPTS))
def test_eval_numeric_extremes(ckpt, world, opt, value):
    test_eval_numeric_options.hypothesis.inner_test(ckpt, world, opt, value)


@FUZZ
@given(opt=st.sampled_from(EVAL_OPTS), value=NUMBERS)
def test_eval_numeric_options(ckpt, world, opt, value):
    args = ("eval", ckpt, "--split", "conflict", "--device", "cpu", opt, value, "--out", f"out{_counter()}/e.json")
    assert_clean(run_cli(world, *args), args)


TRAIN_OPTS = ["--epochs", "--max-steps", "--batch-size", "--lr", "--frames", "--stride", "--size", "--seed",
              "--max-skips", "--workers"]


@pytest.mark.parametrize("cmd", ["finetune", "train"])
@pytest.mark.parametrize("opt,value", _grid(TRAIN_OPTS))
def test_training_numeric_extremes(world, cmd, opt, value):
    test_training_numeric_options.hypothesis.inner_test(world, cmd, opt, value)


@FUZZ
@given(cmd=st.sampled_from(["finetune", "train"]), opt=st.sampled_from(TRAIN_OPTS), value=NUMBERS)
def test_training_numeric_options(world, cmd, opt, value):
    base = {"--data": TINY, "--frames": "4", "--size": "32", "--batch-size": "4", "--max-steps": "1",
            "--device": "cpu", "--workers": "0"}
    base[opt] = value
    extra = ("--queue-size", "8") if cmd == "train" else ()
    args = (cmd, *[x for kv in base.items() for x in kv], *extra, "--out", f"out{_counter()}")
    assert_clean(run_cli(world, *args), args)


SYNTH_OPTS = ["--videos-per-class", "--test-videos-per-class", "--classes", "--frames", "--size", "--bias",
              "--workers", "--seed"]


@pytest.mark.parametrize("opt,value", _grid(SYNTH_OPTS))
def test_synth_numeric_extremes(world, opt, value):
    test_synth_numeric_options.hypothesis.inner_test(world, opt, value)


@FUZZ
@given(opt=st.sampled_from(SYNTH_OPTS), value=NUMBERS)
def test_synth_numeric_options(world, opt, value):
    base = {"--classes": "2", "--videos-per-class": "1", "--test-videos-per-class": "1", "--frames": "8",
            "--size": "32", "--workers": "0"}  # the smallest size synth accepts: every example renders
    base[opt] = value
    args = ("data", "synth", *[x for kv in base.items() for x in kv], "--out", f"out{_counter()}")
    assert_clean(run_cli(world, *args), args)


# --------------------------------------------------------------------------------------
# small hostile files
# --------------------------------------------------------------------------------------

def _npy_bytes(shape: tuple, descr: str, payload: bytes) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + payload


DIMS = st.sampled_from([0, 1, 2, 8, 12, 32, 10**4, 10**6, 10**9])
MASKS = st.tuples(st.lists(DIMS, min_size=0, max_size=4).map(tuple),
                  st.sampled_from(["|b1", "|u1", "<f4", "<f8", "|O", "<U8", "<c16", ">i8"]),
                  st.binary(max_size=64), st.sampled_from(["npy", "npz"]))


@pytest.fixture(scope="module")
def bench_csv(tmp_path_factory) -> tuple[Path, list[dict]]:
    """The tiny benchmark's conflict split on disk as a CSV dataset."""
    from bebias.data.open import parse_synth_spec
    from bebias.data.synth_disk import write_benchmark

    d = tmp_path_factory.mktemp("fuzzdata") / "bench"
    write_benchmark(parse_synth_spec(TINY), str(d))
    with open(d / "manifest.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "conflict"]
    return d, rows


def _write_manifest(path: Path, bench: Path, rows: list[dict], masks: list[str] | None = None) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "class_name"] + (["mask"] if masks else []))
        for i, r in enumerate(rows):
            w.writerow([str(bench / r["path"]), r["label"], r["class_name"]] + ([masks[i]] if masks else []))


@FUZZ
@given(mask=MASKS)
def test_hostile_masks(ckpt, bench_csv, world, mask):
    bench, rows = bench_csv
    shape, descr, payload, kind = mask
    raw = _npy_bytes(shape, descr, payload)
    name = world / f"m{_counter()}.{kind}"
    if kind == "npy":
        name.write_bytes(raw)
    else:
        import zipfile
        with zipfile.ZipFile(name, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("masks.npy", raw + b"\0" * (1 << 20))  # deflates to ~1 KB
    _write_manifest(world / "given.csv", bench, rows[:2], [str(name)] * 2)
    args = ("probe", ckpt, "--data", "given.csv", "--swap-backgrounds", "--device", "cpu",
            "--out", f"out{_counter()}")
    assert_clean(run_cli(world, *args), args)


LABELS = st.one_of(st.integers(-5, 10), st.sampled_from([10**11, 2**63, -(2**63)]),
                   st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12))


@FUZZ
@given(labels=st.lists(LABELS, min_size=1, max_size=6), dup=st.integers(0, 3))
def test_hostile_manifests(ckpt, bench_csv, world, labels, dup):
    bench, rows = bench_csv
    with open(world / "m.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        for i, lab in enumerate(labels):
            w.writerow([str(bench / rows[i % len(rows)]["path"]), lab])
        for _ in range(dup):
            w.writerow([str(bench / rows[0]["path"]), labels[0]])
    for cmd in (("eval", ckpt, "--data", "m.csv", "--device", "cpu", "--out", f"out{_counter()}/e.json"),
                ("probe", ckpt, "--data", "m.csv", "--suite", "quick", "--device", "cpu", "--out", f"out{_counter()}")):
        assert_clean(run_cli(world, *cmd), cmd)


JSONS = st.recursive(st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
                     lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3),
                     max_leaves=12)


@FUZZ
@given(doc=st.one_of(JSONS.map(json.dumps), st.integers(10, 200_000).map(lambda n: "[" * n + "]" * n),
                     st.integers(10, 200_000).map(lambda n: '{"a":' * n + "1" + "}" * n)))
def test_hostile_annotation_json(ckpt, bench_csv, world, doc):
    """A Diving48-style annotation file (a JSON list of records) with arbitrary content."""
    root = world / "Diving48"
    (root / "rgb").mkdir(parents=True, exist_ok=True)
    for name in ("Diving48_V2_train.json", "Diving48_V2_test.json", "Diving48_vocab.json"):
        (root / name).write_text(doc)
    args = ("eval", ckpt, "--data", str(root), "--dataset", "diving48", "--device", "cpu",
            "--out", f"out{_counter()}/e.json")
    assert_clean(run_cli(world, *args), args)


TOML_VALUES = st.one_of(st.integers(-(2**63), 2**63 - 1).map(str), st.floats(allow_nan=False).map(repr),
                        st.sampled_from(['"quick"', "[]", "[1, 2]", "{}", "true", '"swap-background"', "nan", "inf",
                                         "1e12", "-1", "0"]))


@FUZZ
@given(body=st.one_of(
    st.lists(st.tuples(st.sampled_from(["variants", "max_videos", "n_boot", "seed", "mask", "split", "donors",
                                        "frames", "bogus"]), TOML_VALUES), max_size=4)
    .map(lambda kv: "\n".join(f"{k} = {v}" for k, v in kv)),
    st.integers(10, 100_000).map(lambda n: "x = " + "[" * n + "]" * n),
    st.integers(10, 5_000).map(lambda n: "\n".join(f"[{'.'.join(['a'] * (i + 1))}]" for i in range(n))),
    st.binary(max_size=64).map(lambda b: b.decode("latin-1"))))
def test_hostile_suites(ckpt, world, body):
    (world / "s.toml").write_text(body, encoding="utf-8")
    args = ("probe", ckpt, "--suite", "s.toml", "--max-videos", "3", "--device", "cpu", "--out", f"out{_counter()}")
    assert_clean(run_cli(world, *args), args)


ODD = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.sampled_from([1e9, -3, float("nan")]),
                st.text(max_size=8), st.lists(st.integers(0, 9), max_size=3),
                st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))


@FUZZ
@given(field=st.sampled_from(["num_classes", "arch", "kind", "classes", "config", "input", "input.mean",
                              "input.std", "input.frames", "input.size", "input.stride", "method"]),
       value=ODD)
def test_hostile_checkpoint_metadata(ckpt, world, field, value):
    ck = torch.load(ckpt, weights_only=True)
    if "." in field:
        outer, inner = field.split(".")
        ck[outer] = {**ck[outer], inner: value}
    else:
        ck[field] = value
    path = world / f"ck{_counter()}.pth"
    torch.save(ck, path)
    for cmd in (("eval", path, "--split", "conflict", "--device", "cpu", "--out", f"out{_counter()}/e.json"),
                ("probe", path, "--suite", "quick", "--max-videos", "3", "--device", "cpu",
                 "--out", f"out{_counter()}")):
        assert_clean(run_cli(world, *cmd), cmd)
