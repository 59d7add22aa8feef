"""torch's thread count: torch's own by default (deterministic digits), the cores actually
free with ``BEBIAS_THREADS=auto`` (issue 20, item 5)."""

import os
import subprocess
import sys

import pytest
import torch

from bebias.data.loader import free_cores
from bebias.errors import BebiasError
from bebias.models.device import default_threads, set_threads


@pytest.fixture
def machine(monkeypatch):
    """A 2-core machine whose load average the test sets."""
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.delenv("BEBIAS_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)

    def load(x):
        monkeypatch.setattr("os.getloadavg", lambda: (x, 0.0, 0.0))
    return load


@pytest.mark.parametrize("load, free", [(0.0, 2), (0.4, 2), (0.6, 1), (1.0, 1), (7.0, 1)])
def test_free_cores_subtracts_the_load(machine, monkeypatch, load, free):
    machine(load)
    assert free_cores() == free
    assert default_threads() == torch.get_num_threads()  # the load never changes the default
    monkeypatch.setenv("BEBIAS_THREADS", "auto")
    assert default_threads() == free


def test_bebias_threads_and_omp_num_threads_win(machine, monkeypatch):
    machine(2.0)
    monkeypatch.setenv("BEBIAS_THREADS", "2")
    assert default_threads() == 2
    monkeypatch.setenv("BEBIAS_THREADS", "zero")
    with pytest.raises(BebiasError, match="BEBIAS_THREADS"):
        default_threads()
    monkeypatch.delenv("BEBIAS_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert default_threads() == torch.get_num_threads()


def test_set_threads_sets_torch(machine, monkeypatch):
    before = torch.get_num_threads()
    try:
        machine(1.0)
        os.environ["BEBIAS_THREADS"] = "auto"
        assert set_threads() == 1 and torch.get_num_threads() == 1
    finally:
        os.environ.pop("BEBIAS_THREADS", None)
        torch.set_num_threads(before)


def test_cli_refuses_a_bad_bebias_threads_in_one_line(tmp_path):
    env = {"BEBIAS_THREADS": "-3", "PATH": "/usr/bin:/bin", "PYTHONPATH": sys.path[0]}
    import os

    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    r = subprocess.run([sys.executable, "-m", "bebias", "data", "info", "--data", "synthetic:classes=2,videos_per_class=1"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 2 and "BEBIAS_THREADS" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
