"""The step loop shared by pre-training and fine-tuning.

It owns what every run must get right: an epoch order that is a function of
(seed, epoch) only, resuming mid-epoch without repeating a batch, skipping unreadable
videos (listed at the end), skipping updates whose gradients are non-finite, stopping on
a non-finite loss with the last good state kept, saving on Ctrl-C, and the metrics log.
The method-specific work is one function: ``step_fn(batch, step) -> loss``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from bebias.data.dataset import ClipDataset, FailureLog
from bebias.errors import BebiasError
from bebias.training import runtime


@dataclass
class LoopState:
    step: int = 0
    epoch: int = 0
    skipped_steps: int = 0  # updates skipped for non-finite gradients
    last_loss: float = float("nan")
    failures: FailureLog = field(default_factory=FailureLog)


class NonFiniteGradient(Exception):
    """Raised by a step function that skipped its update (the loop counts it)."""


def run(ds: ClipDataset, *, batch_size: int, total_steps: int, seed: int, workers: int, state: LoopState,
        step_fn: Callable[[dict, int], float], save: Callable[[], None], log: runtime.MetricsLog | None,
        progress: Callable[[dict], None] | None = None, rank: int = 0, world: int = 1,
        log_every: int = 10) -> LoopState:
    """Run ``step_fn`` over shuffled batches until ``state.step == total_steps``.

    ``save()`` is called at every epoch end, on Ctrl-C, on a non-finite loss and at the end;
    it must persist ``state`` with the model (and only rank 0 should write).
    """
    steps_per_epoch = max(len(ds) // (batch_size * world), 1)
    t0, clips = time.perf_counter(), 0
    try:
        while state.step < total_steps:
            ds.set_epoch(state.epoch)
            done = state.step - state.epoch * steps_per_epoch  # batches of this epoch finished before a resume
            loader = runtime.make_loader(ds, batch_size, shuffle=True, seed=seed, epoch=state.epoch, workers=workers,
                                         drop_last=True, start_batch=done, rank=rank, world=world)
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
                    loss = step_fn(batch, state.step)
                except NonFiniteGradient:
                    state.skipped_steps += 1
                    loss = float("nan")
                else:
                    if not torch.isfinite(torch.tensor(loss)):
                        save()
                        raise BebiasError(f"the loss became {loss} at step {state.step}; stopped, the last good "
                                          "state is saved (resume with --resume, perhaps with a lower --lr)")
                    state.last_loss = loss
                state.step += 1
                clips += len(batch["label"]) * world
                row = {"step": state.step, "epoch": state.epoch, "loss": round(state.last_loss, 5),
                       "clips_per_s": round(clips / (time.perf_counter() - t0), 2)}
                if log is not None and (state.step % log_every == 0 or state.step == total_steps):
                    log.write(**row)
                if progress and rank == 0:
                    progress({**row, "total": total_steps})
            else:
                state.epoch += 1
                save()
    except KeyboardInterrupt:
        save()
        raise BebiasError(f"interrupted at step {state.step}; continue with --resume") from None
    save()
    return state


def grads_or_skip(params: list[torch.nn.Parameter]) -> None:
    """Raise :class:`NonFiniteGradient` if any gradient is NaN/inf (seen with bf16 on CPU:
    a rare non-finite weight gradient in a conv backward). Under DDP every rank agrees."""
    ok = torch.tensor(float(runtime.grads_finite(params)))
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    if ok.item() < 1:
        raise NonFiniteGradient


def resume_checkpoint(last_path: str, config: dict) -> dict | None:
    """The resumable state in ``last_path`` (None if there is none yet); a run with a
    different config in the same directory is an error rather than a silent mix."""
    import os

    from bebias.checkpoint import load_checkpoint

    if not os.path.exists(last_path):
        return None
    st = load_checkpoint(last_path)
    # the number of data workers changes speed, never results (randomness is per item)
    same = {k: v for k, v in (st.get("config") or {}).items() if k != "workers"}
    if same != {k: v for k, v in config.items() if k != "workers"}:
        raise BebiasError("--resume: the run in this directory has a different config; use another --out",
                          last_path)
    return st


def snapshot(state: LoopState, opt: torch.optim.Optimizer) -> dict:
    """The loop's part of a resumable checkpoint: optimizer, counters, RNG states."""
    return {"optimizer": opt.state_dict(), "step": state.step, "epoch": state.epoch,
            "skipped_steps": state.skipped_steps, "loss": state.last_loss, "rng": runtime.rng_state()}


def restore(st: dict, opt: torch.optim.Optimizer) -> LoopState:
    """Inverse of :func:`snapshot` (the model weights are the caller's)."""
    opt.load_state_dict(st["optimizer"])
    runtime.set_rng_state(st["rng"])
    return LoopState(st["step"], st["epoch"], st["skipped_steps"], st.get("loss", float("nan")))
