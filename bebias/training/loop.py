"""The step loop shared by pre-training and fine-tuning.

It owns what every run must get right: an epoch order that is a function of
(seed, epoch) only, resuming mid-epoch without repeating a batch, unreadable videos
(replaced in their batches by the dataset, listed in ``failures.json``), bad steps, the
metrics log and saving on Ctrl-C. The method-specific work is one function:
``step_fn(batch, step) -> loss``.

Bad steps
---------
A step is bad when its loss, its keys (MoCo) or any gradient is non-finite, or when one
gradient is orders of magnitude larger than the others (:data:`OUTLIER_RATIO`): the
signature of a faulty kernel (bf16 convolutions on some CPUs wrote 1e29-1e36 into one
weight gradient while every other one stayed below 2; ``docs/precision.md``), which a
finiteness check alone lets through. A step function calls :meth:`StepGuard.save` before
its forward pass and :func:`guarded_update` instead of ``opt.step()``: on a bad step every
side effect of the forward pass is rolled back (BatchNorm statistics, MoCo's key encoder,
queue and pointer) and nothing is applied. The loop then stops with that last good state
saved (``--resume`` continues from it), or, within ``max_skips``, skips the update with a
warning naming the gradient; skipped steps are listed in ``failures.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from bebias.atomic import write_json
from bebias.data.dataset import ClipDataset, FailureLog
from bebias.data.loader import make_loader
from bebias.errors import BebiasError
from bebias.limits import MAX_EPOCHS
from bebias.progress import Progress, ProgressFn
from bebias.training.rng import rng_state, set_rng_state

#: A gradient whose largest |value| exceeds this multiple of the median over gradients is a fault, not
#: learning: legitimate per-tensor magnitudes of a network differ by a few orders of
#: magnitude, the kernel fault seen (1e29 against about 2) by 28 or more.
OUTLIER_RATIO = 1e8


@dataclass
class LoopState:
    step: int = 0
    epoch: int = 0
    skipped_steps: int = 0  # bad steps skipped (only within --max-skips)
    last_loss: float = float("nan")
    failures: FailureLog = field(default_factory=FailureLog)
    skips: list[dict] = field(default_factory=list)  # {"step", "fault"} per skipped update
    #: wall seconds spent in the step loop, summed over every resume; None when the run
    #: resumed from a state that did not record it (the total is then unknown)
    train_seconds: float | None = 0.0


#: the files a run writes into its ``--out`` (pretrain, finetune)
RUN_FILES = ("model.pth", "last.pth", "config.json", "metrics.jsonl", "failures.json")


def check_out(out: str, resume: bool, overwrite: bool = False) -> None:
    """Refuse to start a new run over the files of another (``out`` holding any of
    :data:`RUN_FILES`) unless ``resume`` (continue it) or ``overwrite`` (replace it). With
    ``overwrite`` the old run's resumable state (last.pth) is removed at once, so that no
    later ``--resume`` can continue it into the new run; its model.pth stays until the new
    run's replaces it (atomically, at the end), so a new run that fails loses no model."""
    if resume and overwrite:
        raise BebiasError("--resume continues the run in --out, --overwrite replaces it: give one of them")
    if resume or not os.path.isdir(out):
        return
    found = [f for f in RUN_FILES if os.path.lexists(os.path.join(out, f))]
    if found and not overwrite:
        raise BebiasError(f"holds a run ({', '.join(found)}); continue it with --resume, replace it with "
                          "--overwrite, or choose another --out", out)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(out, "last.pth"))


def total_steps(max_steps: int | None, epochs: int, steps_per_epoch: int) -> int:
    """The run's length: ``max_steps``, else ``epochs`` epochs; refused (one line) beyond
    :data:`MAX_EPOCHS` epochs of ``steps_per_epoch`` steps."""
    if max_steps is None:
        return epochs * steps_per_epoch
    if max_steps > MAX_EPOCHS * steps_per_epoch:
        raise BebiasError(f"--max-steps {max_steps} is more than {MAX_EPOCHS} epochs of this split "
                          f"({steps_per_epoch} step(s) each)")
    return max_steps


