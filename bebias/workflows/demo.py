"""``bebias demo``: the whole story on the embedded benchmark, in one command.

1. **Measure.** Two supervised models from scratch with the same budget: one on the biased
   ``train`` split (the background predicts the class 90 % of the time), one on
   ``train-unbiased`` (it never does). Both look fine in distribution; the probe must tell
   them apart: high background reliance for the first, low for the second.
2. **Mitigate.** The biased model again, same budget, with a label-keeping debiasing
   augmentation (``--debias``, default BE used as an augmentation): does it lower the
   reliance, and at what in-distribution cost?
3. **Self-supervision.** MoCo and MoCo+BE pre-training with the same budget, each read out
   by a linear probe trained on ``train-unbiased``.
4. Every classifier evaluated (``iid``, ``conflict``), probed with the full suite (CAM on
   the actor included), the same clips explained side by side with Grad-CAM, and one
   report (tables, figures, CAM strips, ``report.html``).

Budgets are fixed here, before any run, and are the same for the models they compare.
Every stage is resumable: run the same command again and finished stages are reused.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from bebias.atomic import output_dir, write_json
from bebias.data.open import open_data, parse_synth_spec
from bebias.data.synth import SynthBenchmark
from bebias.distract import DEBIAS_METHODS
from bebias.errors import BebiasError
from bebias.parse import read_json
from bebias.probing.run import ProbeConfig, run_probe
from bebias.probing.suite import load_suite
from bebias.reporting import chance as CH
from bebias.reporting.build import build_report
from bebias.reporting.cam import explain
from bebias.results import Estimate
from bebias.training.evaluate import evaluate_checkpoint
from bebias.training.finetune import FinetuneConfig, finetune
from bebias.training.pretrain import PretrainConfig, pretrain
from bebias.workflows.cam import open_cam_model, sample_clips


@dataclass(frozen=True)
class Budget:
    """What every stage gets. ``data``: the benchmark spec; epochs per kind of run (the
    same for the runs a comparison puts side by side); videos probed and explained."""

    data: str
    supervised_epochs: int
    pretrain_epochs: int
    linear_epochs: int
    batch_size: int
    probe_videos: int
    n_boot: int
    cam_videos: int
    suite: str = "full"


#: the full demo: the default benchmark with 96 videos per class in each training split
#: (768; the test splits keep 64 per class), sized to finish within 20 minutes on a
#: 2-core CPU
FULL = Budget(data="synthetic:videos_per_class=96", supervised_epochs=8, pretrain_epochs=4, linear_epochs=6,
              batch_size=32, probe_videos=128, n_boot=1000, cam_videos=8)
#: the same stages at toy size (CI runs it): numbers are noise, the machinery is real
FAST = Budget(data="synthetic:classes=3,videos_per_class=8,test_videos_per_class=3,frames=12,size=32",
              supervised_epochs=2, pretrain_epochs=1, linear_epochs=1, batch_size=8, probe_videos=6, n_boot=50,
              cam_videos=3, suite="quick")

#: the five classifiers, in report order: (name, what it is)
MODELS = (
    ("supervised-biased", "supervised from scratch on the biased train split"),
    ("supervised-unbiased", "supervised from scratch on train-unbiased"),
    ("supervised-biased+{debias}", "supervised on the biased split with --debias {debias}"),
    ("moco", "MoCo pre-training, linear probe on train-unbiased"),
    ("moco+be", "MoCo+BE pre-training, linear probe on train-unbiased"),
)

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class DemoResult:
    out: str
    html: str
    rows: list[dict[str, Any]]
    seconds: float
    #: whether earlier runs had finished some stages (then ``seconds`` is not the whole demo's)
    resumed: bool = False


def _stage_progress(progress: Progress | None, stage: str) -> Callable[[dict], None] | None:
    if progress is None:
        return None
    return lambda row: progress(stage, int(row["step"]), int(row["total"]))


def _finite(x: float) -> float | None:
    """``x``, or None where it is NaN (unknown): strict JSON in demo.json."""
    return x if math.isfinite(x) else None


def run_demo(out: str = "reports/demo-run", *, fast: bool = False, debias: str = "be", seed: int = 0,
             workers: int | None = None, progress: Progress | None = None,
             log: Callable[[str], None] | None = None) -> DemoResult:
    """Run every stage (module docstring) into ``out``; finished stages are reused."""
    if debias not in DEBIAS_METHODS:
        raise BebiasError(f"--debias must be one of {', '.join(DEBIAS_METHODS)}, got {debias!r}")
    b = FAST if fast else FULL
    say = log or (lambda line: None)
    t0 = time.perf_counter()
    resumed = os.path.isdir(os.path.join(out, "runs"))
    output_dir(out)
    bench = SynthBenchmark(parse_synth_spec(b.data))
    names = [n.format(debias=debias) for n, _ in MODELS]
    about = {n.format(debias=debias): a.format(debias=debias) for n, a in MODELS}
    common = dict(data=b.data, batch_size=b.batch_size, workers=workers, seed=seed)

    def run_dir(*parts: str) -> str:
        return os.path.join(out, "runs", *parts)

    def trained(path: str) -> bool:
        done = os.path.exists(os.path.join(path, "model.pth"))
        if done:
            say(f"reusing {path}/model.pth")
        return done

    # -- 1 + 2: supervised, same budget, three training sets / augmentations ------------
    sup = {names[0]: ("train", ""), names[1]: ("train-unbiased", ""), names[2]: ("train", debias)}
    classifiers: dict[str, str] = {}
    for name, (split, aug) in sup.items():
        cfg = FinetuneConfig(split=split, debias=aug, epochs=b.supervised_epochs, out=run_dir(name), **common)
        if not trained(cfg.out):
            finetune(cfg, resume=True, progress=_stage_progress(progress, name),
                     data=open_data(b.data, split=split, bench=bench))
        classifiers[name] = os.path.join(cfg.out, "model.pth")

    # -- 3: self-supervised, same budget, then linear probes on train-unbiased ---------
    for name, method in ((names[3], "moco"), (names[4], "be")):
        pcfg = PretrainConfig(method=method, epochs=b.pretrain_epochs, out=run_dir(name + "-pretrain"), **common)
        if not trained(pcfg.out):
            pretrain(pcfg, resume=True, progress=_stage_progress(progress, name + " pre-training"),
                     data=open_data(b.data, split="train", bench=bench))
        lcfg = FinetuneConfig(init=os.path.join(pcfg.out, "model.pth"), linear=True, split="train-unbiased",
                              epochs=b.linear_epochs, out=run_dir(name), **common)
        if not trained(lcfg.out):
            finetune(lcfg, resume=True, progress=_stage_progress(progress, name + " linear probe"),
                     data=open_data(b.data, split="train-unbiased", bench=bench))
        classifiers[name] = os.path.join(lcfg.out, "model.pth")

    # -- 4: evaluate and probe every classifier ------------------------------------------
    suite, suite_path = load_suite(b.suite)
    suite = replace(suite, n_boot=b.n_boot)
    rows = []
    for i, name in enumerate(names):
        ckpt = classifiers[name]
        ev_path = os.path.join(out, "eval", f"{name}.json")
        if not os.path.exists(ev_path):
            if progress:
                progress(f"evaluating {name}", 0, 1)
            # one in-memory benchmark for every model: iid and conflict are rendered once
            write_json(ev_path, evaluate_checkpoint(ckpt, data=b.data, splits="iid,conflict", workers=workers,
                                                    bench=bench))
            if progress:
                progress(f"evaluating {name}", 1, 1)
        probe_out = os.path.join(out, "probe", name)
        res = run_probe(ProbeConfig(ckpt, data=b.data, suite=suite, suite_path=suite_path, max_videos=b.probe_videos,
                                    seed=seed, out=probe_out, workers=workers or 0, cam=True),
                        progress=(lambda d, t, n=name: progress(f"probing {n}", d, t)) if progress else None)
        ev = read_json(ev_path)
        m = res.results  # metrics.json through its one schema
        got = m.scalars()
        rel, cam = got.get("reliance", Estimate(None)), got.get("cam", Estimate(None))
        rows.append({"model": name, "what": about[name], "iid": ev["splits"]["iid"]["top1"],
                     "conflict": ev["splits"]["conflict"]["top1"],
                     "conflict_bg_follow": ev["splits"]["conflict"].get("background_follow"),
                     "reliance": rel.value, "reliance_ci": [rel.ci_low, rel.ci_high],
                     "reliance_no_signal": (m.reliance_block() or {}).get("no_signal"),
                     # each component of the score as [value, its null on this probe run]
                     "reliance_parts": {k: [part.value, null.value] for k, (part, null) in m.reliance_parts().items()},
                     "cam_on_actor": cam.value, "cam_ci": [cam.ci_low, cam.ci_high],
                     # what random decisions / a uniform map score: 1/K from the probe's classes, the masks' area
                     "chance_top1": _finite(CH.reference("top1", CH.num_classes(m.classes))[0]),
                     "cam_chance": _finite(CH.reference("cam", None, m.cam)[0]),
                     "checkpoint": ckpt})

    # -- CAMs of the same clips, side by side ------------------------------------------------
    cam_out = os.path.join(out, "cam")
    if not os.path.exists(os.path.join(cam_out, "cam.json")):
        if progress:
            progress("Grad-CAM", 0, 1)
        opened = [open_cam_model(classifiers[n], n) for n in names]
        models = [cm for cm, _ in opened]
        clips, _, where = sample_clips(models[0].spec, opened[0][1], data=b.data, n=b.cam_videos)
        explain(models, clips, cam_out, n_boot=b.n_boot, seed=seed, formats=("gif",),
                extra={"source": where, "seed": seed})
        if progress:
            progress("Grad-CAM", 1, 1)

    # -- the report ------------------------------------------------------------------------
    if progress:
        progress("report", 0, 1)
    rep = build_report([os.path.join(out, "eval"), os.path.join(out, "probe"), cam_out],
                       out=os.path.join(out, "report"), name="demo", labels={classifiers[n]: n for n in names})
    html = next((f for f in rep.files if f.endswith("report.html")), os.path.join(rep.out, "report.html"))
    if progress:
        progress("report", 1, 1)
    seconds = time.perf_counter() - t0
    write_json(os.path.join(out, "demo.json"), {"budget": b.__dict__, "fast": fast, "debias": debias, "seed": seed,
                                                "rows": rows, "report": html, "seconds": round(seconds, 1),
                                                "resumed": resumed})
    return DemoResult(out, html, rows, seconds, resumed)
