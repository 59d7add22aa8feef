"""bebias report: tables from result files (values, not whitespace), LaTeX that compiles,
a self-contained HTML page checked in a real browser, and one-line user errors.

The end-to-end inputs are real (tests/report_inputs.py: MoCo and MoCo+BE encoders read out
by linear classifiers, probed and evaluated, and a compare grid, all at toy size); edge
cases (missing CIs, null values, absent baselines) are hand-written.
"""

import copy
import json
import math
import os
import re
import shutil
import subprocess

import cv2
import numpy as np
import pandas as pd
import pytest

from bebias.errors import BebiasError
from bebias.reporting import table_formats as W
from bebias.reporting import tables as T
from bebias.reporting.build import _describe_from_files, build_report, default_name, parse_formats
from bebias.reporting.inputs import Source, find_results, recognise
from bebias.reporting.page import png_size
from bebias.reporting.provenance import describe, pretrain_method
from report_inputs import make_results, strip_png, write_cam
from tests.inproc import bebias


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return make_results(str(tmp_path_factory.mktemp("results")))


@pytest.fixture(scope="module")
def report(results, tmp_path_factory):
    """The CLI on the whole results folder, MoCo as the baseline."""
    out = tmp_path_factory.mktemp("report") / "r"
    root = os.path.dirname(results["compare"].rstrip("/").rsplit("/", 1)[0])
    r = bebias("report", root, "--baseline", "moco", "--out", str(out), "--name", "toy report")
    assert r.returncode == 0, r.stderr
    return out


def load(path):
    with open(path) as f:
        return json.load(f)


def probe_source(metrics: dict, path: str = "m.json") -> Source:
    return Source("probe", path, metrics)


PARTS = ("background_follow", "motion_follow", "sufficiency")


def reliance_block(rel: float, block) -> dict:
    """The background_reliance block as the probe writes it: the score and its parts, each
    part with its null."""
    parts = {k: {**block(0.2 + 0.1 * i), "null": 0.125, "n": 10} for i, k in enumerate(PARTS)}
    return {**block(rel), "n": 10, "no_signal": False, "components": parts, "definition": "score = ..."}


def fake_probe(sha: str, top1: float | None, rel: float | None, *, ci: bool = True, method: str = "linear",
               split: str = "conflict") -> dict:
    """A hand-written metrics.json with just what the report reads."""
    def block(v):
        return {"value": v, "ci_low": v - 0.1, "ci_high": v + 0.1} if ci and v is not None else {"value": v}

    return {"provenance": {"checkpoint": f"/nowhere/{sha}.pth", "checkpoint_sha256": sha, "checkpoint_kind":
                           "classifier", "arch": "small3d", "method": method, "data": "synthetic", "split": split,
                           "classes": ["a", "b"]},
            "headline": {"original_top1": top1, "background_reliance": rel},
            "accuracy": {"original": {"n": 10, "top1": block(top1)}},
            "background_reliance": reliance_block(rel, block) if rel is not None else None,
            "conflict": {"swap-background": {"n": 10, "background_follow": block(0.5), "foreground_follow":
                                             block(0.2), "per_class": {"background_follow": {"a": 0.4, "b": 0.6}}}}}


# --------------------------------------------------------------------------------------
# recognition and provenance (pure)
# --------------------------------------------------------------------------------------

def test_results_are_recognised_by_content_not_name(tmp_path, results):
    assert recognise(load(os.path.join(results["probe-moco"], "metrics.json"))) == "probe"
    assert recognise(load(results["eval-moco"])) == "eval"
    assert recognise(load(results["compare"])) == "compare"
    assert recognise(load(results["calibration"])) == "calibration"
    assert recognise(load(results["cam"])) == "cam"
    assert recognise({"rows": [], "config": {}}) is None and recognise([1, 2]) is None
    # any file name will do; in a folder, other JSON files are passed over
    shutil.copy(results["eval-moco"], tmp_path / "whatever.json")
    (tmp_path / "config.json").write_text('{"lr": 1}')
    found = find_results([str(tmp_path)])
    assert [(s.kind, os.path.basename(s.path)) for s in found] == [("eval", "whatever.json")]
    # the same file reached twice counts once
    assert len(find_results([str(tmp_path), str(tmp_path / "whatever.json")])) == 1


