"""Independent trainings side by side, one core each (``bebias demo``).

Every training here runs on ONE torch thread, whether the jobs run in parallel or one
after another, so the weights do not depend on how many ran at once (the thread count
changes how reductions split, hence the last digits; ``bebias.models.device.default_threads``).
On 2 cores, two 1-thread trainings side by side do about twice the work of one; a
2-thread training gains less than that on idle cores and is ~2.5x slower than one thread
whenever another process takes a core (bench/bench_threads.py). Jobs in parallel run in
``spawn``ed worker processes (a fork of a process with live torch/OpenCV thread pools can
deadlock); each renders its own copy of the benchmark. Progress and log lines come back
through a queue and are passed on in the parent.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue as queue_mod
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from bebias.models.device import one_thread
from bebias.progress import ProgressFn
from bebias.training.finetune import FinetuneConfig, finetune
from bebias.training.pretrain import PretrainConfig, pretrain

Log = Callable[[str], None]


@dataclass(frozen=True)
class Stage:
    """One training: its progress label and config (a run folder ``config.out`` whose
    ``model.pth``, once there, means the stage is done)."""

    label: str
    config: FinetuneConfig | PretrainConfig


@dataclass(frozen=True)
class Job:
    """Stages that depend on each other, run in order (pre-training, then its linear probe).
    ``cost``: relative work, to start the biggest jobs first."""

    name: str
    stages: tuple[Stage, ...]
    cost: float = 1.0
    meta: dict[str, Any] = field(default_factory=dict)


_BENCHMARKS: dict[str, Any] = {}  # one rendered benchmark per data spec, per process


def _benchmark(spec: str):
    from bebias.data.open import is_benchmark, parse_synth_spec
    from bebias.data.synth import SynthBenchmark

    if not is_benchmark(spec):
        return None
    if spec not in _BENCHMARKS:
        _BENCHMARKS[spec] = SynthBenchmark(parse_synth_spec(spec))
    return _BENCHMARKS[spec]


def share_benchmark(spec: str, benchmark: Any) -> None:
    """Let in-process jobs of ``spec`` use ``benchmark`` (an already rendered benchmark)."""
    _BENCHMARKS[spec] = benchmark


def run_job(job: Job, progress: ProgressFn | None = None, log: Log | None = None) -> list[str]:
    """Run ``job``'s stages in order, on one thread; a stage whose ``model.pth`` exists is
    reused (and said so). Returns, per stage, ``"trained"`` or ``"reused"``."""
    from bebias.data.open import open_data

    done = []
    with one_thread():
        for st in job.stages:
            cfg = st.config
            if os.path.exists(os.path.join(cfg.out, "model.pth")):
                _check_same_recipe(cfg)
                if log:
                    log(f"reusing {cfg.out}/model.pth")
                done.append("reused")
                continue
            cb = None if progress is None else (  # the training's events under the stage's label
                lambda p, label=st.label: progress(replace(p, stage=label)))
            data = open_data(cfg.data, split=cfg.split, benchmark=_benchmark(cfg.data))
            train = pretrain if isinstance(cfg, PretrainConfig) else finetune
            train(cfg, resume=True, progress=cb, data=data)
            done.append("trained")
    return done


def _check_same_recipe(cfg: FinetuneConfig | PretrainConfig) -> None:
    """A finished run is reused only if it was made by ``cfg`` (``workers`` aside): a folder
    left by another recipe (an older bebias demo's budget) is an error naming it."""
    from bebias.errors import BebiasError
    from bebias.parse import read_json

    path = os.path.join(cfg.out, "config.json")
    if not os.path.exists(path):
        return
    had, want = dict(read_json(path)), json.loads(json.dumps(cfg.to_dict()))  # tuples as JSON has them
    differ = sorted(k for k in set(had) | set(want) if k != "workers" and had.get(k) != want.get(k))
    if differ:
        raise BebiasError(f"holds a finished run of another recipe ({', '.join(differ[:4])} differ): delete the "
                          "folder or choose another --out", cfg.out)


_QUEUE: Any = None


def _worker_init(q: Any) -> None:
    global _QUEUE
    _QUEUE = q
    torch.set_num_threads(1)


def _worker_run(job: Job) -> list[str]:
    q = _QUEUE
    return run_job(job, progress=lambda p: q.put(("progress", p)), log=lambda line: q.put(("log", line)))


def run_jobs(jobs: Sequence[Job], n_procs: int, *, progress: ProgressFn | None = None,
             log: Log | None = None) -> dict[str, list[str]]:
    """Run independent ``jobs``, ``n_procs`` at a time (1: in this process, in order);
    the costliest start first. Returns each job's :func:`run_job` result by name. The first
    error stops what has not started and is raised here once running jobs end (each
    training saved its state and resumes on the next call)."""
    order = sorted(jobs, key=lambda j: -j.cost)
    finished = [j for j in order if all(os.path.exists(os.path.join(s.config.out, "model.pth")) for s in j.stages)]
    results = {j.name: run_job(j, progress, log) for j in finished}  # reused here: no process to start
    order = [j for j in order if j not in finished]
    if n_procs <= 1 or len(order) <= 1:
        return results | {j.name: run_job(j, progress, log) for j in order}
    n_procs = min(n_procs, len(order))
    if log:
        log(f"training {len(order)} jobs, {n_procs} at a time, one thread each")
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()

    def drain(block: bool) -> None:
        while True:
            try:
                msg = q.get(timeout=0.2) if block else q.get_nowait()
            except queue_mod.Empty:
                return
            block = False
            if msg[0] == "progress" and progress:
                progress(msg[1])
            elif msg[0] == "log" and log:
                log(msg[1])

    with ProcessPoolExecutor(n_procs, mp_context=ctx, initializer=_worker_init,
                             initargs=(q,)) as pool:
        futures = {pool.submit(_worker_run, j): j.name for j in order}
        pending = set(futures)
        while pending:
            drain(block=True)
            finished, pending = wait(pending, timeout=0, return_when=FIRST_EXCEPTION)
            for f in finished:
                if f.exception() is not None:
                    for p in pending:
                        p.cancel()
                    wait(pending)
                    drain(block=False)
                    raise f.exception()  # type: ignore[misc]
                results[futures[f]] = f.result()
        drain(block=False)
    return results
