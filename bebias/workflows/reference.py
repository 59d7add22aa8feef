"""Reference checkpoints shipped with bebias, for the runs the demo's budget cannot afford.

The demo's positive control (``supervised-unbiased``: ``small3d`` trained from scratch on
``train-unbiased`` until it reads the motion) needs the calibration recipe, about 18 minutes
on one idle core of this project's AMD EPYC, on top of everything else the demo trains. So
bebias ships that model (``bebias/workflows/references/``, package data), pinned by the
SHA-256 of its file, and made by one documented command (:data:`SUPERVISED_UNBIASED`'s
``command``); ``bebias demo --from-scratch`` retrains it in the demo's folder instead and says
whether the weights came out the same (:func:`weights_sha256`: they do at 1 thread on the
same platform and torch; another thread count changes the last digits of reductions).

The shipped file is an ordinary ``model.pth`` of :func:`bebias.training.finetune.finetune`:
it is read like any other checkpoint (``torch.load(weights_only=True)`` through
:func:`bebias.models.open.open_model`), after its SHA-256 is checked here.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

from bebias.atomic import atomic_path, write_json
from bebias.checkpoint import file_sha256, load_checkpoint
from bebias.errors import BebiasError
from bebias.training.finetune import FinetuneConfig


@dataclass(frozen=True)
class Reference:
    """One shipped checkpoint. ``config``: the recipe that made it (``out`` as it was then);
    ``sha256``: of the file; ``weights_sha256``: of its tensors (:func:`weights_sha256`);
    ``measured``: what it scored when it was made (fractions), for the record."""

    name: str
    file: str
    sha256: str
    weights_sha256: str
    config: FinetuneConfig
    command: str
    measured: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "file": self.file, "sha256": self.sha256, "weights_sha256": self.weights_sha256,
                "command": self.command, "measured": self.measured, "config": self.config.to_dict()}


#: the positive control: the calibration recipe (docs/benchmark.md) on the v1 benchmark's
#: default size, 256 videos per class in ``train-unbiased``, 14 epochs, batch 16, AdamW, fp32,
#: seed 0, one thread, augmentation in the main process
SUPERVISED_UNBIASED = Reference(
    name="supervised-unbiased",
    file="supervised-unbiased.pth",
    sha256="db20ed8273f759f1ead8193a8775e27fa9e5b07bb57b207728eba30c5646bcef",
    weights_sha256="471391ff6d5daf5d315358df4d044bae1f2c663f30ad10abba42b8afc7ace663",
    config=FinetuneConfig(data="synthetic", split="train-unbiased", seed=0, workers=0,
                          out="runs/reference/supervised-unbiased"),
    command="BEBIAS_THREADS=1 python experiments/make_reference.py",
    # made at code 81cc781 on the project's 2-core AMD EPYC, 1 thread, 511 s of training
    measured={"iid_top1": 0.955078125, "conflict_top1": 0.96875, "conflict_background_follow": 0.0},
)

REFERENCES = {r.name: r for r in (SUPERVISED_UNBIASED,)}


def shipped_path(ref: Reference) -> str:
    """Path of ``ref``'s file inside the installed package (not yet checked)."""
    return str(resources.files("bebias.workflows").joinpath("references", ref.file))


def weights_sha256(path: str) -> str:
    """SHA-256 over a bebias classifier checkpoint's tensors (``backbone`` then ``head``, keys
    sorted; each key, dtype, shape and bytes): equal for two runs that produced the same
    weights, whatever their config's ``out`` or the bebias version stamped in the file."""
    ck = load_checkpoint(path)
    h = hashlib.sha256()
    for part in ("backbone", "head"):
        state = ck.get(part)
        if not isinstance(state, dict):
            raise BebiasError(f"not a bebias classifier checkpoint (no {part!r} state)", path)
        for key in sorted(state):
            t = state[key].detach().cpu().contiguous()
            h.update(f"{part}.{key}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
            h.update(t.numpy().tobytes() if t.dtype.is_floating_point or t.dtype.is_signed else bytes(t.numpy()))
    return h.hexdigest()


def verified(ref: Reference) -> str:
    """``ref``'s shipped file, after checking its SHA-256 against the pinned one; a
    :class:`BebiasError` naming the file when it is missing or differs."""
    path = shipped_path(ref)
    if not ref.sha256:
        raise BebiasError(f"no reference checkpoint {ref.name!r} is pinned in this build of bebias; "
                          "run bebias demo --from-scratch to train it", path)
    if not os.path.isfile(path):
        raise BebiasError(f"the reference checkpoint {ref.name!r} is missing from the installed package; "
                          "reinstall bebias, or run bebias demo --from-scratch to train it", path)
    got = file_sha256(path)
    if got != ref.sha256:
        raise BebiasError(f"the reference checkpoint has SHA-256 {got[:12]}…, pinned {ref.sha256[:12]}…: "
                          "the file is damaged or replaced; reinstall bebias, or run bebias demo --from-scratch",
                          path)
    return path


def install(ref: Reference, run_dir: str) -> str:
    """Copy ``ref``'s verified file to ``run_dir/model.pth`` (atomically) and record where it
    came from in ``run_dir/origin.json``; returns the checkpoint's path."""
    src = verified(ref)
    os.makedirs(run_dir, exist_ok=True)
    dst = os.path.join(run_dir, "model.pth")
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    write_json(os.path.join(run_dir, "origin.json"), {"origin": "reference", **ref.to_json()})
    return dst


def recipe(ref: Reference, out: str) -> FinetuneConfig:
    """The config that made ``ref``, writing to ``out`` instead (``--from-scratch``)."""
    return replace(ref.config, out=out)
