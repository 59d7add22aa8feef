"""What a run computes on: the device (``--device``), torchrun process groups, bf16
autocast (``--precision``) and torch's intra-op thread count.

Here, below training and probing, because both run models on the device the user names
(and :mod:`bebias.models.inference` autocasts); the bf16 gradient check of training is
:func:`bebias.training.precision.check_bf16`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
import os
import re

import torch

from bebias.data.loader import free_cores
from bebias.errors import BebiasError
from bebias.limits import OptionError


def check_device(device: object) -> str:
    """``device`` if it is ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (what bebias runs on), else
    :class:`~bebias.limits.OptionError`. Syntax only: :func:`pick_device` checks the GPU is there."""
    if not isinstance(device, str) or not re.fullmatch(r"auto|cpu|cuda(:[0-9]+)?", device):
        raise OptionError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
    return device


def pick_device(device: str = "auto") -> torch.device:
    """``auto`` -> CUDA if available, else CPU; an explicit ``cuda`` without a GPU is an error."""
    if check_device(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BebiasError(f"--device {device} asked for, but no CUDA GPU is available")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise BebiasError(f"--device {device} asked for, but this machine has {torch.cuda.device_count()} CUDA "
                          "GPU(s), numbered from 0")
    return dev


def distributed(device: torch.device) -> tuple[int, int, torch.device]:
    """(rank, world size, this process's device). Under torchrun (``WORLD_SIZE`` > 1) it
    initialises the process group -- nccl on CUDA, gloo on CPU or with
    ``BEBIAS_DIST_BACKEND=gloo`` -- and moves a CUDA device to ``LOCAL_RANK``'s GPU."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        nccl = device.type == "cuda" and os.environ.get("BEBIAS_DIST_BACKEND") != "gloo"
        dist.init_process_group("nccl" if nccl else "gloo")
    return dist.get_rank(), dist.get_world_size(), device


def end_distributed() -> None:
    """Tear the default process group down, if there is one, once the run's DDP objects are
    gone (call it after the function that made them has returned). A group left for the
    interpreter's exit can abort the process there (SIGABRT after a finished run; PyTorch's
    docs ask for ``destroy_process_group`` at the end)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()  # no rank leaves while another is still in a collective
        dist.destroy_process_group()


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CPU or CUDA (about 2x faster for 3D CNNs on CPU); fp32 = no autocast."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    raise BebiasError(f"--precision must be fp32 or bf16, got {precision!r}")


def default_threads() -> int:
    """torch's intra-op thread count for a run: ``BEBIAS_THREADS`` if set (a count, or
    ``auto`` for :func:`free_cores`), else torch's own (the cores, or ``OMP_NUM_THREADS``).

    Not picked from the load by default: the thread count changes how reductions split, so
    it changes the digits (small3d's gradients differ by ~3e-4 between 1 and 2 threads) and a
    load-dependent default would give one seed different weights on one machine. ``auto``
    trades that for speed on a busy machine (bench/bench_threads.py)."""
    env = os.environ.get("BEBIAS_THREADS", "").strip()
    if env == "auto":
        return free_cores()
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n < 1:
            raise BebiasError(f"BEBIAS_THREADS must be a whole number >= 1 or 'auto', got {env!r}")
        return n
    return torch.get_num_threads()


def set_threads() -> int:
    """Set torch's intra-op threads to :func:`default_threads`; returns the count."""
    n = default_threads()
    if n != torch.get_num_threads():
        torch.set_num_threads(n)
    return n


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """torch on one intra-op thread inside the block; the previous count afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