def check_batch_fits(videos: int, batch_size: int, world: int, split: str, data: str) -> None:
    """One batch per process must fit in the split: the loader drops the last incomplete
    batch, so a split smaller than one batch would give epochs of no step at all."""
    if videos < batch_size * world:
        where = f" x {world} processes" if world > 1 else ""
        raise BebiasError(f"split {split!r} has {videos} videos, fewer than one batch (--batch-size "
                          f"{batch_size}{where})", data)


class MetricsLog:
    """Append-only JSONL metrics (one object per line) in the run directory.

    On resume, lines past the resumed step are dropped so the file matches the run.
    """

    def __init__(self, path: str, resume_step: int | None = None) -> None:
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        if resume_step is None:
            open(path, "w").close()
        elif os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                keep = [ln for ln in f if ln.strip() and json.loads(ln).get("step", 0) <= resume_step]
            with open(path, "w", encoding="utf-8") as f:
                f.writelines(keep)

    def write(self, **row: Any) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")


class BadStep(Exception):
    """Raised by :func:`guarded_update` after rolling a bad step back; the message names the fault."""


class StepGuard:
    """Undo for a training step's side effects outside the optimiser.

    A forward pass in train mode changes state before any check can run: BatchNorm
    running statistics, and in MoCo the key encoder (momentum update), the queue and its
    pointer. ``save()`` copies every buffer of ``module`` and the ``extra`` parameters
    (MoCo's key encoder) into preallocated storage; ``restore()`` copies them back. The
    cost is one copy of those tensors per step.
    """

    def __init__(self, module: torch.nn.Module, extra: Sequence[torch.Tensor] = ()) -> None:
        self.tensors = [*module.buffers(), *extra]
        self.saved = [torch.empty_like(t) for t in self.tensors]

    @torch.no_grad()
    def save(self) -> None:
        if self.tensors:
            torch._foreach_copy_(self.saved, self.tensors)

    @torch.no_grad()
    def restore(self) -> None:
        if self.tensors:
            torch._foreach_copy_(self.tensors, self.saved)


def find_fault(loss: torch.Tensor, named_params: Sequence[tuple[str, torch.nn.Parameter]],
               keys: torch.Tensor | None = None) -> str | None:
    """What is wrong with a step, in words, or None. Under DDP every rank gets the same answer
    (the first rank's fault that any rank found).

    Checks: the keys (B, dim), if given, are finite; the loss is finite; every gradient is
    finite and none has a largest magnitude above :data:`OUTLIER_RATIO` times the median of
    the others' (zero gradients, e.g. of unused parts, left out of the median). One fused
    max-norm per gradient tensor (``torch._foreach_norm``: a sum of squares would overflow
    fp32 on exactly the garbage it must report).
    """
    fault = None
    if keys is not None and not bool(torch.isfinite(keys).all()):
        fault = "the key features are not finite"
    elif not bool(torch.isfinite(loss.detach()).all()):
        fault = f"the loss is {loss.item()}"
    else:
        named = [(n, p.grad) for n, p in named_params if p.grad is not None]
        if named:
            norms = torch.stack(torch._foreach_norm([g for _, g in named], float("inf"))).double()  # (P,) max |g|
            bad = ~torch.isfinite(norms)
            nonzero = norms[torch.isfinite(norms) & (norms > 0)]
            if len(nonzero):
                med = nonzero.median()
                bad |= norms > OUTLIER_RATIO * med
            if bool(bad.any()):
                i = int(bad.nonzero()[0])
                ref = f" (median over gradients {float(med):.3g})" if len(nonzero) else ""
                fault = f"gradient of {named[i][0]} has |value| up to {float(norms[i]):.3g}{ref}"
    if dist.is_available() and dist.is_initialized():
        flags = torch.zeros(dist.get_world_size(), device=loss.device)  # nccl reduces on the GPU
        flags[dist.get_rank()] = fault is not None
        dist.all_reduce(flags)
        if fault is None and bool(flags.any()):
            fault = f"rank {int(flags.nonzero()[0])} had a bad step"
    return fault


