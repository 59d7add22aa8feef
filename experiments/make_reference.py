"""Make the demo's reference checkpoint (the positive control) by its recipe, and print its pin.

Trains :data:`bebias.workflows.reference.SUPERVISED_UNBIASED`'s config (the calibration
recipe on ``train-unbiased``; resumable: run it again after an interruption), evaluates the
model on the demo's ``iid`` and ``conflict`` splits (the same videos as the default
benchmark's), copies ``model.pth`` to ``bebias/workflows/references/`` and prints the
``sha256``, ``weights_sha256`` and ``measured`` values that the Reference must pin, with
the run's wall and CPU seconds.

Usage (one thread, as pinned): ``BEBIAS_THREADS=1 python experiments/make_reference.py``
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bebias.models.device import set_threads  # noqa: E402
from bebias.checkpoint import file_sha256  # noqa: E402
from bebias.training.evaluate import evaluate_checkpoint  # noqa: E402
from bebias.training.finetune import finetune  # noqa: E402
from bebias.workflows.demo import FULL  # noqa: E402
from bebias.workflows.reference import SUPERVISED_UNBIASED as REF  # noqa: E402
from bebias.workflows.reference import shipped_path, weights_sha256  # noqa: E402


def main() -> None:
    threads = set_threads()
    t0, c0 = time.perf_counter(), time.process_time()
    res = finetune(REF.config, resume=True)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    ev = evaluate_checkpoint(res.model_path, data=FULL.data, splits="iid,conflict", workers=0)
    dst = shipped_path(REF)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copyfile(res.model_path, dst)
    measured = {"iid_top1": ev["splits"]["iid"]["top1"], "conflict_top1": ev["splits"]["conflict"]["top1"],
                "conflict_background_follow": ev["splits"]["conflict"].get("background_follow")}
    print(json.dumps({"file": dst, "bytes": os.path.getsize(dst), "sha256": file_sha256(dst),
                      "weights_sha256": weights_sha256(dst), "measured": measured, "threads": threads,
                      "train_seconds": res.train_seconds, "this_call_wall_s": round(wall, 1),
                      "this_call_cpu_s": round(cpu, 1), "loadavg": os.getloadavg()}, indent=1))


if __name__ == "__main__":
    main()
