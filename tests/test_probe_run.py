"""bebias probe: counterfactual test sets through a model, end to end (CLI and library).

Small on purpose: a 3-class benchmark, 9 test videos, 4-frame 32 px clips, a classifier
trained for 2 steps and an encoder pre-trained for 1 -- the numbers mean nothing, the
plumbing (rows, keys, determinism, resume, errors) is what is tested.
"""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bebias.errors import BebiasError
from bebias.probing.masks import DEFAULT_METHOD
from bebias.probing.run import (ALL_VARIANTS, NEEDS_MASK, ProbeConfig, ProbeSuite, load_suite, run_probe, select_videos,
                                variant_seed)
from bebias.results import SCHEMA_VERSION, ProbeMetrics
from tests.inproc import bebias

DATA = "synthetic:classes=3,videos_per_class=4,test_videos_per_class=3,frames=12,size=32"
N_TEST = 9  # 3 classes x 3 videos in the conflict split
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSV_COLUMNS = ["index", "path", "variant", "label", "bg_label", "pred", "p_label", "p_bg", "mask_source"]


@pytest.fixture(scope="module")
def classifier(tiny_classifier_ckpt, tiny_data):
    assert tiny_data == DATA
    return tiny_classifier_ckpt  # tests/conftest.py: trained once per session


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    from bebias.training.pretrain import PretrainConfig, pretrain

    out = tmp_path_factory.mktemp("pt")
    return pretrain(PretrainConfig(data=DATA, frames=4, size=32, batch_size=4, max_steps=1, queue_size=8,
                                   precision="fp32", workers=0, out=str(out))).model_path


@pytest.fixture(scope="module")
def small_suite(tmp_path_factory):
    """Every variant, short bootstrap (keeps the test fast; the numbers do not matter)."""
    p = tmp_path_factory.mktemp("suite") / "small.toml"
    p.write_text('name = "small"\nvariants = [' + ", ".join(f'"{v}"' for v in ALL_VARIANTS[1:]) + "]\n"
                 "n_boot = 50\nchunk = 4\n")
    return str(p)


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def strip_paths(rows):
    return [{k: v for k, v in r.items() if k != "path"} for r in rows]


# --------------------------------------------------------------------------------------
# suites and pure helpers
# --------------------------------------------------------------------------------------

def test_shipped_suites_parse():
    quick, qpath = load_suite("quick")  # a bare name is a built-in suite (package data)
    full, _ = load_suite("full.toml")
    assert quick.name == "quick" and 0 < quick.max_videos and set(quick.variants) < set(ALL_VARIANTS)
    assert {"swap-background", "swap-background-static", "background-only"} <= set(quick.variants)
    assert set(full.variants) == set(ALL_VARIANTS) - {"original"} and full.max_videos == 0
    # the full suite spells out the defaults: it is what runs when nothing is named
    assert {k: v for k, v in full.to_dict().items() if k not in ("name", "description")} == \
           {k: v for k, v in ProbeSuite().to_dict().items() if k not in ("name", "description")}
    assert load_suite(qpath)[0] == quick and os.path.isfile(qpath)  # its path, as recorded, reads it again
    assert os.path.dirname(qpath) == os.path.join(ROOT, "bebias", "probing", "suites")


@pytest.mark.parametrize("text, needle", [
    ('variants = ["swap-background", "teleport"]', "teleport"),
    ("colour = 3", "colour"),
    ('mask = "psychic"', "mask"),
    ('n_boot = "many"', "n_boot"),
    ("variants = [", "not valid TOML"),
])
def test_bad_suite_files_are_user_errors(tmp_path, text, needle):
    p = tmp_path / "s.toml"
    p.write_text(text + "\n")
    with pytest.raises(BebiasError, match=needle):
        load_suite(str(p))


def test_missing_suite_file_is_a_user_error(tmp_path):
    with pytest.raises(BebiasError, match="does not exist"):
        load_suite(str(tmp_path / "nope.toml"))
    with pytest.raises(BebiasError, match="built-in suite: full, quick"):
        load_suite("nope")  # a bare name that is no built-in suite lists the built-in ones