def test_checkpoint_provenance_reads_the_encoder_under_a_linear_probe(results):
    srcs = find_results([results["probe-moco"], results["probe-be"]])
    t = T.checkpoint_table(srcs, _describe_from_files)
    assert t.rows[["method", "readout", "backbone"]].values.tolist() == [["moco", "linear", "small3d"],
                                                                          ["moco+be", "linear", "small3d"]]
    assert t.rows["pre-training data"].str.endswith("(train)").all()
    # without the checkpoint files: only what the probe recorded, and it says so
    t2 = T.checkpoint_table(srcs)
    assert t2.rows["method"].tolist() == ["?", "?"] and t2.rows["readout"].tolist() == ["linear", "linear"]


@pytest.mark.parametrize("meta, name", [
    ({"method": "moco", "config": {"intra_negative": False}}, "moco"),
    ({"method": "be", "config": {"intra_negative": False}}, "moco+be"),
    ({"method": "be", "config": {"intra_negative": None}}, "moco+be+intra-neg"),  # BE's default: on
    ({"method": "moco", "config": {"intra_negative": None, "other_negative": True}}, "moco+other-neg"),
    ({"method": "fame", "config": {}}, "moco+fame"),
])
def test_pretrain_method_names(meta, name):
    assert pretrain_method(meta) == name


@pytest.mark.parametrize("method", ["moco", "be", "fame"])
@pytest.mark.parametrize("intra, other", [(None, False), (None, True), (False, False), (True, False),
                                          (False, True)])
def test_the_report_labels_a_run_by_its_config_class(method, intra, other):
    """The label is the training config's own rule: a BE run with --other-negative (intra left
    unset) had no intra-video negative and is not labelled +intra-neg (it once was)."""
    from bebias.training.pretrain import PretrainConfig

    cfg = PretrainConfig(method=method, intra_negative=intra, other_negative=other)
    label = pretrain_method({"method": method, "config": cfg.to_dict()})
    assert label == cfg.label
    assert ("+intra-neg" in label) == cfg.use_intra_negative and ("+other-neg" in label) == other
    if (method, intra, other) == ("be", None, True):
        assert label == "moco+be+other-neg"


def test_compare_variant_names_are_the_config_labels():
    from bebias.training.compare import VARIANTS
    from bebias.training.pretrain import PretrainConfig

    for name, over in VARIANTS.items():
        if over is not None:
            assert PretrainConfig(**over).label == name


def test_describe_cases():
    fb = {"arch": "r3d_18", "method": "supervised", "kind": "classifier"}
    scratch = describe(fb, {"kind": "classifier", "method": "supervised", "arch": "r3d_18", "config": {"init": None}})
    assert scratch == {"method": "supervised", "readout": "from scratch", "backbone": "r3d_18", "pretrain_data": "–"}
    enc = {"kind": "pretrain", "method": "be", "config": {"data": "/d/UCF101", "dataset": "ucf101", "split": "train",
                                                          "intra_negative": False}}
    lin = describe(fb, {"kind": "classifier", "method": "linear", "config": {"init": "enc.pth"}}, enc)
    assert lin == {"method": "moco+be", "readout": "linear", "backbone": "r3d_18", "pretrain_data": "ucf101 (train)"}
    gone = describe(fb, {"kind": "classifier", "method": "linear", "config": {"init": "enc.pth"}}, None)
    assert gone["method"] == "?" and gone["pretrain_data"] == "?"
    knn = describe({"arch": "small3d", "method": "moco", "kind": "pretrain"}, None)
    assert knn["method"] == "moco" and knn["readout"] == "kNN"
    assert describe({"arch": "torchscript", "foreign": {"layout": "torchscript"}})["method"] == "foreign (torchscript)"


# --------------------------------------------------------------------------------------
# tables (pure): values, best per column with its direction, deltas, missing values
# --------------------------------------------------------------------------------------

def three_rows(baseline=None):
    srcs = [probe_source(fake_probe("a" * 64, 0.50, 0.70), "a.json"),
            probe_source(fake_probe("b" * 64, 0.80, 0.40), "b.json"),
            probe_source(fake_probe("c" * 64, 0.65, None, ci=False), "c.json")]
    names = {"a" * 64: "moco", "b" * 64: "moco+be", "c" * 64: "moco+fame"}
    return T.checkpoint_table(srcs, lambda s, fb: {"method": names[fb["sha256"]], "readout": "linear",
                                                   "backbone": "small3d", "pretrain_data": "k400"}, baseline)


