"""Reliability: a probe killed with SIGKILL resumes to the uninterrupted outputs, and an
output that cannot be written (a location that is not a directory, a file-size limit
standing in for a full disk) gives one clear line, exit code 2, and leaves earlier outputs
as they were."""

import os
import resource
import signal
import subprocess
import sys
import time

import pytest

from tests.inproc import message_lines
from tests.tiny import tiny_classifier

DATA = "synthetic:classes=3,videos_per_class=4,test_videos_per_class=8,frames=12,size=32"
N_TEST = 24


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    out = tmp_path_factory.mktemp("ft")
    return tiny_classifier(out, DATA)


def _probe_script(ckpt: str, out: str) -> list[str]:
    """The probe in a child process, writing partial.npz after every chunk of 2 videos."""
    code = ("import sys; from bebias.probing.run import ProbeConfig, run_probe; "
            "from bebias.probing.suite import ALL_VARIANTS, ProbeSuite; "
            "s = ProbeSuite(variants=ALL_VARIANTS[1:], n_boot=30, chunk=2); "
            f"run_probe(ProbeConfig({ckpt!r}, data={DATA!r}, suite=s, out={out!r}, save_every=0))")
    return [sys.executable, "-c", code]


@pytest.mark.multiprocess
def test_a_probe_killed_with_sigkill_resumes_to_the_same_outputs(tmp_path, classifier):
    ref, run = str(tmp_path / "ref"), str(tmp_path / "run")
    subprocess.run(_probe_script(classifier, ref), check=True, timeout=600)

    proc = subprocess.Popen(_probe_script(classifier, run))
    partial = os.path.join(run, "partial.npz")
    deadline = time.monotonic() + 300
    while not os.path.exists(partial) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert os.path.exists(partial) and not os.path.exists(os.path.join(run, "metrics.json")), \
        "the probe finished before it could be killed: the test did not test anything"
    import numpy as np

    with np.load(partial) as z:
        assert 0 < len(z["vid_index"]) < N_TEST  # killed mid-run, with finished chunks saved

    subprocess.run(_probe_script(classifier, run), check=True, timeout=600)
    for name in ("metrics.json", "predictions.csv"):
        with open(os.path.join(ref, name)) as a, open(os.path.join(run, name)) as b:
            assert a.read() == b.read(), name


def _bebias(*args, limit_bytes=None):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run([sys.executable, "-m", "bebias", *args], capture_output=True, text=True, timeout=600,
                          preexec_fn=limit if limit_bytes else None)


def test_an_output_location_that_is_a_file_is_one_line(tmp_path, classifier):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    r = _bebias("probe", classifier, "--data", DATA, "--max-videos", "3", "--out", str(blocker / "probe"))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "cannot write" in r.stderr and str(blocker) in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_full_disk_keeps_the_earlier_outputs(tmp_path, classifier):
    out = tmp_path / "probe"
    r = _bebias("probe", classifier, "--data", DATA, "--max-videos", "6", "--swap-backgrounds", "--out", str(out))
    assert r.returncode == 0, r.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert {"metrics.json", "predictions.csv", "partial.npz"} <= set(before)

    # another probe into the same folder, with writes capped at 2 KB: its partial.npz cannot be written
    r = _bebias("probe", classifier, "--data", DATA, "--max-videos", "6", "--swap-backgrounds", "--seed", "1",
                "--out", str(out), limit_bytes=2048)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "cannot write" in r.stderr and "partial.npz" in r.stderr
    assert len(message_lines(r.stderr)) == 1  # progress lines may come before the one error line
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after == before  # every earlier output byte for byte, and no temporary file left behind


def test_a_checkpoint_that_cannot_be_written_keeps_the_last_one(tmp_path):
    """torch.save's failed write (a RuntimeError from its zip writer) becomes one line too."""
    from tests.tiny import TINY

    out = tmp_path / "ft"
    args = ["finetune", "--data", TINY, "--frames", "4", "--size", "32", "--batch-size", "4", "--workers", "0",
            "--out", str(out)]
    r = _bebias(*args, "--max-steps", "1")
    assert r.returncode == 0, r.stderr
    model = (out / "model.pth").read_bytes()
    r = _bebias(*args, "--max-steps", "2", "--seed", "3", "--overwrite", limit_bytes=64 * 1024)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "cannot write" in r.stderr
    assert (out / "model.pth").read_bytes() == model
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]