def test_video_selection_and_seeds_are_deterministic():
    labels = [0, 0, 0, 1, 1, 2, 2, 2, 2]
    assert select_videos(labels) == list(range(9))
    assert select_videos(labels, 3) == [0, 3, 5]  # one per class first
    assert select_videos(labels, 5) == [0, 1, 3, 4, 5]
    assert variant_seed(0, 3, "shuffle") == variant_seed(0, 3, "shuffle")
    assert len({tuple(variant_seed(s, i, v)) for s in (0, 1) for i in (0, 1) for v in ("shuffle", "be")}) == 8


# --------------------------------------------------------------------------------------
# end to end
# --------------------------------------------------------------------------------------

def test_probe_cli_end_to_end_deterministic_and_resumable(tmp_path, classifier, small_suite):
    out = tmp_path / "a"
    r = bebias("probe", classifier, "--data", DATA, "--suite", small_suite, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "background reliance" in r.stdout and "swap-background" in r.stdout

    rows = read_rows(out / "predictions.csv")
    assert list(rows[0]) == CSV_COLUMNS
    assert len(rows) == N_TEST * len(ALL_VARIANTS)  # the benchmark's ground-truth masks are all usable
    assert {r["variant"] for r in rows} == set(ALL_VARIANTS)
    by = {(r["index"], r["variant"]): r for r in rows}
    for (i, v), row in by.items():
        assert row["mask_source"] == ("ground-truth" if v in NEEDS_MASK else "")
        if v.startswith("swap-background") or v == "conflict-foreground":
            # the donor's background belongs to another class than the video's motion
            assert row["bg_label"] != row["label"]
        if v.startswith("foreground-only"):
            assert row["bg_label"] == "" and row["p_bg"] == ""
    # SCUBA and SCUFO of a video share the donor's background
    assert all(by[(i, "swap-background")]["bg_label"] == by[(i, "swap-background-static")]["bg_label"]
               for i, _ in by)

    m = json.loads((out / "metrics.json").read_text())
    # the file is the schema's (bebias.results.ProbeMetrics) and round-trips through it unchanged
    assert m["kind"] == "bebias-probe" and m["schema_version"] == SCHEMA_VERSION
    assert ProbeMetrics.from_json(m).to_json() == m
    pv = m["provenance"]
    assert pv["checkpoint_sha256"] and len(pv["checkpoint_sha256"]) == 64
    assert pv["data"] == DATA and pv["split"] == "conflict" and pv["seed"] == 0 and pv["level"] == "classifier"
    assert pv["suite"]["name"] == "small" and pv["bebias_version"] and pv["input"]["frames"] == 4
    assert m["videos"]["probed"] == N_TEST and m["videos"]["masks"]["sources"] == {"ground-truth": N_TEST}
    assert 0.0 < m["videos"]["masks"]["motion_iou"]["mean"] <= 1.0
    assert set(m["accuracy"]) == set(ALL_VARIANTS) and set(m["drop"]) == set(ALL_VARIANTS) - {"original"}
    assert {"background_follow", "foreground_follow", "motion_over_background"} <= set(m["conflict"]["swap-background"])
    assert set(m["accuracy"]["original"]["per_class"]) == {"right", "left", "up"}
    for key in ("background_reliance", "contrasted_accuracy", "static_frame_accuracy", "background_only_accuracy",
                "shuffle_sensitivity"):
        assert key in m["headline"] and key in m
    rel = m["background_reliance"]  # every swap has a donor with a background-only clip here
    assert set(rel["components"]) == {"background_follow", "motion_follow", "sufficiency"}
    assert rel["n_without_reference"] == 0 and isinstance(rel["no_signal"], bool)
    assert all(0.0 <= c["null"] <= 1.0 for c in rel["components"].values())
    assert set(m["similarity"]) == set(ALL_VARIANTS) - {"original"}

    # the same seed gives the same numbers (here: in-process, a second output directory)
    suite, spath = load_suite(small_suite)
    res = run_probe(ProbeConfig(classifier, data=DATA, suite=suite, suite_path=spath, out=str(tmp_path / "b")))
    assert (tmp_path / "b" / "metrics.json").read_text() == (out / "metrics.json").read_text()
    assert (tmp_path / "b" / "predictions.csv").read_text() == (out / "predictions.csv").read_text()
    assert res.resumed == 0

    # resume: the finished per-video results are kept and give the same numbers
    saved = (out / "metrics.json").read_text()
    os.remove(out / "metrics.json")
    assert (out / "partial.npz").exists()
    r = bebias("probe", classifier, "--data", DATA, "--suite", small_suite, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert f"resumed: {N_TEST} video(s)" in r.stdout
    assert (out / "metrics.json").read_text() == saved


def test_interrupted_probe_resumes_where_it_stopped(tmp_path, classifier):
    suite = ProbeSuite(variants=("swap-background", "shuffle"), n_boot=20, chunk=4)
    ref = run_probe(ProbeConfig(classifier, data=DATA, suite=suite, out=str(tmp_path / "ref")))

    cfg = ProbeConfig(classifier, data=DATA, suite=suite, out=str(tmp_path / "run"), save_every=3600)

    def interrupt(p):
        if p.done == 4:  # after the first chunk
            raise KeyboardInterrupt

    with pytest.raises(BebiasError, match="interrupted after 4/9 videos"):
        run_probe(cfg, progress=interrupt)
    assert not (tmp_path / "run" / "metrics.json").exists()
    with np.load(tmp_path / "run" / "partial.npz") as z:
        assert z["vid_index"].tolist() == [0, 1, 2, 3] and len(z["row_video"]) == 4 * 3
    res = run_probe(cfg)
    assert res.resumed == 4 and res.videos == N_TEST
    assert res.metrics == ref.metrics
    assert strip_paths(read_rows(res.predictions_path)) == strip_paths(read_rows(ref.predictions_path))

    # another probe into the same directory ignores (does not mix in) those results
    other = run_probe(ProbeConfig(classifier, data=DATA, suite=suite, seed=1, max_videos=3, out=str(tmp_path / "run")))
    assert other.discarded_partial and other.resumed == 0


def test_benchmark_on_disk_gives_the_in_memory_numbers(tmp_path, classifier):
    from bebias.data.open import parse_synth_spec
    from bebias.data.synth_disk import write_benchmark

    bench = tmp_path / "bench"
    write_benchmark(parse_synth_spec(DATA), str(bench))  # FFV1: lossless
    suite = ProbeSuite(variants=("swap-background", "background-only", "conflict-foreground"), n_boot=20)
    mem = run_probe(ProbeConfig(classifier, data=DATA, suite=suite, out=str(tmp_path / "mem")))
    disk = run_probe(ProbeConfig(classifier, data=str(bench), suite=suite, out=str(tmp_path / "disk")))
    assert disk.metrics["provenance"]["data_kind"] == "benchmark"
    assert disk.metrics["videos"]["masks"]["sources"] == {"ground-truth": N_TEST}
    # recorded masks, background plates and families: the same rows as in memory
    assert strip_paths(read_rows(disk.predictions_path)) == strip_paths(read_rows(mem.predictions_path))
    assert disk.metrics["headline"] == mem.metrics["headline"]

    # the same videos as a plain dataset (a CSV manifest: no masks, no plates, no families):
    # motion masks, plates from the donors' own clips, the donor's class as bg_label
    ds = run_probe(ProbeConfig(classifier, data=str(bench / "manifest.csv"), split="conflict", suite=suite,
                               out=str(tmp_path / "csv")))
    assert ds.metrics["provenance"]["data_kind"] == "dataset" and ds.metrics["provenance"]["mask_iou"] is None
    mk = ds.metrics["videos"]["masks"]
    assert mk["sources"] == {f"motion:{DEFAULT_METHOD}": N_TEST} and mk["usable"] + mk["not_usable"] == N_TEST
    labels = {r["index"]: r["label"] for r in read_rows(ds.predictions_path) if r["variant"] == "original"}
    for r in read_rows(ds.predictions_path):
        if r["variant"] in ("swap-background", "conflict-foreground"):
            assert r["bg_label"] != r["label"] and r["mask_source"] == f"motion:{DEFAULT_METHOD}"
        if r["variant"] == "original":
            assert r["bg_label"] == ""  # unknown outside the benchmark
    assert set(labels) == {str(i) for i in range(N_TEST)}


def test_representation_level_probe_of_a_pretrained_encoder(tmp_path, encoder):
    suite = ProbeSuite(variants=("swap-background", "background-only", "be"), n_boot=20, knn_k=3)
    res = run_probe(ProbeConfig(encoder, data=DATA, suite=suite, out=str(tmp_path / "o")))
    m = res.metrics
    assert m["provenance"]["level"] == "representation" and m["provenance"]["checkpoint_kind"] == "pretrain"
    assert m["provenance"]["gallery"] == {"split": "train", "videos": 12, "k": 3, "unreadable": 0}
    assert set(m["similarity"]) == {"swap-background", "background-only", "be"}
    assert all(-1.0 <= s["value"] <= 1.0 for s in m["similarity"].values())
    assert m["accuracy"]["original"]["n"] == N_TEST and m["headline"]["background_reliance"] is not None
    rows = read_rows(res.predictions_path)
    assert len(rows) == N_TEST * 4
    assert all(0.0 <= float(r["p_label"]) <= 1.0 for r in rows)
    with np.load(tmp_path / "o" / "partial.npz") as z:  # the gallery is kept for a resume too
        assert z["gallery_feats"].shape[0] == 12


def test_mask_free_variants_on_motion_masks(tmp_path, classifier):
    """Motion masks where ground truth is not used; videos whose mask is unusable are
    counted and kept out of the mask-based variants, never silently dropped."""
    suite = ProbeSuite(variants=("foreground-only", "reverse"), mask="diff", n_boot=20, max_mask_fraction=0.05)
    res = run_probe(ProbeConfig(classifier, data=DATA, suite=suite, out=str(tmp_path / "o")))
    mk = res.metrics["videos"]["masks"]
    assert mk["sources"] == {"motion:diff": N_TEST} and mk["usable"] + mk["not_usable"] == N_TEST
    pv = res.metrics["videos"]["per_variant"]
    assert pv["reverse"]["videos"] == N_TEST
    assert pv["foreground-only"]["videos"] == mk["usable"]
    assert pv["foreground-only"]["excluded"].get("mask_unusable", 0) == mk["not_usable"]


@pytest.mark.parametrize("case", ["classes", "suite", "variant"])
def test_probe_user_errors_are_one_line_exit_2(tmp_path, classifier, case):
    if case == "classes":
        args = ("--data", "synthetic:classes=4,videos_per_class=2,test_videos_per_class=2,frames=12,size=32")
        needle = "3 classes"
    elif case == "suite":
        args, needle = ("--suite", str(tmp_path / "missing.toml")), "missing.toml"
    else:
        (tmp_path / "bad.toml").write_text('variants = ["moonwalk"]\n')
        args, needle = ("--suite", str(tmp_path / "bad.toml")), "moonwalk"
    r = bebias("probe", classifier, *args, "--out", str(tmp_path / "o"))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_not_a_checkpoint_is_a_user_error(tmp_path):
    bad = tmp_path / "x.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(BebiasError, match="x.pth"):
        run_probe(ProbeConfig(str(bad), data=DATA, out=str(tmp_path / "o")))


def _close(a, b, tol: float = 1e-5) -> bool:
    """Equal JSON trees, floats up to ``tol``."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_close(a[k], b[k], tol) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, (int, float)):
        return abs(a - b) <= tol
    return a == b


@pytest.mark.multiprocess
def test_torchrun_shards_the_videos_and_gathers_the_same_outputs(tmp_path, classifier):
    import shutil

    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    if not os.path.exists(torchrun):
        pytest.skip("torchrun not installed")
    args = ["probe", classifier, "--data", DATA, "--swap-backgrounds", "--shuffle", "--background-only",
            "--device", "cpu"]
    single = bebias(*args, "--out", str(tmp_path / "one"))
    assert single.returncode == 0, single.stderr
    env = {**os.environ, "BEBIAS_DIST_BACKEND": "gloo", "OMP_NUM_THREADS": "1"}
    r = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "bebias", *args,
                        "--out", str(tmp_path / "two")], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("background reliance") == 1  # one table, from rank 0
    for name in ("partial.rank0-of-2.npz", "partial.rank1-of-2.npz"):  # each rank resumes its own share
        assert (tmp_path / "two" / name).exists()
    one, two = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("one", "two"))
    assert _close(two, one)
    # the same rows in the same order; probabilities equal up to float rounding (other batch
    # compositions and thread counts may sum a convolution in another order)
    r1, r2 = read_rows(tmp_path / "one" / "predictions.csv"), read_rows(tmp_path / "two" / "predictions.csv")
    assert len(r1) == len(r2)
    for a, b in zip(r1, r2):
        assert {k: v for k, v in a.items() if not k.startswith("p_")} == {k: v for k, v in b.items()
                                                                          if not k.startswith("p_")}
        for k in ("p_label", "p_bg"):
            assert (a[k] == b[k] == "") or abs(float(a[k]) - float(b[k])) < 1e-4