def test_table_values_best_and_direction():
    t = three_rows()
    keys = [m.key for _, m in t.columns]
    parts = [f"reliance_{k}{end}" for k in PARTS for end in ("", "_null")]
    assert keys == ["top1", "reliance", *parts, "swap_bg_follow"]
    np.testing.assert_allclose(t.value[:, 0], [0.5, 0.8, 0.65])
    assert np.isnan(t.value[2, 1]) and np.isnan(t.ci_low[2, 0])  # null reliance; no CI written
    # each part of the score next to its null: bg-follow 0.2 [0.1, 0.3], null 0.125
    j = keys.index("reliance_background_follow")
    assert (t.value[0, j], t.ci_low[0, j], t.value[0, j + 1]) == pytest.approx((0.2, 0.1, 0.125))
    assert keys[j + 1] == "reliance_background_follow_null" and np.isnan(t.ci_low[0, j + 1])
    assert np.isnan(t.value[2, j:j + 6]).all()  # no reliance block: no parts
    best = t.best()
    assert best[:, 0].tolist() == [False, True, False]  # top-1: higher is better
    assert best[:, 1].tolist() == [False, True, False]  # reliance: LOWER is better (0.40)
    assert not best[:, 2:2 + len(parts)].any()  # parts and nulls: no direction, no bold
    assert not best[:, -1].any()  # a tie (all 50 %, at chance 1/2 too): nothing is "the best"


def test_a_score_of_the_old_definition_is_not_shown():
    """A metrics.json written before the anchored score (mean of sufficiency, necessity and
    dominance) has another scale: its score shows as missing, not next to the new ones."""
    old = fake_probe("d" * 64, 0.5, 0.52)
    old["background_reliance"] = {"value": 0.52, "ci_low": 0.4, "ci_high": 0.6, "used": ["sufficiency"],
                                  "components": {"sufficiency": {"value": 0.02, "ci_low": 0.0, "ci_high": 0.1}}}
    vals = T.probe_values(old)
    assert math.isnan(vals["reliance"][0]) and not any(k.startswith("reliance_") for k in vals)
    assert vals["reliance"] != T.probe_values(fake_probe("d" * 64, 0.5, 0.52))["reliance"]


def test_deltas_against_a_baseline_by_method_or_label():
    t = three_rows("moco")
    assert t.baseline == 0
    d = t.delta()
    assert np.isnan(d[0]).all()
    np.testing.assert_allclose(d[1, :2], [0.3, -0.3])
    md = W.to_markdown(t)
    assert "moco (baseline)" in md
    row = next(ln for ln in md.splitlines() if ln.startswith("| moco+be "))
    assert "**80.0** [70.0, 90.0] (+30.0)" in row and "**0.400** [0.300, 0.500] (-0.300)" in row
    fame = next(ln for ln in md.splitlines() if ln.startswith("| moco+fame "))
    assert "65.0 (+15.0)" in fame and re.search(r"\|\s+–\s+\|", fame)  # no CI -> no brackets; null -> "–"
    assert three_rows("moco+be").baseline == 1 and three_rows(None).baseline is None
    assert three_rows("nope").baseline is None  # build_report turns this into an error (tested below)


def test_labels_are_unique_and_an_ambiguous_baseline_is_an_error():
    ds = [{"method": "moco", "readout": "linear", "backbone": "small3d"},
          {"method": "moco", "readout": "kNN", "backbone": "small3d"},
          {"method": "moco+be", "readout": "linear", "backbone": "small3d"}]
    labels = T.unique_labels(ds)
    assert labels == ["moco · linear", "moco · kNN", "moco+be"]
    with pytest.raises(BebiasError, match="matches 2"):
        T.resolve_baseline("moco", labels, [d["method"] for d in ds], "checkpoint")
    assert T.resolve_baseline("moco · kNN", labels, [d["method"] for d in ds], "checkpoint") == 1


def test_html_and_latex_cells():
    t = three_rows("moco")
    h = W.to_html(t)
    assert "<b>80.0</b>" in h and 'class="delta better">(+30.0)' in h and 'class="delta better">(-0.300)' in h
    assert "<td>–</td>" in h or ">–<" in h
    tex = W.to_latex(t)
    assert r"\textbf{80.0} {\scriptsize ($-$" not in tex and r"\textbf{0.400}" in tex and "($-$0.300)" in tex


