"""Results that would be silently wrong, or crash, on unlucky input (issue 23, items 4, 5,
16, 22): the class order of a checkpoint against the data's, a model whose outputs are
NaN, a resume file that cannot be read back, and an output path that is a directory.

The model is a tiny classifier whose head is replaced by hand: a constant one that always
predicts the checkpoint's class 0 ("right"), or an all-NaN one. The data are five
random-pixel frame folders, three "right", one "left", one "up": unbalanced on purpose, so
that a constant prediction scores differently under a permuted class order (60 % by name,
20 % by index on a manifest that sorts the names).
"""

import json
import os
import sys
import warnings

import cv2
import numpy as np
import pytest
import torch

from bebias.data.transforms import ClipSpec
from bebias.errors import BebiasError
from bebias.models.classes import is_named, match_classes
from bebias.probing.run import ProbeConfig, ProbeSuite, run_probe
from tests.inproc import message_lines
from tests.tiny import TINY, tiny_classifier

LABELS = ["right", "right", "right", "left", "up"]  # the checkpoint's order: right, left, up


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """``bebias ARGS`` in this process, as the console script runs it: (exit code, stdout,
    stderr); any RuntimeWarning fails the test (a warning in our output is a bug)."""
    from bebias.cli import main

    old = sys.argv
    sys.argv = ["bebias", *args]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            main()
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    finally:
        sys.argv = old
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """{"const", "nan", "nameless"} checkpoints and {"ints", "names", "other"} manifests."""
    root = tmp_path_factory.mktemp("hostile")
    ck = torch.load(tiny_classifier(root / "ft", TINY), weights_only=True)
    assert ck["classes"] == ["right", "left", "up"]
    const = {k: torch.zeros_like(v) for k, v in ck["head"].items()}
    const["bias"][0] = 5.0  # always "right"
    paths = {}
    for name, payload in [("const", {**ck, "head": const}),
                          ("nan", {**ck, "head": {k: torch.full_like(v, float("nan")) for k, v in ck["head"].items()}}),
                          ("nameless", {k: v for k, v in {**ck, "head": const}.items() if k != "classes"})]:
        paths[name] = str(root / f"{name}.pth")
        torch.save(payload, paths[name])
    rng = np.random.default_rng(0)
    for i in range(len(LABELS)):
        os.makedirs(root / f"v{i}")
        for t in range(12):
            cv2.imwrite(str(root / f"v{i}" / f"img_{t:05d}.png"), rng.integers(0, 256, (32, 32, 3), np.uint8))
    order = {n: i for i, n in enumerate(ck["classes"])}
    manifests = {"ints": [order[c] for c in LABELS], "names": LABELS,
                 "other": [c.replace("up", "jump") for c in LABELS]}
    for name, labels in manifests.items():
        paths[name] = str(root / f"{name}.csv")
        with open(paths[name], "w") as f:
            f.write("path,label\n" + "".join(f"v{i},{c}\n" for i, c in enumerate(labels)))
    paths["root"] = str(root)
    return paths


# --------------------------------------------------------------------------------------
# item 4: class order
# --------------------------------------------------------------------------------------

def test_match_classes_by_name_by_index_or_refused():
    m = match_classes(["right", "left", "up"], 3, ["left", "right", "up"], checkpoint="c", data="d")
    assert m.by == "name" and m.columns == (1, 0, 2)
    out = np.array([[0.7, 0.2, 0.1]])  # the model says "right"
    assert m.apply(out).tolist() == [[0.2, 0.7, 0.1]] and "matched by name" in m.message(["left", "right", "up"])
    same = match_classes(["a", "b"], 2, ["a", "b"], checkpoint="c", data="d")
    assert same.by == "name" and same.columns is None and same.message(["a", "b"]) is None
    for names, data, why in [(None, ["a", "b"], "records no class names"), (["0", "1"], ["a", "b"], "checkpoint's"),
                             (["a", "b"], ["0", "1"], "data's")]:
        m = match_classes(names, 2, data, checkpoint="c", data="d")
        assert m.by == "index" and m.columns is None and why in m.record()["reason"]
    with pytest.raises(BebiasError, match=r"only the model has 'up'; only the data has 'jump'"):
        match_classes(["right", "left", "up"], 3, ["jump", "left", "right"], checkpoint="c", data="d")
    with pytest.raises(BebiasError, match="has 3 classes but d has 2"):
        match_classes(["a", "b", "c"], 3, ["a", "b"], checkpoint="c", data="d")
    for bad in (["a", "a"], ["a"], "ab", [1, 2]):
        with pytest.raises(BebiasError, match="distinct names"):
            match_classes(bad, 2, ["a", "b"], checkpoint="c", data="d")
    assert is_named(["a"]) and not is_named(["0", "1"]) and not is_named(None) and is_named(["1", "0"])


