"""Run the benchmark-v2 protocol (docs/benchmark-v2-protocol.md): its candidate grid, in
order, resumably, stopping at the first accepted candidate.

For each candidate, in this order (each seed of a kind may run in parallel, ``--jobs``):

1. ``random-init``: linear probes on a randomly initialised ``small3d`` (the floor);
2. ``moco``: MoCo pre-training (no debiasing of any kind), then the same probes;
3. ``sup-unbiased`` / ``sup-biased``: ``small3d`` trained from scratch, supervised, on
   ``train-unbiased`` / ``train``, scored on ``iid`` and ``conflict``;
4. ``oracle-actor-swap`` / ``oracle-one-frame``: MoCo with the two oracles' queries.

After each kind the criteria whose runs are all in are judged; a failed criterion rejects
the candidate at once (no run can rescue it), and the next candidate starts. Every result
is ``OUT/<candidate>/<kind>-seed<s>/result.json`` and names the protocol's commit; the
verdicts are ``OUT/<candidate>/acceptance.json`` and ``OUT/summary.md``. An accepted
candidate is then re-run with the camera off (``OUT/<candidate>-camera-off``), reported
and not judged. The protocol must be committed and unmodified, or the runner refuses.

Usage: ``python experiments/benchmark_v2.py [--out reports/benchmark-v2] [--jobs 2]``.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

from bebias.atomic import write_json, write_text  # noqa: E402
from bebias.parse import read_json  # noqa: E402

PROTOCOL = "docs/benchmark-v2-protocol.md"
#: the ordered grid (fewest changes first): SynthConfig overrides of version=v2. Every candidate
#: shares v2's 48-frame videos, measured camera and 256-per-class conflict split.
CANDIDATES: list[tuple[str, dict]] = [
    ("c0-base", {"reversal_twins": False, "plates_per_family": 0, "actor_pool": 0, "motion_variation": False,
                 "min_motion": 0.0}),
    ("c1-motion", {"reversal_twins": False, "plates_per_family": 0, "actor_pool": 0}),
    ("c2-motion-pools", {"reversal_twins": False}),
    ("c3-v2", {}),
]
SEEDS = (0, 1, 2)
KINDS = ("random-init", "moco", "sup-unbiased", "sup-biased", "oracle-actor-swap", "oracle-one-frame")
#: pre-training: the v1 grid's budget (6 epochs of 2048 videos at batch 32), in steps so twins do not change it
PRETRAIN = dict(method="moco", intra_negative=False, arch="small3d", frames=8, stride=2, size=32, batch_size=32,
                max_steps=384, precision="fp32", workers=0)
#: supervised: the calibration's recipe (bebias data calibrate: 14 epochs, batch 16, adamw lr 2e-3)
SUPERVISED = dict(arch="small3d", frames=8, stride=2, size=32, epochs=14, batch_size=16, precision="fp32", workers=0)
ALPHA, POWER, MIN_SD = 0.05, 0.80, 0.01  # MDE: two-sided 5 %, power 80 %, sd floored at 1 point


def data_string(overrides: dict, camera: bool = True, sizes: dict | None = None) -> str:
    opts = {"version": "v2", **overrides, **(sizes or {})}
    if not camera:
        opts["camera"] = False
    return "synthetic:" + ",".join(f"{k}={v}" for k, v in opts.items())


def protocol_commit(repo: str) -> str:
    """The commit that last changed the protocol; refuses an uncommitted or modified protocol."""
    def git(*args: str) -> str:
        r = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""

    sha = git("log", "-1", "--format=%H", "--", PROTOCOL)
    if not sha or git("status", "--porcelain", "--", PROTOCOL):
        raise SystemExit(f"{PROTOCOL} must be committed and unmodified before any v2 run")
    return sha


def code_commit(repo: str) -> str:
    """The commit of the code that runs the grid (HEAD; "+dirty" when tracked files differ):
    a run resumed later on other code would otherwise mix two versions silently."""
    def git(*args: str) -> str:
        r = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""

    sha = git("rev-parse", "HEAD") or "unknown"
    return sha + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def run_one(job: dict) -> dict:
    """One run of the grid (a process of its own: one thread); returns its result (cached)."""
    import torch

    torch.set_num_threads(1)
    from bebias.data.open import open_data, parse_synth_spec
    from bebias.data.synth import SynthBenchmark
    from bebias.training.compare import _features, probe_scores
    from bebias.training.evaluate import evaluate_checkpoint
    from bebias.training.finetune import FinetuneConfig, finetune
    from bebias.training.pretrain import PretrainConfig, pretrain

    path = os.path.join(job["dir"], "result.json")
    if os.path.exists(path):
        return read_json(path, "result")
    os.makedirs(job["dir"], exist_ok=True)
    kind, seed, data = job["kind"], job["seed"], job["data"]
    benchmark = SynthBenchmark(parse_synth_spec(data))
    res: dict = {"protocol_commit": job["commit"], "code_commit": job.get("code", "unknown"),
                 "candidate": job["candidate"], "kind": kind, "seed": seed, "data": data}
    if kind in ("random-init", "moco", "oracle-actor-swap", "oracle-one-frame"):
        base = PretrainConfig(**{**PRETRAIN, **job["pretrain"]}, data=data, seed=seed, out=job["dir"],
                              split=benchmark.cfg.pretrain_split,
                              oracle={"oracle-actor-swap": "actor-swap", "oracle-one-frame": "one-frame"}.get(kind,
                                                                                                          "none"))
        ckpt = None
        if kind != "random-init":
            ckpt = os.path.join(job["dir"], "model.pth")
            if not os.path.exists(ckpt):
                pretrain(base, resume=True, data=open_data(data, split=base.split, benchmark=benchmark))
        else:
            torch.manual_seed(seed)
        feats = _features(ckpt, base.arch, benchmark, base, os.path.join(job["dir"], "features.npz"))
        res |= {"config": base.to_dict(), **probe_scores(feats, benchmark.cfg.classes)}
    else:
        split = "train-unbiased" if kind == "sup-unbiased" else "train"
        cfg = FinetuneConfig(**{**SUPERVISED, **job["supervised"]}, data=data, split=split, seed=seed, out=job["dir"])
        model = os.path.join(job["dir"], "model.pth")
        if not os.path.exists(model):
            finetune(cfg, resume=True, data=open_data(data, split=split, benchmark=benchmark))
        ev = evaluate_checkpoint(model, data=data, splits="iid,conflict", benchmark=benchmark, workers=0)
        res |= {"config": cfg.to_dict(), "iid/top1": ev["splits"]["iid"]["top1"],
                "conflict/top1": ev["splits"]["conflict"]["top1"],
                "conflict/bg_follow": ev["splits"]["conflict"].get("background_follow")}
    write_json(path, res)
    return res


def mde(values: list[float]) -> float:
    """Minimum detectable effect of a difference to MoCo, from MoCo's per-seed values:
    (t_{1-alpha/2, n-1} + t_{power, n-1}) * sqrt(2) * max(sd, MIN_SD) / sqrt(n)."""
    from scipy.stats import t

    n = len(values)
    sd = max(float(np.std(values, ddof=1)), MIN_SD)
    return float((t.ppf(1 - ALPHA / 2, n - 1) + t.ppf(POWER, n - 1)) * math.sqrt(2) * sd / math.sqrt(n))


def criteria(runs: dict[str, list[dict]]) -> list[dict]:
    """The protocol's acceptance criteria on the runs in so far; ``passed`` is None where a
    criterion's runs are not all in. Fractions in [0, 1]."""
    def mean(kind: str, key: str) -> float | None:
        rs = runs.get(kind, [])
        return float(np.mean([r[key] for r in rs])) if rs else None

    su, sb_follow = mean("sup-unbiased", "conflict/top1"), mean("sup-biased", "conflict/bg_follow")
    ri_u, mo_u = mean("random-init", "train-unbiased->conflict/top1"), mean("moco", "train-unbiased->conflict/top1")
    ri_b, mo_b = mean("random-init", "train->conflict/bg_follow"), mean("moco", "train->conflict/bg_follow")
    out = [
        {"name": "supervised-unbiased conflict top-1 >= 0.90", "value": su, "passed": None if su is None else su >= 0.90},
        {"name": "supervised-biased conflict background-follow >= 0.50", "value": sb_follow,
         "passed": None if sb_follow is None else sb_follow >= 0.50},
        {"name": "MoCo unbiased-probe conflict top-1 >= random init + 0.10", "value": mo_u, "bound": ri_u,
         "passed": None if None in (mo_u, ri_u) else mo_u >= ri_u + 0.10},
        {"name": "MoCo unbiased-probe conflict top-1 <= supervised-unbiased - 0.30", "value": mo_u, "bound": su,
         "passed": None if None in (mo_u, su) else mo_u <= su - 0.30},
        {"name": "MoCo biased-probe conflict background-follow >= random init + 0.10", "value": mo_b, "bound": ri_b,
         "passed": None if None in (mo_b, ri_b) else mo_b >= ri_b + 0.10},
    ]
    moco = {r["seed"]: r["train-unbiased->conflict/top1"] for r in runs.get("moco", [])}
    for kind in ("oracle-actor-swap", "oracle-one-frame"):
        orc = {r["seed"]: r["train-unbiased->conflict/top1"] for r in runs.get(kind, [])}
        row = {"name": f"|{kind} - MoCo| (unbiased-probe conflict top-1, paired by seed) > MDE", "passed": None}
        if orc and len(moco) >= 2 and set(orc) == set(moco):
            diff = float(np.mean([orc[s] - moco[s] for s in moco]))
            m = mde(list(moco.values()))
            row |= {"value": diff, "bound": m, "passed": abs(diff) > m,
                    "direction": "as expected" if (diff > 0) == (kind == "oracle-actor-swap") else "unexpected"}
        out.append(row)
    return out