def test_compare_table_is_mean_and_std_over_seeds(results):
    res = load(results["compare"])
    t = T.compare_table(Source("compare", results["compare"], res), baseline="random-init")
    assert t.rows["variant"].tolist() == ["random-init", "moco"] and t.rows["seeds"].tolist() == ["2", "2"]
    for j, (_, m) in enumerate(t.columns):
        for i, v in enumerate(["random-init", "moco"]):
            x = np.array([r[m.key] for r in res["rows"] if r["variant"] == v])
            assert t.value[i, j] == pytest.approx(x.mean()) and t.std[i, j] == pytest.approx(x.std(ddof=1))
    bg = [j for j, (_, m) in enumerate(t.columns) if m.key.endswith("bg_follow")]
    assert bg and all(t.columns[j][1].higher_is_better is False for j in bg)
    assert t.baseline == 0 and np.allclose(t.delta()[1], t.value[1] - t.value[0])
    assert t.note.endswith("Updates skipped: 0 in 2 pre-training runs.")  # moco's two seeds; random-init has none


def test_latex_is_booktabs_and_structurally_sound():
    t = three_rows("moco")
    t.rows.loc[0, "pre-training data"] = "50%_of #data & more"
    tex = W.to_latex(t)
    body = tex[tex.index(r"\begin{tabular}"):]
    assert body.count(r"\toprule") == body.count(r"\bottomrule") == 1
    assert body.count(r"\midrule") == 2  # under the header, and above the chance / ceiling rows
    assert r"\cmidrule(lr){6-14}" in body and body.rstrip().endswith(r"\end{tabular}")  # 3 + 6 parts
    ncols = len(re.search(r"\\begin\{tabular\}\{([lrc]+)\}", body).group(1))
    rows = [ln for ln in body.splitlines() if ln.endswith(r"\\") and not ln.startswith(r"\multicolumn")]
    assert len(rows) == 1 + 3 + 2  # header + three checkpoints + chance and ceiling
    assert rows[-2].startswith("chance &") and rows[-1].startswith("ceiling &")
    for ln in rows:
        assert len(re.findall(r"(?<!\\)&", ln)) == ncols - 1, ln
    assert r"50\%\_of \#data \& more" in body
    assert body.count("{") == body.count("}")


def test_latex_compiles(tmp_path, report):
    """pdflatex on every table the report wrote, where pdflatex is installed."""
    if shutil.which("pdflatex") is None:
        loud_skip("pdflatex is not installed: the .tex files were NOT compiled, only checked structurally (test "
                  "above); `make test` installs texlive-latex-base as root")
    for tex in sorted(report.glob("*.tex")):
        doc = tmp_path / f"doc-{tex.stem}.tex"
        doc.write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n"
                       f"\\begin{{document}}\n\\resizebox{{\\textwidth}}{{!}}{{\\input{{{tex}}}}}\n\\end{{document}}\n")
        r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, (tex.name, r.stdout[-2000:])
        assert (tmp_path / f"doc-{tex.stem}.pdf").stat().st_size > 0


# --------------------------------------------------------------------------------------
# end to end: real results in, report out
# --------------------------------------------------------------------------------------

def _nan(v):
    """metrics.json writes an undefined value as null; the CSV as an empty cell (NaN)."""
    return float("nan") if v is None else v


