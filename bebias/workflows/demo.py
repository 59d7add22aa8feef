"""``bebias demo``: the whole story on the embedded benchmark, in one command.

1. **Measure.** A supervised model from scratch on the biased ``train`` split (the
   background predicts the class 90 % of the time), and the **positive control**: the same
   network trained on ``train-unbiased`` (it never does) until it reads the motion. The probe
   must tell them apart. The positive control needs the calibration recipe (256 videos per
   class, 14 epochs: ~18 min on one core), more than the budget allows, so it is the shipped
   reference checkpoint (:mod:`bebias.workflows.reference`, hash-pinned) unless
   ``--from-scratch`` retrains it; the output says which models were trained now and which
   were loaded.
2. **Mitigate.** The biased model again, same budget, with a label-keeping debiasing
   augmentation (``--debias``, default BE used as an augmentation).
3. **Self-supervision.** MoCo and MoCo+BE pre-training with the same budget, each read out
   by a linear probe trained on ``train-unbiased``.
4. Every classifier evaluated (``iid``, ``conflict``), probed with the full suite (CAM on
   the actor included), the same clips explained side by side with Grad-CAM, and one
   report (tables, figures, CAM strips, ``report.html``).
5. **The gate** (:mod:`bebias.workflows.gate`): unless the positive control reached 85 %
   top-1 on ``conflict`` in this run, the demo prints "positive control failed" and draws
   no conclusion; at ``--fast`` size it is not checked. The conclusions it does draw are
   only those the run supports (CIs over test videos of one model each).

Independent trainings run side by side, one thread each (:mod:`bebias.workflows.parallel`).
Budgets are fixed here, before any run, and are the same for the models they compare (the
positive control aside, as said). Every stage is resumable: run the same command again and
finished stages are reused.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from bebias.atomic import output_dir, write_json
from bebias.checkpoint import file_sha256
from bebias.data.loader import free_cores
from bebias.data.open import parse_synth_spec
from bebias.data.synth import SynthBenchmark
from bebias.distract import DEBIAS_METHODS
from bebias.errors import BebiasError
from bebias.limits import MAX_WORKERS, check_int
from bebias.parse import read_json
from bebias.probing.run import ProbeConfig, run_probe
from bebias.probing.suite import load_suite
from bebias.progress import Progress, ProgressFn, scoped
from bebias.reporting import chance as CH
from bebias.reporting.build import build_report
from bebias.results import Estimate
from bebias.training.evaluate import evaluate_checkpoint
from bebias.training.finetune import FinetuneConfig
from bebias.training.pretrain import PretrainConfig
from bebias.workflows.cam import explain, open_cam_model, sample_clips
from bebias.workflows.gate import POSITIVE_CONTROL as CONTROL
from bebias.workflows.gate import conclusions, positive_control_gate
from bebias.workflows.parallel import Job, Stage, run_jobs, share_benchmark
from bebias.workflows.reference import SUPERVISED_UNBIASED as REF
from bebias.workflows.reference import install, recipe, weights_sha256


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
#: 2-core CPU. The positive control is not trained at this budget (96 per class x 8 epochs
#: reached 21-23 % on conflict: it memorises the backgrounds): it is the shipped reference
#: checkpoint, trained by the calibration recipe (:data:`bebias.workflows.reference.SUPERVISED_UNBIASED`),
#: and ``--from-scratch`` retrains it by that recipe
FULL = Budget(data="synthetic:videos_per_class=96", supervised_epochs=8, pretrain_epochs=4, linear_epochs=6,
              batch_size=32, probe_videos=128, n_boot=1000, cam_videos=8)
#: the same stages at toy size (CI runs it): numbers are noise, the machinery is real
FAST = Budget(data="synthetic:classes=3,videos_per_class=8,test_videos_per_class=3,frames=12,size=32",
              supervised_epochs=2, pretrain_epochs=1, linear_epochs=1, batch_size=8, probe_videos=6, n_boot=50,
              cam_videos=3, suite="quick")

#: the five classifiers, in report order: (name, what it is)
MODELS = (
    ("supervised-biased", "supervised from scratch on the biased train split"),
    ("supervised-unbiased", "positive control: supervised from scratch on train-unbiased to convergence "
                            "(the calibration recipe; the shipped reference unless --from-scratch)"),
    ("supervised-biased+{debias}", "supervised on the biased split with --debias {debias}"),
    ("moco", "MoCo pre-training, linear probe on train-unbiased"),
    ("moco+be", "MoCo+BE pre-training, linear probe on train-unbiased"),
)


#: where each model's weights came from, as the demo prints it
ORIGIN_TRAINED, ORIGIN_REUSED, ORIGIN_LOADED = "trained now", "reused (trained by an earlier run)", "loaded (reference)"


@dataclass
class DemoResult:
    out: str
    html: str
    rows: list[dict[str, Any]]
    seconds: float
    #: whether earlier runs had finished some stages (then ``seconds`` is not the whole demo's)
    resumed: bool = False
    #: the positive-control gate (:class:`bebias.workflows.gate.Gate` as JSON)
    gate: dict[str, Any] | None = None
    #: what this run supports, one sentence each (the gate's message alone unless it passed)
    conclusions: list[str] | None = None
    #: trainings run at a time (one thread each)
    jobs: int = 1


def _training_jobs(b: Budget, names: list[str], debias: str, common: dict, run_dir: Callable[..., str], *,
                   fast: bool, from_scratch: bool, log: Callable[[str], None]
                   ) -> tuple[list[Job], dict[str, str], set[str]]:
    """The demo's trainings as independent jobs, the checkpoint each classifier ends in, and
    the names whose weights are the shipped reference (installed into ``run_dir`` here)."""
    sup = {names[0]: ("train", ""), names[1]: ("train-unbiased", ""), names[2]: ("train", debias)}
    jobs: list[Job] = []
    classifiers: dict[str, str] = {}
    loaded: set[str] = set()
    # cost: clip passes of work, to start the biggest jobs first (a MoCo step ~1.4 supervised, a linear one ~0.35)
    for name, (split, aug) in sup.items():
        cfg = FinetuneConfig(split=split, debias=aug, epochs=b.supervised_epochs, out=run_dir(name), **common)
        if name == CONTROL and not fast:
            cfg = recipe(REF, run_dir(name))
            use_ref = bool(REF.sha256) and not from_scratch and common["seed"] == REF.config.seed
            cfg = replace(cfg, seed=common["seed"])
            if _reference_here(cfg.out, drop=not use_ref):
                loaded.add(name)
            elif use_ref:
                install(REF, cfg.out)
                log(f"loaded the reference checkpoint of {name} (sha256 {REF.sha256[:12]}…): "
                    "bebias demo --from-scratch retrains it")
                loaded.add(name)
            elif not from_scratch:
                log(f"training {name} by the reference recipe ({cfg.epochs} epochs on {cfg.data}): "
                    + (f"the shipped reference is seed {REF.config.seed}" if REF.sha256 else
                       "no reference checkpoint is pinned in this build"))
        classifiers[name] = os.path.join(cfg.out, "model.pth")
        if name not in loaded:
            n = parse_synth_spec(cfg.data).videos_per_class * parse_synth_spec(cfg.data).classes
            jobs.append(Job(name, (Stage(name, cfg),), cost=cfg.epochs * n))
    for name, method in ((names[3], "moco"), (names[4], "be")):
        pcfg = PretrainConfig(method=method, epochs=b.pretrain_epochs, out=run_dir(name + "-pretrain"), **common)
        lcfg = FinetuneConfig(init=os.path.join(pcfg.out, "model.pth"), linear=True, split="train-unbiased",
                              epochs=b.linear_epochs, out=run_dir(name), **common)
        n = parse_synth_spec(b.data).videos_per_class * parse_synth_spec(b.data).classes
        jobs.append(Job(name, (Stage(name + " pre-training", pcfg), Stage(name + " linear probe", lcfg)),
                        cost=n * (1.4 * b.pretrain_epochs + 0.35 * b.linear_epochs)))
        classifiers[name] = os.path.join(lcfg.out, "model.pth")
    return jobs, classifiers, loaded


def _reference_here(run: str, *, drop: bool) -> bool:
    """Whether ``run`` holds the reference checkpoint installed by an earlier run; with
    ``drop`` (``--from-scratch``) such a copy is removed instead, so that it is retrained."""
    origin, model = os.path.join(run, "origin.json"), os.path.join(run, "model.pth")
    if not (os.path.exists(origin) and os.path.exists(model) and read_json(origin).get("origin") == "reference"):
        return False
    if drop:
        os.remove(model)
        os.remove(origin)
        return False
    return True


def _finite(x: float) -> float | None:
    """``x``, or None where it is NaN (unknown): strict JSON in demo.json."""
    return x if math.isfinite(x) else None


def run_demo(out: str = "reports/demo-run", *, fast: bool = False, debias: str = "be", seed: int = 0,
             workers: int | None = None, jobs_n: int | None = None, from_scratch: bool = False,
             progress: ProgressFn | None = None, log: Callable[[str], None] | None = None) -> DemoResult:
    """Run every stage (module docstring) into ``out``; finished stages are reused.

    ``jobs_n``: trainings at a time, one thread each (default: the cores free now, see
    :func:`bebias.data.loader.free_cores`); ``from_scratch``: train the positive control by the
    reference recipe instead of loading the shipped checkpoint (no effect with ``fast``,
    which trains every model at toy size)."""
    if debias not in DEBIAS_METHODS:
        raise BebiasError(f"--debias must be one of {', '.join(DEBIAS_METHODS)}, got {debias!r}")
    if jobs_n is not None:
        check_int("--jobs", jobs_n, 1, MAX_WORKERS)
    b = FAST if fast else FULL
    say = log or (lambda line: None)
    t0 = time.perf_counter()
    resumed = os.path.isdir(os.path.join(out, "runs"))
    output_dir(out)
    benchmark = SynthBenchmark(parse_synth_spec(b.data))
    names = [n.format(debias=debias) for n, _ in MODELS]
    about = {n.format(debias=debias): a.format(debias=debias) for n, a in MODELS}
    # augmentation in each training's own process unless --workers says otherwise: one core per training
    common = dict(data=b.data, batch_size=b.batch_size, workers=0 if workers is None else workers, seed=seed)

    def run_dir(*parts: str) -> str:
        return os.path.join(out, "runs", *parts)

    # -- 1-3: every training, independent ones side by side (one core each) -------------
    jobs, classifiers, loaded = _training_jobs(b, names, debias, common, run_dir, fast=fast,
                                               from_scratch=from_scratch, log=say)
    n_procs = max(1, min(jobs_n if jobs_n is not None else free_cores(), len(jobs)))
    if n_procs <= 1:
        share_benchmark(b.data, benchmark)  # in this process: the benchmark rendered once for all
    done = run_jobs(jobs, n_procs, progress=progress, log=say)
    origins = {n: ORIGIN_LOADED if n in loaded else (
        ORIGIN_TRAINED if "trained" in done.get(n, ()) else ORIGIN_REUSED) for n in names}
    reproduced = None
    if from_scratch and not fast and REF.sha256 and seed == REF.config.seed:
        reproduced = weights_sha256(classifiers[CONTROL]) == REF.weights_sha256
        say(f"{CONTROL} retrained: its weights {'equal' if reproduced else 'differ from'} the shipped reference's"
            + ("" if reproduced else " (another thread count, platform or torch changes the last digits)"))

    # -- 4: evaluate and probe every classifier ------------------------------------------
    suite, suite_path = load_suite(b.suite)
    suite = replace(suite, n_boot=b.n_boot)
    rows = []
    for i, name in enumerate(names):
        ckpt = classifiers[name]
        ev_path = os.path.join(out, "eval", f"{name}.json")
        # an evaluation of other weights (a folder an older demo left) is redone
        if not os.path.exists(ev_path) or read_json(ev_path).get("checkpoint_sha256") != file_sha256(ckpt):
            # one in-memory benchmark for every model: iid and conflict are rendered once
            write_json(ev_path, evaluate_checkpoint(ckpt, data=b.data, splits="iid,conflict", workers=workers,
                                                    benchmark=benchmark, progress=scoped(progress, name)))
        probe_out = os.path.join(out, "probe", name)
        res = run_probe(ProbeConfig(ckpt, data=b.data, suite=suite, suite_path=suite_path, max_videos=b.probe_videos,
                                    seed=seed, out=probe_out, workers=workers or 0, cam=True),
                        progress=scoped(progress, name))
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
                     "checkpoint": ckpt, "origin": origins[name]})

    # -- CAMs of the same clips, side by side ------------------------------------------------
    cam_out = os.path.join(out, "cam")
    if not os.path.exists(os.path.join(cam_out, "cam.json")):
        opened = [open_cam_model(classifiers[n], n) for n in names]
        models = [cm for cm, _ in opened]
        clips, _, where = sample_clips(models[0].spec, opened[0][1], data=b.data, n=b.cam_videos)
        explain(models, clips, cam_out, n_boot=b.n_boot, seed=seed, formats=("gif",),
                extra={"source": where, "seed": seed}, progress=progress)

    # -- the report ------------------------------------------------------------------------
    if progress:
        progress(Progress("report", 0, 1))
    rep = build_report([os.path.join(out, "eval"), os.path.join(out, "probe"), cam_out],
                       out=os.path.join(out, "report"), name="demo", labels={classifiers[n]: n for n in names})
    html = next((f for f in rep.files if f.endswith("report.html")), os.path.join(rep.out, "report.html"))
    if progress:
        progress(Progress("report", 1, 1))
    seconds = time.perf_counter() - t0
    control = next(r for r in rows if r["model"] == CONTROL)
    gate = positive_control_gate(control["conflict"], checked=not fast)
    said = conclusions(gate, rows)
    write_json(os.path.join(out, "demo.json"), {"budget": b.__dict__, "fast": fast, "debias": debias, "seed": seed,
                                                "gate": gate.to_json(), "conclusions": said,
                                                "from_scratch": from_scratch, "jobs": n_procs,
                                                "reference": REF.to_json() if CONTROL in loaded else None,
                                                "reference_reproduced": reproduced,
                                                "rows": rows, "report": html, "seconds": round(seconds, 1),
                                                "resumed": resumed})
    return DemoResult(out, html, rows, seconds, resumed, gate.to_json(), said, n_procs)
