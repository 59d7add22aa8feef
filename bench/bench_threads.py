"""1 vs 2 torch threads, with and without a competing process (issue 20, item 5).

On a 2-core machine, 2-thread training was ~2.5x slower than 1 thread whenever another
process took a core: torch's intra-op threads wait for each other at every parallel
region, so the thread that shares a core with the other process holds the whole step back.
bebias keeps torch's default count (the digits depend on it, so the default must not follow
the load) and documents ``BEBIAS_THREADS=N`` / ``BEBIAS_THREADS=auto`` (the cores actually
free: affinity cores minus the 1-minute load average, at least 1;
``bebias.models.device.default_threads``) for busy machines.

For each of threads in ``--threads`` (default 1, 2) and competitor off / on, this process
sets ``torch.set_num_threads``, builds the default model (``small3d`` classifier,
8 classes) and times full training steps (forward, cross-entropy, backward, AdamW) on a
random batch of ``--batch`` clips of 8 x 32 x 32 for ``--seconds`` after two warm-up steps.
The competitor is a second process spinning in a pure-Python loop (one core's worth of
work) for the duration. Reported: the median and mean seconds per step of each cell,
``slowdown`` = 2-thread / 1-thread step time per competitor setting, and the machine
(cores, load average before each cell, what ``default_threads`` would pick).
Timings mean something only when nothing else runs (``loadavg`` is recorded).

Usage: ``python bench/bench_threads.py [--seconds 20] [--out reports/bench/threads.json]``;
smoke test (about 10 s): ``python bench/bench_threads.py --smoke --out /tmp/threads.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, ROOT)


def child(threads: int, seconds: float, batch: int) -> dict:
    """Time training steps with ``threads`` intra-op threads (restored after)."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _time_steps(threads, seconds, batch)
    finally:
        torch.set_num_threads(saved)


def _time_steps(threads: int, seconds: float, batch: int) -> dict:
    import torch

    from bebias.models.backbones import build_backbone
    from bebias.models.classifier import VideoClassifier

    torch.manual_seed(0)
    backbone = build_backbone("small3d")
    model = VideoClassifier(backbone, 8)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, 8, 32, 32)
    y = torch.randint(8, (batch,))

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    times: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 3:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"threads": threads, "steps": len(times), "median_s": statistics.median(times),
            "mean_s": statistics.fmean(times)}


def _spinner() -> subprocess.Popen:
    """A process that keeps one core busy until killed."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def measure(threads: list[int], seconds: float, batch: int) -> dict:
    from bebias.data.loader import free_cores
    from bebias.models.device import default_threads

    rows = []
    for competitor in (False, True):
        for n in threads:
            spin = _spinner() if competitor else None
            try:
                if spin is not None:
                    time.sleep(0.3)  # the spinner is running before the child starts
                load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
                row = child(n, seconds, batch)
            finally:
                if spin is not None:
                    spin.kill()
                    spin.wait()
            rows.append({**row, "competitor": competitor, "loadavg_before": load})
    slowdown = {}
    for competitor in (False, True):
        cell = {r["threads"]: r["median_s"] for r in rows if r["competitor"] == competitor}
        if 1 in cell and 2 in cell:
            slowdown["with competitor" if competitor else "alone"] = round(cell[2] / cell[1], 3)
    import torch

    return {"rows": rows, "slowdown_2_vs_1_threads": slowdown, "seconds_per_cell": seconds, "batch": batch,
            "machine": {"cpus": os.cpu_count(), "affinity": len(os.sched_getaffinity(0))
                        if hasattr(os, "sched_getaffinity") else None, "platform": platform.machine(),
                        "free_cores_now": free_cores(), "default_threads_now": default_threads(),
                        "torch": torch.__version__}}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="timed seconds per cell")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--smoke", action="store_true", help="1 s per cell, batch 4: shows the script works (~10 s)")
    ap.add_argument("--out", default="reports/bench/threads.json")
    a = ap.parse_args(argv)
    seconds, batch = (1.0, 4) if a.smoke else (a.seconds, a.batch)
    res = measure([int(t) for t in a.threads.split(",")], seconds, batch)
    res["smoke"] = a.smoke
    from bebias.atomic import write_json

    write_json(a.out, res)
    print(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