def test_report_files_and_table_values_from_the_results(report, results):
    names = sorted(p.name for p in report.iterdir())
    assert names == ["calibration.csv", "calibration.tex", "cam.csv", "cam.tex", "checkpoints.csv", "checkpoints.tex",
                     "compare.csv", "compare.tex", "figures", "report.html", "report.md"]
    df = pd.read_csv(report / "checkpoints.csv")
    assert set(df["checkpoint"]) == {"moco", "moco+be", "supervised"}
    assert set(df.loc[df["checkpoint"] == "moco+be", "pre-training data"].str.endswith("(train)"))
    for method in ("moco", "be"):
        m = load(os.path.join(results[f"probe-{method}"], "metrics.json"))
        ev = load(results[f"eval-{method}"])
        rows = df[df["checkpoint"] == ("moco" if method == "moco" else "moco+be")].set_index(["group", "key"])
        group = next(g for g, k in rows.index if k == "top1")
        top = m["accuracy"]["original"]["top1"]
        assert rows.loc[(group, "top1"), ["value", "ci_low", "ci_high"]].tolist() == pytest.approx(
            [top["value"], top["ci_low"], top["ci_high"]])
        rel = m["background_reliance"]
        # an undefined score (None in metrics.json: a constant decider has null 1) is an empty cell
        assert rows.loc[(group, "reliance"), "value"] == pytest.approx(_nan(rel["value"]), nan_ok=True)
        for part, c in rel["components"].items():  # every part next to its null
            assert rows.loc[(group, f"reliance_{part}"), "value"] == pytest.approx(_nan(c["value"]), nan_ok=True)
            assert rows.loc[(group, f"reliance_{part}_null"), "value"] == pytest.approx(_nan(c["null"]), nan_ok=True)
        assert rows.loc[(group, "swap_bg_follow"), "value"] == pytest.approx(
            m["conflict"]["swap-background"]["background_follow"]["value"])
        # on the conflict split static-frame accuracy is not shown (a scene reader scores ~0 there too), its
        # agreement with the original decisions is
        assert (group, "static") not in rows.index
        assert rows.loc[(group, "static_kappa"), "value"] == pytest.approx(
            _nan(m["agreement"]["static-frame"]["kappa"]["value"]), nan_ok=True)
        assert rows.loc[(group, "contrasted"), "value"] == pytest.approx(m["contrasted_accuracy"]["value"])
        assert rows.loc[(group, "eval_top1"), "value"] == pytest.approx(ev["splits"]["conflict"]["top1"])
        assert rows.loc[(group, "eval_bg_follow"), "value"] == pytest.approx(
            ev["splits"]["conflict"]["background_follow"])
        assert math.isnan(rows.loc[(group, "cam"), "value"])
    # the probe run with --cam: its CAM column, and its null reliance as NaN
    cam = df[(df["checkpoint"] == "supervised") & (df["key"] == "cam")].iloc[0]
    assert (cam["value"], cam["ci_low"], cam["ci_high"]) == (0.42, 0.30, 0.55)
    assert math.isnan(df[(df["checkpoint"] == "supervised") & (df["key"] == "reliance")]["value"].iloc[0])
    # deltas against moco
    base = df[df["checkpoint"] == "moco"].set_index(["group", "key"])["value"]
    be = df[df["checkpoint"] == "moco+be"].set_index(["group", "key"])
    assert np.allclose(be["delta"].dropna(), (be["value"] - base.reindex(be.index)).dropna())
    assert df.loc[df["checkpoint"] == "moco", "baseline"].all()
    # the compare table from compare.json; the cam table from cam.json
    cmp = pd.read_csv(report / "compare.csv")
    res = load(results["compare"])
    moco = cmp[(cmp["variant"] == "moco") & (cmp["key"] == "train-unbiased->conflict/top1")].iloc[0]
    x = [r["train-unbiased->conflict/top1"] for r in res["rows"] if r["variant"] == "moco"]
    assert (moco["value"], moco["std"]) == (pytest.approx(np.mean(x)), pytest.approx(np.std(x, ddof=1)))
    cal = pd.read_csv(report / "calibration.csv")
    assert cal.pivot(index="training split", columns="key", values="value").loc[
        "train rho=0.9", ["iid_top1", "conflict_top1", "train_minutes"]].tolist() == [0.97, 0.52, 3.5]
    assert math.isnan(cal[(cal["training split"] == "train rho=0.9") & (cal["key"] == "conflict_background_follow")]
                      ["value"].iloc[0])
    assert not cal["best"].any()  # rows that differ by design have no "best"
    cams = pd.read_csv(report / "cam.csv")
    camt = cams[cams["key"] == "actor_share"].set_index("checkpoint")
    assert camt.loc["moco", ["value", "ci_low", "ci_high", "n"]].tolist() == [0.30, 0.25, 0.35, 2]
    assert math.isnan(camt.loc["moco+be", "ci_low"]) and camt.loc["moco+be", "value"] == 0.60
    # this cam.json predates the measure: its chance, ceiling and normalised columns are empty
    assert set(cams["key"]) == {"actor_share", "chance", "ceiling", "norm_pred", "norm_true"}
    assert cams[cams["key"] != "actor_share"]["value"].isna().all()


