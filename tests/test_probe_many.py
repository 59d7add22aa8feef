"""bebias probe A B: many checkpoints in one pass (bebias.probing.onepass, run_probes,
bebias.workflows.probe_many) write, per checkpoint, exactly what a probe of it alone writes.

Two tiny classifiers of different input specs (32 px and 24 px: each model resizes the
same decoded frames itself), trained for 2 steps; the numbers mean nothing, their equality
with single-checkpoint probes is what is tested.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bebias.errors import BebiasError
from bebias.probing.run import ProbeConfig, load_suite, run_probe, run_probes
from bebias.workflows.probe_many import folder_names
from tests.tiny import tiny_classifier
from tests.inproc import bebias

DATA = "synthetic:classes=3,videos_per_class=4,test_videos_per_class=3,frames=12,size=32"
N_TEST = 9
SUITE_TOML = 'name = "small"\nvariants = ["swap-background", "background-only", "shuffle"]\nn_boot = 20\nchunk = 4\n'


@pytest.fixture(scope="module")
def two(tmp_path_factory, tiny_classifier_ckpt, tiny_data):
    """Two classifiers (a/model.pth at 32 px, b/model.pth at 24 px), the suite (file) and
    their single probes."""
    global SUITE, SUITE_PATH
    p = tmp_path_factory.mktemp("suite") / "small.toml"
    p.write_text(SUITE_TOML)
    SUITE, SUITE_PATH = load_suite(str(p))
    assert tiny_data == DATA
    a = tiny_classifier_ckpt  # tests/conftest.py: trained once per session
    b = tiny_classifier(tmp_path_factory.mktemp("b"), DATA, size=24, seed=1)
    ref = tmp_path_factory.mktemp("ref")
    refs = [run_probe(ProbeConfig(c, data=DATA, suite=SUITE, suite_path=SUITE_PATH, out=str(ref / n))) for c, n in ((a, "a"), (b, "b"))]
    return (a, b), refs


def read(path):
    with open(path) as f:
        return f.read()


def test_folder_names_are_distinct():
    assert folder_names(["x/a.pth", "y/b.pt"]) == ["a", "b"]
    assert folder_names(["ft1/model.pth", "ft2/model.pth"]) == ["ft1-model", "ft2-model"]
    assert folder_names(["ft/model.pth", "ft/model.pth", "hf_dir"]) == ["ft-model", "ft-model-2", "hf_dir"]


def test_one_pass_equals_separate_probes(tmp_path, two):
    (a, b), refs = two
    assert refs[0].metrics["provenance"]["input"]["size"] == 32 and refs[1].metrics["provenance"]["input"]["size"] == 24
    out = tmp_path / "many"
    r = bebias("probe", a, b, "--data", DATA, "--suite", SUITE_PATH, "--out", str(out))
    assert r.returncode == 0, r.stderr
    names = folder_names([a, b])
    for n in names:
        assert (out / n / "metrics.json").exists() and (out / n / "predictions.csv").exists()
    board = json.loads(read(out / "leaderboard.json"))
    assert board["ranked_by"] == "background_reliance" and {row["name"] for row in board["rows"]} == set(names)
    vals = [row["reliance"] for row in board["rows"] if row["reliance"] is not None]
    assert vals == sorted(vals, reverse=True)
    assert "leaderboard:" in r.stdout and "chance 0" in read(out / "leaderboard.md")
    # byte-identical outputs to the separate probes
    for n, ref in zip(names, refs):
        assert json.loads(read(out / n / "metrics.json")) == ref.metrics
        assert read(out / n / "metrics.json") == read(ref.metrics_path)
        assert read(out / n / "predictions.csv") == read(ref.predictions_path)


def test_one_pass_resumes_each_checkpoint_on_its_own(tmp_path, two):
    (a, b), refs = two
    cfgs = [ProbeConfig(c, data=DATA, suite=SUITE, suite_path=SUITE_PATH, out=str(tmp_path / n), save_every=3600)
            for c, n in ((a, "a"), (b, "b"))]

    def interrupt(p):
        if p.done == 4:  # after the first chunk
            raise KeyboardInterrupt

    with pytest.raises(BebiasError, match="interrupted after 4/9 videos"):
        run_probes(cfgs, progress=interrupt, where=str(tmp_path))
    for n in ("a", "b"):
        with np.load(tmp_path / n / "partial.npz") as z:
            assert z["vid_index"].tolist() == [0, 1, 2, 3]
    os.remove(tmp_path / "b" / "partial.npz")  # b starts over while a resumes after its first chunk
    got = run_probes(cfgs)
    assert [g.resumed for g in got] == [4, 0]
    for g, ref in zip(got, refs):
        assert g.metrics == ref.metrics
        assert read(g.predictions_path) == read(ref.predictions_path)
    again = run_probes(cfgs)  # finished: both resume everything, same numbers
    assert [g.resumed for g in again] == [N_TEST, N_TEST] and [g.metrics for g in again] == [g.metrics for g in got]


def test_two_probes_into_one_folder_are_refused(tmp_path, two):
    (a, b), _ = two
    with pytest.raises(BebiasError, match="same output folder"):
        run_probes([ProbeConfig(c, data=DATA, suite=SUITE, suite_path=SUITE_PATH, out=str(tmp_path / "x")) for c in (a, b)])


def _close(a, b, tol=1e-6):
    """Equal JSON up to float rounding (other batch compositions under torchrun)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_close(a[k], b[k], tol) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, (int, float)):
        return abs(a - b) <= tol
    return a == b


@pytest.mark.multiprocess
def test_torchrun_one_pass_equals_separate_probes(tmp_path, two):
    import shutil

    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    if not os.path.exists(torchrun):
        pytest.skip("torchrun not installed")
    (a, b), refs = two
    env = {**os.environ, "BEBIAS_DIST_BACKEND": "gloo", "OMP_NUM_THREADS": "1"}
    out = tmp_path / "many"
    r = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "bebias", "probe", a, b, "--data",
                        DATA, "--suite", SUITE_PATH, "--device", "cpu", "--out", str(out)],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("leaderboard:") == 1  # one table, from rank 0
    for n, ref in zip(folder_names([a, b]), refs):
        assert (out / n / "partial.rank1-of-2.npz").exists()
        assert _close(json.loads(read(out / n / "metrics.json")), ref.metrics)


def test_a_missing_checkpoint_among_several_is_one_line_exit_2(tmp_path, two):
    (a, _), _ = two
    missing = str(tmp_path / "nope.pth")
    r = bebias("probe", a, missing, "--data", DATA, "--suite", SUITE_PATH, "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "nope.pth" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "leaderboard.json").exists()