def guarded_update(opt: torch.optim.Optimizer, guard: StepGuard, loss: torch.Tensor,
                   named_params: Sequence[tuple[str, torch.nn.Parameter]], keys: torch.Tensor | None = None) -> float:
    """``opt.step()`` if the step is sound (:func:`find_fault`); otherwise roll its side effects
    back (``guard``), drop its gradients and raise :class:`BadStep`. Returns the loss."""
    fault = find_fault(loss, named_params, keys)
    if fault is not None:
        guard.restore()
        opt.zero_grad(set_to_none=True)
        raise BadStep(fault)
    opt.step()
    return loss.item()


def run(ds: ClipDataset, *, batch_size: int, total_steps: int, seed: int, workers: int, state: LoopState,
        step_fn: Callable[[dict, int], float], save: Callable[[], None], log: MetricsLog | None,
        progress: ProgressFn | None = None, rank: int = 0, world: int = 1,
        log_every: int = 10, max_skips: int = 0, out: str | None = None, stage: str = "training") -> LoopState:
    """Run ``step_fn`` over shuffled batches until ``state.step == total_steps``.

    ``save()`` is called at every epoch end, on Ctrl-C, on a bad step and at the end; it
    must persist ``state`` with the model (and only rank 0 should write). A bad step
    (:class:`BadStep`) stops the run with the last good state saved, unless fewer than
    ``max_skips`` updates were skipped so far: then it is skipped, with a warning. With
    ``out``, rank 0 keeps ``out/failures.json`` (unreadable videos, skipped updates) current
    at every save. ``progress`` (rank 0) gets a ``stage`` event per step: steps of
    ``total_steps``, with the epoch, loss and clips per second.
    """
    def save_all() -> None:
        save()
        if out is not None and rank == 0:
            write_json(os.path.join(out, "failures.json"), failures_record(state))

    steps_per_epoch = max(len(ds) // (batch_size * world), 1)
    t0, clips = time.perf_counter(), 0
    t_last = t0
    try:
        while state.step < total_steps:
            ds.set_epoch(state.epoch)
            done = state.step - state.epoch * steps_per_epoch  # batches of this epoch finished before a resume
            loader = make_loader(ds, batch_size, shuffle=True, seed=seed, epoch=state.epoch, workers=workers,
                                 drop_last=True, start_batch=done, rank=rank, world=world)
            step_before = state.step
            for batch in loader:
                if state.step >= total_steps:
                    break
                state.failures.add(batch["failed"])  # unreadable videos, each with the one that took its row
                if world > 1 and len(batch.get("label", ())) != batch_size:  # a training ClipDataset substitutes
                    raise RuntimeError(f"rank {rank}: a batch of {len(batch.get('label', ()))} clips, not "
                                       f"{batch_size}: the ranks' collectives would go out of step (a dataset "
                                       "with substitute=False under DDP?)")
                if "clip" not in batch:  # every video unreadable, without substitution: single-process only
                    continue
                try:
                    state.last_loss = step_fn(batch, state.step)
                except BadStep as e:
                    if state.skipped_steps >= max_skips:
                        save_all()  # the step was rolled back: this is the state before it
                        raise BebiasError(f"bad step {state.step}: {e}; stopped, the last good state is saved "
                                          "(resume with --resume, perhaps with a lower --lr or --precision fp32)"
                                          ) from None
                    state.skipped_steps += 1
                    state.skips.append({"step": state.step, "fault": str(e)})
                    if rank == 0:
                        print(f"WARNING: update {state.step} skipped ({state.skipped_steps} of at most {max_skips}): "
                              f"{e}", file=sys.stderr, flush=True)
                state.step += 1
                clips += len(batch["label"]) * world
                now = time.perf_counter()
                if state.train_seconds is not None:
                    state.train_seconds += now - t_last
                t_last = now
                row = {"step": state.step, "epoch": state.epoch, "loss": round(state.last_loss, 5),
                       "clips_per_s": round(clips / (now - t0), 2)}
                if log is not None and (state.step % log_every == 0 or state.step == total_steps):
                    log.write(**row)
                if progress and rank == 0:
                    progress(Progress(stage, state.step, total_steps,
                                      {"epoch": state.epoch, "loss": row["loss"], "clips_per_s": row["clips_per_s"]}))
            else:
                if done == 0 and state.step == step_before:  # a whole epoch without a step: so would the next
                    save_all()  # failures.json lists the unreadable videos
                    raise BebiasError(f"epoch {state.epoch} ran no step ({len(ds)} clips, batches of "
                                      f"{batch_size} x {world}): no batch had a readable clip")
                state.epoch += 1
                save_all()
    except KeyboardInterrupt:
        save_all()
        raise BebiasError(f"interrupted at step {state.step}; continue with --resume") from None
    save_all()
    return state


def failures_record(state: LoopState) -> dict:
    """What ``failures.json`` holds: unreadable videos (path -> error, and how many were
    replaced in their batches) and skipped updates."""
    return {"unreadable": dict(state.failures.entries), "replaced": state.failures.replaced,
            "skipped_updates": list(state.skips)}


def resume_checkpoint(last_path: str, config: dict, defaults: dict | None = None) -> dict | None:
    """The resumable state in ``last_path`` (None if there is none yet); a run with a
    different config in the same directory is an error rather than a silent mix.

    ``defaults``: the config class's defaults. A key the saved config lacks (a setting added
    to bebias after the run started) matches when this run leaves it at its default, so a
    newer bebias resumes an older run that it would reproduce exactly.
    """
    from bebias.checkpoint import load_checkpoint

    if not os.path.exists(last_path):
        return None
    st = load_checkpoint(last_path)
    # the number of data workers changes speed, never results (randomness is per item); the
    # skip allowance changes nothing until a step goes bad (raising it is how to get past one)
    free = {"workers", "max_skips"}
    saved = st.get("config") or {}
    free |= {k for k in set(config) - set(saved) if defaults is not None and k in defaults
             and defaults[k] == config[k]}
    if ({k: v for k, v in saved.items() if k not in free}
            != {k: v for k, v in config.items() if k not in free}):
        raise BebiasError("--resume: the run in this directory has a different config; use another --out",
                          last_path)
    return st


def snapshot(state: LoopState, opt: torch.optim.Optimizer) -> dict:
    """The loop's part of a resumable checkpoint: optimizer, counters, RNG states."""
    return {"optimizer": opt.state_dict(), "step": state.step, "epoch": state.epoch,
            "skipped_steps": state.skipped_steps, "loss": state.last_loss, "rng": rng_state(),
            "failures": failures_record(state), "train_seconds": state.train_seconds}


def restore(st: dict, opt: torch.optim.Optimizer) -> LoopState:
    """Inverse of :func:`snapshot` (the model weights are the caller's)."""
    opt.load_state_dict(st["optimizer"])
    set_rng_state(st["rng"])
    rec = st.get("failures") or {}
    failures = FailureLog(dict(rec.get("unreadable", {})), int(rec.get("replaced", 0)))
    seconds = st.get("train_seconds", 0.0 if st["step"] == 0 else None)  # absent: saved by an older bebias
    return LoopState(st["step"], st["epoch"], st["skipped_steps"], st.get("loss", float("nan")), failures,
                     list(rec.get("skipped_updates", [])), seconds)
