"""The one schema of a probe's metrics.json (bebias.results.ProbeMetrics): round trip, schema
version, files from before the version, malformed files as one line (exit 2), and a new
headline metric reaching the CLI summary and the report from one entry of SCALARS."""

import copy
import json

import pytest

from bebias import results as R
from bebias.errors import BebiasError
from bebias.reporting import tables as T
from bebias.reporting.inputs import Source, find_results, recognise
from tests.inproc import bebias


def est(v, lo=None, hi=None, n=10):
    return {"value": v, "ci_low": lo, "ci_high": hi, "n": n}


def probe_json(**over) -> dict:
    """A metrics.json as bebias probe writes it (schema 2), values by hand."""
    parts = {k: {**est(0.3, 0.2, 0.4), "null": 0.125} for k in ("background_follow", "motion_follow", "sufficiency")}
    m = {"kind": R.KIND, "schema_version": R.SCHEMA_VERSION, "bebias_version": "x",
         "provenance": {"checkpoint": "m.pth", "checkpoint_sha256": "a" * 64, "split": "conflict", "data": "synthetic",
                        "classes": ["a", "b", "c"], "level": "classifier"},
         "videos": {"probed": 10},
         "headline": {"original_top1": 0.9, "static_frame_accuracy": 0.2, "background_reliance": 0.5},
         "accuracy": {"original": {"n": 10, "top1": est(0.9, 0.8, 1.0)},
                      "swap-background": {"n": 10, "top1": est(0.4, 0.3, 0.5)}},
         "drop": {"swap-background": est(0.5, 0.4, 0.6)},
         "agreement": {"swap-background": {"agreement": est(0.4), "kappa": est(0.1)}},
         "conflict": {"swap-background": {"n": 10, "background_follow": est(0.5, 0.4, 0.6),
                                          "foreground_follow": est(0.4, 0.3, 0.5),
                                          "per_class": {"background_follow": {"a": 0.5, "b": None}}}},
         "similarity": {},
         "static_frame_accuracy": est(0.2, 0.1, 0.3),
         "background_reliance": {**est(0.5, 0.4, 0.6), "no_signal": False, "components": parts,
                                 "definition": "score = ..."},
         "swaps": {"scene_labels": "benchmark families", "without_donor": {"swap-background": 2}}}
    m.update(over)
    return m


def test_round_trip_keeps_every_key_and_value():
    m = probe_json(something_new={"x": 1})
    pm = R.ProbeMetrics.from_json(copy.deepcopy(m))
    assert pm.to_json() == m and list(pm.to_json()) == list(m)  # unknown keys kept, order kept
    assert R.ProbeMetrics.from_json(json.loads(json.dumps(pm.to_json()))) == pm
    got = pm.scalars()
    assert got["top1"] == R.Estimate(0.9, 0.8, 1.0, 10) and got["static"] == R.Estimate(0.2, 0.1, 0.3, 10)
    assert got["reliance_sufficiency_null"].value == 0.125 and "contrasted" not in got
    assert pm.follow("swap-background")[1].value == 0.5 and pm.per_class_follow("swap-background") == {
        "a": 0.5, "b": None}
    assert pm.swaps_without_donor() == 2


def test_a_file_from_before_the_schema_version_reads_as_version_1():
    old = probe_json()
    for k in ("kind", "schema_version", "swaps"):
        del old[k]
    assert recognise(old) == "probe"
    pm = R.ProbeMetrics.from_json(old)
    assert pm.schema_version == 1 and pm.swaps is None and pm.swaps_without_donor() is None
    assert T.probe_values(old) == T.probe_values(probe_json())  # the same numbers either way
    new = pm.to_json()  # written back: the current schema, every old key and value unchanged
    assert new["kind"] == R.KIND and new["schema_version"] == R.SCHEMA_VERSION
    assert {k: v for k, v in new.items() if k in old} == old


@pytest.mark.parametrize("change, needle", [
    ({"schema_version": R.SCHEMA_VERSION + 1}, f"schema version {R.SCHEMA_VERSION + 1} is newer"),
    ({"schema_version": "2"}, "schema_version '2' is not a positive integer"),
    ({"kind": "bebias-eval"}, "kind 'bebias-eval' is not a probe's"),
    ({"headline": [1]}, "'headline' is not an object"),
    ({"accuracy": {"original": 3}}, "accuracy['original'] is not an object"),
    ({"background_reliance": 0.5}, "'background_reliance' is not an object or null"),
    ({"provenance": {"checkpoint": "m.pth"}}, "provenance has no 'split'"),
])
def test_a_malformed_file_is_one_line_naming_it(tmp_path, change, needle):
    p = tmp_path / "metrics.json"
    p.write_text(json.dumps(probe_json(**change)))
    with pytest.raises(BebiasError) as e:
        R.ProbeMetrics.from_json(json.loads(p.read_text()), str(p))
    msg = str(e.value)
    assert needle in msg and str(p) in msg and "\n" not in msg, msg
    if change.get("kind") != "bebias-eval":  # a file of another kind is not a probe to report on
        with pytest.raises(BebiasError, match="metrics.json"):
            find_results([str(p)])


def test_the_report_cli_on_a_newer_file_is_one_line_exit_2(tmp_path):
    p = tmp_path / "metrics.json"
    p.write_text(json.dumps(probe_json(schema_version=R.SCHEMA_VERSION + 1)))
    r = bebias("report", str(p), "--out", str(tmp_path / "out"))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "newer than this bebias reads" in r.stderr and not (tmp_path / "out").exists()


def test_a_new_metric_is_one_entry_of_scalars(monkeypatch, capsys):
    """A headline metric added to SCALARS alone shows in the CLI summary and as a column of
    the report's checkpoint table."""
    new = R.Scalar("drop_swap", "swap drop", lambda m: R.Estimate.of(m.drop.get("swap-background")))
    monkeypatch.setattr(R, "SCALARS", R.SCALARS + (new,))
    monkeypatch.setattr(T, "SCALARS", R.SCALARS)
    m = probe_json()
    assert R.ProbeMetrics.from_json(m).scalars()["drop_swap"] == R.Estimate(0.5, 0.4, 0.6, 10)
    t = T.checkpoint_table([Source("probe", "m.json", m)])
    j = [mt.key for _, mt in t.columns].index("drop_swap")
    assert (t.value[0, j], t.ci_low[0, j]) == (0.5, 0.4) and t.columns[j][1].higher_is_better is None

    from bebias.cli import probe as cli_probe

    class Res:
        metrics, metrics_path, predictions_path, resumed, discarded_partial, out = m, "m.json", "p.csv", 0, False, "."

        @property
        def results(self):
            return R.ProbeMetrics.from_json(self.metrics)

    m["videos"] = {"probed": 10, "selected": 10, "unreadable": [],
                   "masks": {"sources": {}, "not_usable": 0, "motion_iou": None}}
    cli_probe._print_probe(Res())
    out = " ".join(capsys.readouterr().out.split())
    assert "swap drop: 50.0 %" in out and "95 % CI over test videos" in out
    assert "2 swap(s) left out" in out