def run_candidate(out: str, name: str, overrides: dict, *, commit: str, seeds=SEEDS, jobs: int = 1,
                  camera: bool = True, sizes: dict | None = None, pretrain: dict | None = None,
                  supervised: dict | None = None, judge: bool = True,
                  log: Callable[[str], None] = print) -> dict:
    """Every kind of run of one candidate, in order; stops at the first failed criterion."""
    cdir = os.path.join(out, name)
    data = data_string(overrides, camera, sizes)
    runs: dict[str, list[dict]] = {}
    verdict = "accepted" if judge else "reported"
    code = code_commit(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    for kind in KINDS:
        jl = [{"dir": os.path.join(cdir, f"{kind}-seed{s}"), "kind": kind, "seed": s, "data": data, "commit": commit,
               "code": code, "candidate": name, "pretrain": pretrain or {}, "supervised": supervised or {}} for s in seeds]
        if jobs > 1:
            import multiprocessing

            with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
                runs[kind] = list(pool.map(run_one, jl))
        else:
            runs[kind] = [run_one(j) for j in jl]
        log(f"{name}: {kind} done ({len(seeds)} seeds)")
        crit = criteria(runs)
        if judge and any(c["passed"] is False for c in crit):
            verdict = "rejected: " + "; ".join(c["name"] for c in crit if c["passed"] is False)
            break
    res = {"protocol_commit": commit, "candidate": name, "data": data, "verdict": verdict,
           "criteria": criteria(runs), "kinds_run": list(runs)}
    write_json(os.path.join(cdir, "acceptance.json"), res)
    return res


def summary_md(results: list[dict]) -> str:
    lines = ["| candidate | verdict | criteria (value vs bound) |", "|---|---|---|"]
    for r in results:
        cells = []
        for c in r["criteria"]:
            v = c.get("value")
            state = {True: "pass", False: "FAIL", None: "not run"}[c["passed"]]
            shown = "-" if v is None else f"{100 * v:.1f}"
            bound = c.get("bound")
            cells.append(f"{c['name']}: {shown}" + ("" if bound is None else f" (bound {100 * bound:.1f})")
                         + f" {state}")
        lines.append(f"| {r['candidate']} | {r['verdict']} | " + "<br>".join(cells) + " |")
    commits = sorted({r["protocol_commit"] for r in results})
    lines += ["", f"Protocol: {PROTOCOL} at commit {', '.join(commits)}. Percent; chance = 100/K % top-1 "
                  "(12.5 % at K = 8); background-follow chance on conflict = 1/(K-1) of wrong answers."]
    return "\n".join(lines) + "\n"


def run_protocol(out: str, *, commit: str, candidates=None, seeds=SEEDS, jobs: int = 1, sizes: dict | None = None,
                 pretrain: dict | None = None, supervised: dict | None = None,
                 log: Callable[[str], None] = print) -> list[dict]:
    """The grid in order up to the first accepted candidate (then its camera-off report)."""
    chosen = [c for c in CANDIDATES if candidates is None or c[0] in candidates]
    results = []
    for name, overrides in chosen:
        r = run_candidate(out, name, overrides, commit=commit, seeds=seeds, jobs=jobs, sizes=sizes,
                          pretrain=pretrain, supervised=supervised, log=log)
        results.append(r)
        if r["verdict"] == "accepted":
            results.append(run_candidate(out, f"{name}-camera-off", overrides, commit=commit, seeds=seeds, jobs=jobs,
                                         camera=False, sizes=sizes, pretrain=pretrain, supervised=supervised,
                                         judge=False, log=log))
            break
    write_text(os.path.join(out, "summary.md"), summary_md(results))
    write_json(os.path.join(out, "summary.json"), results)
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="reports/benchmark-v2")
    ap.add_argument("--jobs", type=int, default=1, help="runs in parallel, one thread each (2 on 2 idle cores)")
    a = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    commit = protocol_commit(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    for r in run_protocol(a.out, commit=commit, jobs=a.jobs):
        print(f"{r['candidate']}: {r['verdict']}")


if __name__ == "__main__":
    main()
