"""Real inputs for ``bebias report`` at toy size (seconds): the real tools on a 3-class benchmark.

- two encoders pre-trained for 4 steps, MoCo and MoCo+BE, each read out by a linear classifier
  (2 steps), probed (every variant, short bootstrap) and evaluated (iid + conflict);
- a real ``bebias compare`` grid (random-init and moco, seeds 0 and 1);
- hand-written: a calibration.json, a ``bebias cam`` folder (cam.json + PNG strips) and a probe
  metrics.json with a ``cam`` block (the shapes the cam command writes).

The numbers mean nothing; the plumbing is what is tested.
"""

from __future__ import annotations

import json
import os
import shutil

import cv2
import numpy as np

DATA = "synthetic:classes=3,videos_per_class=4,test_videos_per_class=3,frames=12,size=32"


def _suite(root: str) -> tuple:
    from bebias.probing.suite import ALL_VARIANTS, load_suite

    p = os.path.join(root, "small.toml")
    with open(p, "w") as f:
        f.write('name = "small"\nvariants = [' + ", ".join(f'"{v}"' for v in ALL_VARIANTS[1:]) + "]\n"
                "n_boot = 50\nchunk = 8\n")
    return load_suite(p)


def make_results(root: str) -> dict[str, str]:
    """Build every input under ``root``; returns their paths by name."""
    from bebias.atomic import write_json
    from bebias.probing.run import ProbeConfig, run_probe
    from bebias.training.compare import compare
    from bebias.training.evaluate import evaluate_checkpoint
    from bebias.training.finetune import FinetuneConfig, finetune
    from bebias.training.pretrain import PretrainConfig, pretrain

    suite, suite_path = _suite(root)
    paths: dict[str, str] = {}
    for method in ("moco", "be"):
        enc = pretrain(PretrainConfig(data=DATA, frames=4, size=32, batch_size=4, max_steps=4, queue_size=8,
                                      method=method, intra_negative=False, precision="fp32", workers=0,
                                      out=os.path.join(root, f"pt-{method}"))).model_path
        clf = finetune(FinetuneConfig(data=DATA, frames=4, size=32, batch_size=4, max_steps=8, workers=0, linear=True,
                                      init=enc, split="train-unbiased",
                                      out=os.path.join(root, f"linear-{method}"))).model_path
        probe_dir = os.path.join(root, f"probe-{method}")
        run_probe(ProbeConfig(checkpoint=clf, data=DATA, suite=suite, suite_path=suite_path, out=probe_dir, seed=0))
        ev = os.path.join(root, f"linear-{method}", "eval.json")
        write_json(ev, evaluate_checkpoint(clf, data=DATA, workers=0))
        paths[f"probe-{method}"], paths[f"eval-{method}"], paths[f"ckpt-{method}"] = probe_dir, ev, clf
    cmp_dir = os.path.join(root, "compare")
    compare(cmp_dir, variants=("random-init", "moco"), seeds=(0, 1),
            base=PretrainConfig(data=DATA, frames=4, size=32, batch_size=4, max_steps=2, queue_size=8,
                                precision="fp32", workers=0))
    paths["compare"] = os.path.join(cmp_dir, "compare.json")
    paths["calibration"] = write_calibration(os.path.join(root, "calibration"))
    paths["cam"] = write_cam(os.path.join(root, "cam"), [paths["ckpt-moco"], paths["ckpt-be"]])
    paths["probe-cam"] = write_probe_with_cam(os.path.join(root, "probe-cam"), os.path.join(paths["probe-moco"],
                                                                                           "metrics.json"))
    return paths


def write_calibration(folder: str) -> str:
    """A calibration.json in the shape `bebias data calibrate` writes (values chosen by hand)."""
    os.makedirs(folder, exist_ok=True)
    rows = [{"run": "train-unbiased", "train_split": "train-unbiased", "rho": None, "seed": 0, "iid_top1": 0.94,
             "conflict_top1": 0.955, "conflict_background_follow": 0.0078, "conflict_per_class": {"0": 1.0},
             "train_minutes": 3.78},
            {"run": "train rho=0.9", "train_split": "train", "rho": 0.9, "seed": 0, "iid_top1": 0.97,
             "conflict_top1": 0.52, "conflict_background_follow": None, "conflict_per_class": {"0": 0.5},
             "train_minutes": 3.5}]
    p = os.path.join(folder, "calibration.json")
    with open(p, "w") as f:
        json.dump({"config": {"arch": "small3d", "frames": 8, "stride": 2, "size": 32, "epochs": 14,
                              "precision": "fp32"}, "rows": rows, "torch": "x", "machine": "toy"}, f)
    return p


def strip_png(seed: int, frames: int = 4, size: int = 32) -> bytes:
    """A (2 x frames) grid of size-px tiles: frames on top, 'overlays' below."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (2 * size, frames * size, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def write_cam(folder: str, checkpoints: list[str]) -> str:
    """A `bebias cam` output folder (the format agreed with the cam command)."""
    os.makedirs(os.path.join(folder, "strips"), exist_ok=True)
    videos = []
    for i in range(2):
        rel = f"strips/video{i}.png"
        with open(os.path.join(folder, rel), "wb") as f:
            f.write(strip_png(i))
        videos.append({"path": f"videos/{i}.mkv", "label": f"clip {i}", "strip": rel, "gif": f"gifs/video{i}.gif",
                       "actor_share": {"moco": 0.25 + 0.1 * i, "moco+be": None if i else 0.6}})
    cam = {"kind": "bebias-cam",
           "checkpoints": [{"path": checkpoints[0], "label": "moco", "arch": "small3d", "method": "moco"},
                           {"path": checkpoints[1], "label": "moco+be", "arch": "small3d", "method": "be"}],
           "layer": "layer4", "videos": videos,
           "actor_share": {"moco": {"value": 0.30, "ci_low": 0.25, "ci_high": 0.35, "n": 2},
                           "moco+be": {"value": 0.60, "ci_low": None, "ci_high": None, "n": 1}}}
    p = os.path.join(folder, "cam.json")
    with open(p, "w") as f:
        json.dump(cam, f)
    return p


def write_probe_with_cam(folder: str, metrics_path: str) -> str:
    """A probe metrics.json as `bebias probe --cam` writes it: a copy of a real one for another
    checkpoint (new hash) with a cam block, and an undefined (null) background reliance."""
    os.makedirs(folder, exist_ok=True)
    with open(metrics_path) as f:
        m = json.load(f)
    m["provenance"]["checkpoint"] = "elsewhere/model.pth"  # not on this machine: provenance only
    m["provenance"]["checkpoint_sha256"] = "f" * 64
    m["provenance"]["method"] = "supervised"
    m["cam"] = {"actor_share": {"value": 0.42, "ci_low": 0.30, "ci_high": 0.55, "n": 9}, "layer": "layer4"}
    m["background_reliance"] = None
    m["headline"]["background_reliance"] = None
    p = os.path.join(folder, "metrics.json")
    with open(p, "w") as f:
        json.dump(m, f)
    shutil.copy(os.path.join(os.path.dirname(metrics_path), "predictions.csv"), folder)
    return p