def test_markdown_report(report):
    md = (report / "report.md").read_text()
    assert md.startswith("# bebias report: toy-report")
    for fig in re.findall(r"\]\((figures/[^)]+)\)", md):
        assert png_size((report / fig).read_bytes())  # every referenced figure exists, and is a PNG
    assert len(re.findall(r"\]\(figures/", md)) == 4 + 1 + 2  # probe figures, compare bars, CAM strips
    assert "moco (baseline)" in md and "CAM on actor (%) ↑" in md and "bg reliance (score 0-1) ↓" in md


def test_html_is_self_contained(report):
    html = (report / "report.html").read_text()
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', html)
    assert len(srcs) == 4 + 1 + 2 and all(s.startswith("data:image/png;base64,") for s in srcs)
    import base64

    for s in srcs:  # each decodes completely, to the size its header says
        data = base64.b64decode(s.split(",", 1)[1])
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        assert img is not None and img.shape[1::-1] == png_size(data)
    # nothing that would make a request: no external URL, script, link to a stylesheet or font
    assert not re.search(r"(?:src|href)=\"(?!data:|#)", html)
    assert "<script" not in html and "@import" not in html and "url(" not in html


def test_same_inputs_same_bytes(results, tmp_path):
    a = build_report([results["probe-moco"], results["probe-be"], results["compare"]], out=str(tmp_path / "a"),
                     baseline="moco")
    b = build_report([results["probe-moco"], results["probe-be"], results["compare"]], out=str(tmp_path / "b"),
                     baseline="moco")
    assert len(a.files) == len(b.files) > 5
    for fa, fb in zip(sorted(a.files), sorted(b.files)):
        with open(fa, "rb") as x, open(fb, "rb") as y:
            assert x.read() == y.read(), fa


