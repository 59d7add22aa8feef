"""``bebias report`` byte for byte: a fixed set of hand-written results (two probes, a
compare grid, a calibration, a cam folder) -> the report folder in every format, checked
against digests recorded with the report builder before it was split into collect -> plan
-> one writer per format. No model is trained; seconds.

The Markdown, LaTeX and CSV files are compared whole; the HTML page with its embedded
images cut out (matplotlib's PNG bytes may move with its version), the figures by name, and
the CAM strips, copied verbatim from the cam folder, byte for byte."""

import hashlib
import json
import os
import re

import pytest

from bebias.reporting.build import build_report
from report_inputs import write_calibration, write_cam


def _probe(sha: str, top1: float, method: str, rel: float) -> dict:
    def block(v):
        return {"value": v, "ci_low": max(v - 0.1, 0), "ci_high": min(v + 0.1, 1)}

    parts = {k: {**block(0.2 + 0.1 * i), "null": 0.125, "n": 10}
             for i, k in enumerate(("background_follow", "motion_follow", "sufficiency"))}
    return {"provenance": {"checkpoint": f"/nowhere/{sha[:4]}.pth", "checkpoint_sha256": sha, "checkpoint_kind":
                           "classifier", "arch": "small3d", "method": method, "data": "synthetic", "split": "conflict",
                           "classes": ["a", "b", "c"]},
            "headline": {"original_top1": top1, "background_reliance": rel},
            "accuracy": {v: {"n": 10, "top1": block(top1 - 0.1 * k)}
                         for k, v in enumerate(("original", "swap-background", "static-frame"))},
            "background_reliance": {**block(rel), "n": 10, "no_signal": False, "components": parts},
            "conflict": {"swap-background": {"n": 10, "background_follow": block(0.5 - top1 / 4),
                                             "foreground_follow": block(top1 / 2),
                                             "per_class": {"background_follow": {"a": 0.4, "b": 0.6, "c": 0.1}}}}}


def _compare() -> dict:
    rows = []
    for v, base in (("random-init", 0.3), ("moco", 0.5)):
        for seed in (0, 1):
            x = base + 0.05 * seed
            rows.append({"variant": v, "seed": seed, "train->iid/top1": x, "train->conflict/top1": x / 2,
                         "train->conflict/bg_follow": 1 - x})
    return {"config": {"data": "synthetic", "arch": "small3d", "frames": 4, "stride": 2, "size": 32, "method": "be"},
            "seeds": [0, 1], "classes": 3, "rows": rows, "skipped_updates": {}}


def make_inputs(root: str) -> list[str]:
    """The fixed results under ``root``: their paths."""
    paths = []
    for name, obj in (("probe-a/metrics.json", _probe("a" * 64, 0.55, "linear", 0.4)),
                      ("probe-b/metrics.json", _probe("b" * 64, 0.8, "moco", 0.2)),
                      ("compare/compare.json", _compare())):
        p = os.path.join(root, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            json.dump(obj, f)
        paths.append(p)
    paths.append(write_calibration(os.path.join(root, "calibration")))
    paths.append(write_cam(os.path.join(root, "cam"), ["/nowhere/aaaa.pth", "/nowhere/bbbb.pth"]))
    return paths


def digest(out: str) -> dict[str, str]:
    """File -> sha256 (12 hex) of the report folder: text whole; the page without its
    embedded images (and their count); a matplotlib figure as ``png`` (its presence only)."""
    res = {}
    for d, _, files in os.walk(out):
        for f in files:
            rel = os.path.relpath(os.path.join(d, f), out)
            with open(os.path.join(d, f), "rb") as h:
                data = h.read()
            if rel.endswith(".html"):
                data, n = re.subn(rb"data:image/png;base64,[A-Za-z0-9+/=]+", b"data:image/png;base64,", data)
                res[rel + "#images"] = str(n)
            figure = rel.endswith(".png") and not rel.startswith("figures/cam")
            res[rel] = "png" if figure else hashlib.sha256(data).hexdigest()[:12]
    return dict(sorted(res.items()))


def build(**kw) -> str:
    """The report of :func:`make_inputs` in the current folder (relative paths: the sources
    the report names are the same wherever it runs)."""
    build_report(make_inputs("in"), out="report", name="golden", **kw)
    return "report"


#: per case: build_report's options and the digest recorded with the builder of commit 6bf0749
CASES: dict[str, tuple[dict, dict[str, str]]] = {
    "baseline": ({"baseline": "moco"}, {
        "calibration.csv": "07836cbf20ff",
        "calibration.tex": "5db60b031b9f",
        "cam.csv": "81072f17782c",
        "cam.tex": "d34f71ef3aa7",
        "checkpoints.csv": "ff45106b3ddc",
        "checkpoints.tex": "39cb54bb8dc2",
        "compare.csv": "0b825105cbdd",
        "compare.tex": "89d0b2348276",
        "figures/accuracy.png": "png",
        "figures/cam-0-video0.png": "48edc9245979",
        "figures/cam-1-video1.png": "41e3c80fa057",
        "figures/compare-bars.png": "png",
        "figures/follow.png": "png",
        "figures/per_class.png": "png",
        "report.html": "b19ca8cf058c",
        "report.html#images": "6",
        "report.md": "739f662d57a5",
    }),
    "csv,tex": ({"formats": "csv,tex"}, {
        "calibration.csv": "07836cbf20ff",
        "calibration.tex": "5db60b031b9f",
        "cam.csv": "81072f17782c",
        "cam.tex": "d34f71ef3aa7",
        "checkpoints.csv": "1ceb1dc3e585",
        "checkpoints.tex": "2ea8a444d949",
        "compare.csv": "17774d70ae15",
        "compare.tex": "0b81c3727ae6",
    }),
    "html": ({"formats": "html"}, {
        "report.html": "2bf64162e254",
        "report.html#images": "6",
    }),
}


@pytest.mark.parametrize("case", CASES)
def test_the_report_folder_is_byte_identical_to_the_recorded_one(tmp_path, monkeypatch, case):
    options, recorded = CASES[case]
    monkeypatch.chdir(tmp_path)
    assert digest(build(**options)) == recorded