def test_eval_and_probe_match_outputs_to_classes_by_name(tmp_path, capsys, files):
    """The same model on the same five videos: a manifest with integer labels in the
    checkpoint's order and one with class names (sorted: left, right, up) give the same
    top-1; before, 60 % vs 20 %, without a word."""
    top1, probe_top1 = {}, {}
    for m in ("ints", "names"):
        code, out, err = cli(capsys, "eval", files["const"], "--data", files[m], "--out", str(tmp_path / f"{m}.json"))
        assert code == 0, err
        r = json.loads((tmp_path / f"{m}.json").read_text())["splits"]["test"]
        top1[m] = r["top1"]
        assert r["num_classes"] == 3  # the report's chance 1/K
        assert "chance: top-1, mean-class and bg-follow 1/K = 33.3 %" in out
        code, out, perr = cli(capsys, "probe", files["const"], "--data", files[m], "--reverse", "--out",
                              str(tmp_path / f"p-{m}"))
        assert code == 0, perr
        met = json.loads((tmp_path / f"p-{m}" / "metrics.json").read_text())
        probe_top1[m] = met["accuracy"]["original"]["top1"]["value"]
        if m == "ints":  # integer labels: no names on the data's side, index order, recorded
            assert r["class_match"] == {"by": "index", "reordered": False,
                                        "reason": "the data's classes have no names (integer labels)"}
            assert met["provenance"]["class_match"]["by"] == "index"
            assert "class order" not in err + perr
        else:  # one line says the outputs were permuted
            assert r["class_match"] == {"by": "name", "reordered": True}
            assert met["provenance"]["model_class_order"] == ["right", "left", "up"]
            for e in (err, perr):
                assert len([ln for ln in e.splitlines() if "matched by name" in ln]) == 1
    assert top1 == {"ints": 0.6, "names": 0.6}
    assert probe_top1 == {"ints": 0.6, "names": 0.6}


def test_a_checkpoint_without_class_names_keeps_index_order_and_says_so(tmp_path, capsys, files):
    code, _, err = cli(capsys, "eval", files["nameless"], "--data", files["names"], "--out", str(tmp_path / "e.json"))
    assert code == 0, err
    r = json.loads((tmp_path / "e.json").read_text())["splits"]["test"]
    assert r["class_match"]["reason"] == "the checkpoint records no class names"
    assert r["top1"] == 0.2  # index 0 is "left" in the data's order: what index order means


def test_cam_on_integer_labels_explains_by_index_and_a_wrong_classes_list_is_refused(tmp_path, capsys, files):
    """Integer labels have no names ("0", "1", "2"): --target label explains class i by
    index (before: refused, "class '0' is not one of the model's classes")."""
    code, _, err = cli(capsys, "cam", files["const"], "--data", files["ints"], "--n", "3", "--target", "label",
                       "--format", "none", "--out", str(tmp_path / "c"))
    assert code == 0, err
    cam = json.loads((tmp_path / "c" / "cam.json").read_text())
    assert sorted((v["label"], v["target"]["const"]) for v in cam["videos"]) == [(0, "right"), (1, "left"), (2, "up")]
    with pytest.raises(BebiasError, match="--classes are not 3 distinct names"):
        run_probe(ProbeConfig(files["const"], data=files["names"], classes=("right", "left"),
                              suite=ProbeSuite(variants=("reverse",)), out=str(tmp_path / "p")))


@pytest.mark.parametrize("command", ["eval", "probe"])
def test_class_sets_that_differ_are_refused_in_one_line(tmp_path, capsys, files, command):
    args = ("--reverse",) if command == "probe" else ()
    code, _, err = cli(capsys, command, files["const"], "--data", files["other"], *args, "--out",
                       str(tmp_path / ("o.json" if command == "eval" else "o")))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "const.pth" in err and "'up'" in err and "'jump'" in err


# --------------------------------------------------------------------------------------
# item 5: non-finite outputs
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["eval", "probe", "cam"])
def test_a_nan_model_is_refused_naming_the_checkpoint(tmp_path, capsys, files, command):
    extra = {"eval": ("--out", str(tmp_path / "e.json")), "probe": ("--reverse", "--out", str(tmp_path / "p")),
             "cam": ("--n", "3", "--format", "none", "--out", str(tmp_path / "c"))}[command]
    code, out, err = cli(capsys, command, files["nan"], "--data", files["ints"], *extra)
    assert code == 2, (out, err)
    assert len(message_lines(err)) == 1 and "nan.pth" in err and "not finite" in err
    assert {"eval": "5 of 5 clip(s)", "probe": "10 of 10 clip(s)", "cam": "3 of 3 clip(s)"}[command] in err
    assert not (tmp_path / "e.json").exists() and not (tmp_path / "p" / "metrics.json").exists()
    assert not (tmp_path / "c" / "cam.json").exists()