def test_formats_and_default_output(results, tmp_path):
    r = bebias("report", results["probe-moco"], results["eval-moco"], "--format", "csv,tex", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "reports" / "probe-moco+linear-moco"
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints.csv", "checkpoints.tex"]
    assert default_name(["runs/probe", "runs/x/eval.json", "a", "b"]) == "probe+x+a+1-more"
    assert parse_formats("HTML, md") == ("html", "md")
    # the default output never lands in an input folder
    (tmp_path / "reports" / "in").mkdir()
    shutil.copy(results["eval-moco"], tmp_path / "reports" / "in" / "eval.json")
    res = build_report([str(tmp_path / "reports" / "in")], root=str(tmp_path / "reports"), formats="csv")
    assert res.out == str(tmp_path / "reports" / "in-report")


# --------------------------------------------------------------------------------------
# user errors: one line naming the file, exit code 2
# --------------------------------------------------------------------------------------

def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(path)


@pytest.mark.parametrize("case, needle", [
    ("not-json", "not valid JSON"),
    ("unknown", "not a bebias result"),
    ("malformed-probe", "provenance has no 'split'"),
    ("malformed-compare", "row 0 has no 'variant'"),
    ("missing", "does not exist"),
    ("empty-folder", "no bebias results found"),
    ("missing-strip", "does not exist"),
    ("no-baseline", "is not a row of any table"),
    ("bad-format", "--format"),
    ("duplicate", "two results for the same checkpoint"),
])
def test_user_errors_are_one_line_exit_2(tmp_path, results, case, needle):
    m = load(os.path.join(results["probe-moco"], "metrics.json"))
    extra: list[str] = []
    if case == "not-json":
        args = [_write(tmp_path / "metrics.json", "{not json")]
    elif case == "unknown":
        args = [_write(tmp_path / "eval.json", {"hello": 1})]
    elif case == "malformed-probe":
        bad = copy.deepcopy(m)
        del bad["provenance"]["split"]
        args = [_write(tmp_path / "d" / "metrics.json", bad)]
    elif case == "malformed-compare":
        args = [_write(tmp_path / "c.json", {"rows": [{"seed": 0}], "seeds": [0], "config": {}})]
    elif case == "missing":
        args = [str(tmp_path / "nope")]
    elif case == "empty-folder":
        _write(tmp_path / "e" / "config.json", {"lr": 1})
        args = [str(tmp_path / "e")]
    elif case == "missing-strip":
        p = write_cam(str(tmp_path / "cam"), ["a.pth", "b.pth"])
        os.remove(tmp_path / "cam" / "strips" / "video1.png")
        args = [p]
    elif case == "no-baseline":
        args, extra = [results["probe-moco"]], ["--baseline", "moco+nothing"]
    elif case == "bad-format":
        args, extra = [results["probe-moco"]], ["--format", "md,docx"]
    else:
        args = [_write(tmp_path / "copy" / "metrics.json", m), results["probe-moco"]]
    opts = {"baseline": extra[1]} if extra[:1] == ["--baseline"] else {"formats": extra[1]} if extra else {}
    with pytest.raises(BebiasError) as e:
        build_report(args, out=str(tmp_path / "out"), **opts)
    msg = str(e.value)
    assert needle in msg and "\n" not in msg, msg
    if case not in ("no-baseline", "bad-format", "duplicate"):
        assert os.path.basename(args[0].rstrip("/")) in msg or "strips" in msg
    assert not (tmp_path / "out").exists()  # nothing written on a user error


def test_cli_user_errors_are_one_line_exit_2(tmp_path, results):
    for args in ([str(tmp_path / "eval.json")], [results["probe-moco"], "--baseline", "nothing"]):
        if not os.path.exists(args[0]):
            _write(tmp_path / "eval.json", {"hello": 1})
        r = bebias("report", *args, "--out", str(tmp_path / "out"))
        assert r.returncode == 2, (r.stdout, r.stderr)
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert ("eval.json: not a bebias result" if len(args) == 1 else "'nothing' is not a row") in r.stderr


def test_a_broken_cam_strip_is_an_error_naming_it(tmp_path):
    p = write_cam(str(tmp_path / "cam"), ["a.pth", "b.pth"])
    (tmp_path / "cam" / "strips" / "video0.png").write_bytes(b"GIF89a....")
    with pytest.raises(BebiasError, match="video0.png: not a PNG image"):
        build_report([p], out=str(tmp_path / "o"))
    assert png_size(strip_png(0)) == (128, 64)


# --------------------------------------------------------------------------------------
# a real browser: headless Chromium from the system (Debian's package)
# --------------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def loud_skip(why: str) -> None:
    """Skip, and say so in the warnings summary too: a skipped browser test must not pass unseen."""
    import warnings

    warnings.warn(f"!!! {why} !!!", UserWarning, stacklevel=2)
    pytest.skip(f"!!! {why} !!!")


#: per <img>: complete, naturalWidth, naturalHeight, and the lowest alpha of its first and last pixel rows
IMAGES_JS = """Array.from(document.images).map(i => {
  const c = document.createElement('canvas'); c.width = i.naturalWidth; c.height = i.naturalHeight;
  const g = c.getContext('2d', {willReadFrequently: true}); g.drawImage(i, 0, 0);
  let a = 255;
  for (const y of [0, Math.max(i.naturalHeight - 1, 0)]) {
    const d = i.naturalWidth ? g.getImageData(0, y, i.naturalWidth, 1).data : [0, 0, 0, 0];
    for (let k = 3; k < d.length; k += 4) a = Math.min(a, d[k]);
  }
  return [i.complete, i.naturalWidth, i.naturalHeight, a];
})"""


@pytest.mark.browser
def test_report_renders_in_headless_chromium(report, tmp_path):
    """Every image decodes (naturalWidth > 0), the console stays clean, and the page makes
    no request but for itself. Playwright drives the system Chromium (no downloaded browser)."""
    if CHROMIUM is None:
        loud_skip("NO CHROMIUM: the browser test of report.html did NOT run. Install it (apt-get install "
                  "chromium; `make test` does this as root)")
    try:
        from playwright import sync_api
    except ImportError:
        loud_skip("playwright is not installed: the browser test of report.html did NOT run "
                  "(pip install -e '.[test]')")
    page_url = (report / "report.html").resolve().as_uri()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems, requests = [], []
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_url, wait_until="load")
            imgs = page.evaluate(IMAGES_JS)
            assert len(imgs) == 7
            # decoded, non-empty, and painted to the last row (Chromium shows a truncated PNG's top part
            # with a natural size all the same; every image of the report is opaque)
            assert all(c and w > 0 and h > 0 and alpha == 255 for c, w, h, alpha in imgs), imgs
            assert page.evaluate("document.querySelectorAll('table.results').length") >= 4
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert [u for u in requests if not u.startswith("data:")] == [page_url]
    assert png_size((tmp_path / "report.png").read_bytes())[1] > 900
