"""experiments/benchmark_v2.py on a tiny setting: every kind of run, results naming the
protocol's commit, the criteria and MDE as the protocol defines them, resume without rerun."""

import importlib.util
import json
import math
import os
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _runner():
    spec = importlib.util.spec_from_file_location("benchmark_v2", ROOT / "experiments" / "benchmark_v2.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


TINY_SIZES = {"classes": 2, "videos_per_class": 4, "test_videos_per_class": 2, "conflict_videos_per_class": 2,
              "frames": 12, "size": 32}
TINY_PRE = {"frames": 4, "batch_size": 4, "max_steps": 2, "queue_size": 8}
TINY_SUP = {"frames": 4, "batch_size": 4, "max_steps": 2}


def test_mde_and_criteria_follow_the_protocol():
    m = _runner()
    # n = 3: (t_.975,2 + t_.80,2) * sqrt(2) * sd / sqrt(3) = (4.303 + 1.061) * 0.8165 * sd
    assert m.mde([0.20, 0.22, 0.24]) == pytest.approx((4.3027 + 1.0607) * math.sqrt(2) * 0.02 / math.sqrt(3), rel=1e-3)
    assert m.mde([0.2, 0.2, 0.2]) == pytest.approx(m.mde([0.2, 0.21, 0.22]) / 1.0, rel=1e-9)  # sd floor: 1 point

    def probe(u, b, seed):
        return {"seed": seed, "train-unbiased->conflict/top1": u, "train->conflict/bg_follow": b}

    runs = {"random-init": [probe(0.15, 0.50, s) for s in range(3)],
            "moco": [probe(0.30 + 0.01 * s, 0.65, s) for s in range(3)],
            "sup-unbiased": [{"conflict/top1": 0.95}], "sup-biased": [{"conflict/bg_follow": 0.6}],
            "oracle-actor-swap": [probe(0.60, 0.3, s) for s in range(3)],
            "oracle-one-frame": [probe(0.29 + 0.01 * s, 0.7, s) for s in range(3)]}
    got = {c["name"]: c["passed"] for c in m.criteria(runs)}
    assert list(got.values()) == [True, True, True, True, True, True, False]  # one-frame within the MDE
    runs["moco"] = [probe(0.70, 0.65, s) for s in range(3)]  # too close to supervised
    assert [c["passed"] for c in m.criteria(runs)][3] is False
    assert all(c["passed"] is None for c in m.criteria({}))


def test_runner_smoke_on_tiny_sizes(tmp_path):
    m = _runner()
    out = str(tmp_path / "v2")
    logs = []
    res = m.run_protocol(out, commit="0" * 40, candidates=["c3-v2"], seeds=(0, 1), sizes=TINY_SIZES,
                         pretrain=TINY_PRE, supervised=TINY_SUP, log=logs.append)
    assert res[0]["candidate"] == "c3-v2" and res[0]["verdict"].startswith(("rejected", "accepted"))
    results = sorted(pathlib.Path(out).rglob("result.json"))
    assert results
    for p in results:
        r = json.loads(p.read_text())
        assert r["protocol_commit"] == "0" * 40 and "version=v2" in r["data"]
        assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", r["code_commit"]), r["code_commit"]
    first = json.loads((pathlib.Path(out) / "c3-v2" / "random-init-seed0" / "result.json").read_text())
    assert 0 <= first["train-unbiased->conflict/top1"] <= 1
    assert (pathlib.Path(out) / "summary.md").read_text().startswith("| candidate |")
    moco = json.loads((pathlib.Path(out) / "c3-v2" / "moco-seed0" / "result.json").read_text())
    assert moco["config"]["split"] == "pretrain" and moco["config"]["oracle"] == "none"
    stamp = {p: p.stat().st_mtime_ns for p in results}
    m.run_protocol(out, commit="0" * 40, candidates=["c3-v2"], seeds=(0, 1), sizes=TINY_SIZES, pretrain=TINY_PRE,
                   supervised=TINY_SUP, log=logs.append)
    assert stamp == {p: p.stat().st_mtime_ns for p in results}  # resumed: nothing re-run


def test_protocol_lists_the_runners_grid_and_budgets():
    m = _runner()
    doc = (ROOT / "docs" / "benchmark-v2-protocol.md").read_text()
    for name, overrides in m.CANDIDATES:
        assert f"`{name}`" in doc and m.data_string(overrides) in doc
    assert f"max_steps={m.PRETRAIN['max_steps']}" in doc and f"epochs={m.SUPERVISED['epochs']}" in doc
    assert "seeds 0, 1, 2" in doc and tuple(m.SEEDS) == (0, 1, 2)


def test_runner_refuses_an_uncommitted_protocol(tmp_path):
    m = _runner()
    repo = tmp_path / "r"
    (repo / "docs").mkdir(parents=True)
    os.system(f"git -C {repo} init -q")
    with pytest.raises(SystemExit, match="committed"):
        m.protocol_commit(str(repo))
    (repo / m.PROTOCOL).write_text("x")
    os.system(f"git -C {repo} add -A && git -C {repo} -c user.email=a@b -c user.name=a commit -qm p")
    sha = m.protocol_commit(str(repo))
    assert len(sha) == 40
    (repo / m.PROTOCOL).write_text("changed")
    with pytest.raises(SystemExit, match="unmodified"):
        m.protocol_commit(str(repo))