@pytest.mark.parametrize("command", ["probe", "cam"])
def test_a_zero_std_is_refused_up_front(tmp_path, capsys, files, command):
    extra = ("--reverse",) if command == "probe" else ("--format", "none")
    code, _, err = cli(capsys, command, files["const"], "--data", files["ints"], "--std", "0,0,0", *extra,
                       "--out", str(tmp_path / "o"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "std > 0" in err, err
    for std in ([0.2, 0.0, 0.2], [0.2, -1, 0.2], [float("nan")] * 3):
        with pytest.raises(ValueError, match="std > 0"):
            ClipSpec.from_dict({"std": std})
    with pytest.raises(ValueError, match="mean must be finite"):
        ClipSpec.from_dict({"mean": [float("inf"), 0, 0]})


# --------------------------------------------------------------------------------------
# item 16: a resume file that cannot be read back
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["truncated", "empty", "bit-flip", "inconsistent"])
def test_a_corrupt_partial_is_set_aside_and_the_probe_starts_over(tmp_path, files, damage):
    suite = ProbeSuite(variants=("reverse",), n_boot=20, chunk=2)
    fresh = run_probe(ProbeConfig(files["const"], data=files["names"], suite=suite, out=str(tmp_path / "fresh")))
    out = tmp_path / "run"
    run_probe(ProbeConfig(files["const"], data=files["names"], suite=suite, out=str(out)))
    part = out / "partial.npz"
    blob = part.read_bytes()
    if damage == "truncated":
        part.write_bytes(blob[: len(blob) // 2])
    elif damage == "empty":
        part.write_bytes(b"")
    elif damage == "bit-flip":
        part.write_bytes(blob[:200] + bytes([blob[200] ^ 0xFF]) + blob[201:])
    else:  # a well-formed zip whose arrays disagree
        with np.load(part) as z:
            arrays = dict(z)
        arrays["row_variant"] = arrays["row_variant"][:-1]
        np.savez(part, **arrays)
    bad = part.read_bytes()
    lines: list[str] = []
    again = run_probe(ProbeConfig(files["const"], data=files["names"], suite=suite, out=str(out)), log=lines.append)
    said = [ln for ln in lines if "partial.npz" in ln]
    assert len(said) == 1 and "unreadable resume state" in said[0] and "partial.npz.corrupt" in said[0], lines
    assert again.resumed == 0 and again.corrupt_partial == str(part) + ".corrupt"
    assert (out / "partial.npz.corrupt").read_bytes() == bad  # kept aside, as it was
    assert again.metrics["accuracy"] == fresh.metrics["accuracy"]
    assert again.metrics["headline"] == fresh.metrics["headline"]
    assert (out / "predictions.csv").read_text() == (tmp_path / "fresh" / "predictions.csv").read_text()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_partial_that_is_a_fifo_is_refused_not_waited_on(tmp_path, files):
    out = tmp_path / "p"
    out.mkdir()
    os.mkfifo(out / "partial.npz")  # opening it would block until a writer comes: forever
    with pytest.raises(BebiasError, match="partial.npz: the partial results are not a regular file"):
        run_probe(ProbeConfig(files["const"], data=files["names"], suite=ProbeSuite(variants=("reverse",)),
                              out=str(out)))


def test_an_empty_partial_through_the_cli_is_one_line_not_aborted(tmp_path, capsys, files):
    out = tmp_path / "p"
    out.mkdir()
    (out / "partial.npz").write_bytes(b"")
    code, stdout, err = cli(capsys, "probe", files["const"], "--data", files["ints"], "--reverse", "--out", str(out))
    assert code == 0, (stdout, err)
    assert "Aborted" not in stdout + err and "unreadable resume state (EOFError" in err
    assert (out / "metrics.json").exists() and (out / "partial.npz.corrupt").exists()


# --------------------------------------------------------------------------------------
# item 22: an output file path that is a directory
# --------------------------------------------------------------------------------------

def test_eval_out_an_existing_directory_names_it(tmp_path, capsys, files):
    d = tmp_path / "results"
    d.mkdir()
    code, _, err = cli(capsys, "eval", files["const"], "--data", files["ints"], "--out", str(d))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{d}: is a directory" in err and ".tmp-" not in err
    assert os.listdir(tmp_path) == ["results"] and os.listdir(d) == []  # no temporary file left behind
