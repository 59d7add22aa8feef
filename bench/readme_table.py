"""Write the README's benchmark table from the JSON the benchmarks wrote (``make bench``).

Reads ``reports/bench/{loader,train,probe,multi_probe,cam}.json`` and replaces the lines between
``<!-- bench-table:start -->`` and ``<!-- bench-table:end -->`` in README.md, so the table
cannot drift from the measurements. A missing JSON file leaves its rows out and says so.
Usage: ``python bench/readme_table.py [--readme README.md] [--bench reports/bench]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

START, END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"


def _load(folder: str, name: str) -> dict | None:
    path = os.path.join(folder, f"{name}.json")
    if not os.path.exists(path):
        print(f"{path}: missing, its rows are left out", file=sys.stderr)
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _ok(value: float, target: float, higher: bool = True) -> str:
    return "✓" if (value >= target if higher else value <= target) else "**not met**"


def _load_note(d: dict) -> str:
    lo = d.get("loadavg_start") or [None]
    return f"load {lo[0]:.1f} at start" if lo[0] is not None else ""


def rows(folder: str) -> list[str]:
    """The table's rows (Markdown), one or more per benchmark found."""
    out = []
    if (d := _load(folder, "loader")) is not None:
        line = (f"| data loader vs raw OpenCV decoding, {d['clips_per_pass']} {d['clip']}-frame centre clips of "
                f"{d['video']} files, 1 worker (`bench/bench_loader.py`) | **{d['ratio']:.2f}×** "
                f"({d['loader_1_worker_clips_per_s']:.0f} vs {d['raw_opencv_clips_per_s']:.0f} clips/s) · "
                f"in-process {d['ratio_0_workers']:.2f}× | ≥ {d['target']}× {_ok(d['ratio'], d['target'])} |")
        out.append(line)
        if "target_with_transform" in d:
            cpu = (f" · normalised on this CPU in the main process: {d['ratio_eval_normalised_on_cpu']:.2f}×"
                   if "ratio_eval_normalised_on_cpu" in d else "")
            out.append(f"| the same with the evaluation transform (uint8 frames through the loader, laid out and "
                       f"normalised where the model runs) | **{d['ratio_with_transform']:.2f}×** "
                       f"({d['loader_with_eval_transform_clips_per_s']:.0f} clips/s){cpu} · float32 in the worker, "
                       f"as before: {d['ratio_float_in_worker']:.2f}× | ≥ {d['target_with_transform']}× "
                       f"{_ok(d['ratio_with_transform'], d['target_with_transform'])} |")
            if "resized" in d:
                r = d["resized"]
                out.append(f"| the same on {r['video']} files, resized and centre-cropped to {d['clip']}-frame "
                           f"clips of the model's size | **{r['ratio_with_transform']:.2f}×** "
                           f"({r['loader_with_eval_transform_clips_per_s']:.0f} vs {r['raw_opencv_clips_per_s']:.0f} "
                           f"clips/s; no transform {r['ratio']:.2f}×) · float32 in the worker: "
                           f"{r['ratio_float_in_worker']:.2f}× | ≥ {d['target_with_transform']}× "
                           f"{_ok(r['ratio_with_transform'], d['target_with_transform'])} |")
    if (d := _load(folder, "train")) is not None:
        out.append(f"| training efficiency: MoCo+BE pre-training clips/s ÷ bare model step (`bench/bench_train.py`, "
                   f"{d['config']['precision']}) | **{d['efficiency']:.2f}** ({d['e2e_clips_per_s']:.1f} vs "
                   f"{d['bare_model_clips_per_s']:.1f} clips/s) · one worker process "
                   f"{d['efficiency_with_1_workers']:.2f} | ≥ {d['efficiency_target']} "
                   f"{_ok(d['efficiency'], d['efficiency_target'])} |")
        out.append(f"| BE mixing overhead | **{100 * d['be_mixing_share']:.2f} %** ({d['be_mixing_ms']:.2f} ms per "
                   f"{d['e2e_s_per_step']:.1f} s step) | ≤ {100 * d['be_overhead_target']:.0f} % "
                   f"{_ok(d['be_mixing_share'], d['be_overhead_target'], higher=False)} |")
        out.append(f"| bf16 vs fp32, bare MoCo+BE step ({d.get('cpu', d['machine'])}) | **{d['bf16_speedup']:.3g}×** "
                   f"({d['bare_model_bf16_clips_per_s']} vs {d['bare_model_clips_per_s']} clips/s); fp32 is the "
                   "default ([docs/precision.md](docs/precision.md)) | — |")
        out.append(f"| peak memory of a default pre-training run | {d['peak_rss_mib'] / 1024:.1f} GiB RSS | — |")
    if (d := _load(folder, "probe")) is not None:
        for r in d["results"]:
            out.append(f"| probe, every variant ({r['variants']} clips per video) ÷ pure inference on the same clips, "
                       f"{r['arch']} at {r['frames']}×{r['size']}² (`bench/bench_probe.py`) | **{r['ratio']:.2f}** "
                       f"({r['probe_clips_per_s']} vs {r['inference_clips_per_s']} clips/s) | ≥ {r['target']} "
                       f"{_ok(r['ratio'], r['target'])} |")
    if (d := _load(folder, "multi_probe")) is not None:
        for r in d["results"]:
            single = f" · one model alone {r['ratio_single']:.2f}" if "ratio_single" in r else ""
            out.append(f"| {r['models']} checkpoints probed in one pass (`bebias probe A B ...`, every variant) ÷ the "
                       f"sum of their pure-inference times on the same clips, {r['arch']} at "
                       f"{r['frames']}×{r['size']}² (`bench/bench_multi_probe.py`; {_load_note(d)}) | "
                       f"**{r['ratio']:.2f}** ({r['pass_s']} vs {r['inference_s']} s){single} | ≥ {r['target']} "
                       f"{_ok(r['ratio'], r['target'])} |")
    if (d := _load(folder, "cam")) is not None:
        for r in d["results"]:
            out.append(f"| Grad-CAM, bebias vs pytorch-grad-cam {d.get('grad_cam', '')}, {r['arch']} at "
                       f"{r['frames']}×{r['size']}² (`bench/bench_cam.py`; {_load_note(d)}) | **{r['speedup']:.1f}× "
                       f"faster** ({r['bebias_s_per_clip']:.2f} vs {r['pytorch_grad_cam_s_per_clip']:.2f} s per clip); "
                       f"maps' correlation {r['corr_layer_resolution_min']:.3f} at the layer's resolution, "
                       f"{r['corr_clip_resolution_min']:.3f} each upsampled its own way | ≥ 1× "
                       f"{_ok(r['speedup'], 1.0)} |")
    return out


def table(folder: str) -> str:
    return "\n".join(["| benchmark | measured | target |", "|---|---|---|", *rows(folder)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readme", default="README.md")
    ap.add_argument("--bench", default="reports/bench")
    a = ap.parse_args()
    with open(a.readme, encoding="utf-8") as f:
        text = f.read()
    if START not in text or END not in text:
        sys.exit(f"{a.readme}: no {START} ... {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = head + START + "\n" + table(a.bench) + "\n" + END + tail
    tmp = a.readme + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(new)
    os.replace(tmp, a.readme)
    print(f"{a.readme}: benchmark table written from {a.bench}")


if __name__ == "__main__":
    main()
