"""What every training run shares: device and precision, torchrun process groups, seeding,
RNG state capture (for exact resume), a metrics log, and the data loader."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader

from bebias.data.batches import BatchRequests, ClipBatches, SlabPool, unbatched
from bebias.data.dataset import ClipDataset
from bebias.errors import BebiasError
from bebias.limits import MAX_WORKERS, OptionError, check_int


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


def check_bf16(backbone: torch.nn.Module, clip_shape: tuple[int, ...], device: torch.device,
               trials: int = 2, tolerance: float = 1e3) -> None:
    """Refuse bf16 autocast where it computes wrong gradients for this backbone (docs/precision.md).

    On CPUs with bf16 convolution kernels (oneDNN, AVX512-BF16/AMX), PyTorch's bf16 Conv3d
    weight gradient has come out as garbage (1e29-1e36) when a layer is used twice in one
    graph on tiny inputs, which is what a MoCo+BE step does. A copy of ``backbone`` is run
    on two random clips of ``clip_shape`` (B,3,T,H,W) in one graph, in bf16 and in fp32,
    ``trials`` times; any gradient that is non-finite or off by more than ``tolerance``
    (relative L2 error) is a user-facing error. Honest bf16 rounding gives up to about 2
    on an early layer behind BatchNorm over a batch of 2 (measured on small3d), the fault
    1e20 and more: the check targets the fault, not bf16's ordinary imprecision. CUDA is
    not checked. Costs a few forward/backward passes; the model and global RNG are untouched.
    """
    if device.type != "cpu":
        return
    import copy
    import sys

    net = copy.deepcopy(backbone).to(device).train()
    conv = next((m for m in net.modules() if isinstance(m, torch.nn.Conv3d)), None)
    if conv is not None:
        x = torch.zeros(1, conv.in_channels, *conv.kernel_size, dtype=torch.bfloat16)
        backend = torch._C._select_conv_backend(x, conv.weight.bfloat16(), None, list(conv.stride),
                                                list(conv.padding), list(conv.dilation), False, [0, 0, 0],
                                                conv.groups, None)
        if "Slow" in str(backend):
            print("note: this CPU has no bf16 convolution kernels (PyTorch falls back to its reference "
                  "slow_conv3d): bf16 is much slower than fp32 here (docs/precision.md)", file=sys.stderr)
    g = torch.Generator().manual_seed(0)
    named = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    for _ in range(trials):
        clips = [torch.randn(clip_shape, generator=g).to(device) for _ in range(2)]
        proj = None  # a random projection of the features: a loss whose gradient no BatchNorm cancels
        grads = {}
        for prec in ("bf16", "fp32"):
            net.zero_grad(set_to_none=True)
            with autocast(device, prec):
                feats = [net(c).float() for c in clips]  # (B, dim) each
                if proj is None:
                    proj = torch.randn(feats[0].shape, generator=g).to(device)
                loss = sum((f * proj).sum() for f in feats)
            loss.backward()
            grads[prec] = [p.grad.detach().clone() if p.grad is not None else None for _, p in named]
        for (name, _), gb, gf in zip(named, grads["bf16"], grads["fp32"]):
            if gb is None or gf is None or not float(gf.norm()) > 0:
                continue
            err = float((gb.float() - gf).norm() / gf.norm())
            if not err <= tolerance:  # NaN fails too
                raise BebiasError(f"--precision bf16: on this CPU bf16 autocast computes a wrong gradient for "
                                  f"{name} (relative error {err:.3g} against fp32; a known class of CPU bf16 "
                                  "convolution faults, docs/precision.md); use --precision fp32")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states as plain data (``weights_only``-loadable)."""
    ver, key, gauss = random.getstate()
    npst = np.random.get_state(legacy=False)
    st: dict[str, Any] = {
        "python": {"version": ver, "key": torch.tensor(key, dtype=torch.int64), "gauss": gauss},
        "numpy": {"key": torch.from_numpy(npst["state"]["key"].astype(np.int64)), "pos": int(npst["state"]["pos"]),
                  "has_gauss": int(npst["has_gauss"]), "gauss": float(npst["gauss"])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    py = st["python"]
    random.setstate((py["version"], tuple(int(k) for k in py["key"].tolist()), py["gauss"]))
    n = st["numpy"]
    np.random.set_state({"bit_generator": "MT19937", "state": {"key": n["key"].numpy().astype(np.uint32),
                                                                "pos": n["pos"]},
                         "has_gauss": n["has_gauss"], "gauss": n["gauss"]})
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


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


def free_cores() -> int:
    """Cores this process may run on that other processes are not busy on: the affinity set
    minus the 1-minute load average (rounded), at least 1. The load average lags by about a
    minute and counts the whole machine (in a container, the host's), so this errs towards
    fewer threads: one thread too few costs at most 1/cores of the speed, one too many on a
    busy core ~2.5x (bench/bench_threads.py: the threads wait for each other at barriers)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        busy = os.getloadavg()[0]
    except (OSError, AttributeError):  # no load average on this platform: assume idle
        busy = 0.0
    return max(1, min(cores, int(cores - busy + 0.5)))


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


def resolve_workers(workers: int | None, device: torch.device, world: int = 1) -> int:
    """``--workers``, or where None the default for this machine.

    On CPU: only the cores torch's intra-op threads leave free (usually 0). A worker process
    cannot add compute there; it takes its time from the model's threads, which then wait
    for each other at every parallel region (measured on 2 cores, bench/bench_train.py:
    the default pre-training ran ~10% faster with its augmentation in the main process
    than with one worker). On CUDA the main process mostly waits for the GPU: up to 4
    workers per process, leaving a core for it.
    """
    if workers is not None:
        return check_int("--workers", workers, 0, MAX_WORKERS)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cores = max(cores // max(world, 1), 1)
    if device.type == "cuda":
        return max(1, min(4, cores - 1))
    # only cores no other process is busy on: a worker on a busy core slows the model's threads
    return max(0, min(4, min(cores, free_cores()) - torch.get_num_threads()))


class _Loader(DataLoader):
    """The trainers' DataLoader over :class:`ClipBatches`. With worker processes:

    - batches come back through a :class:`SlabPool` made here, just before the workers
      fork, and recycled (see :mod:`bebias.data.batches`: PyTorch's fresh shared memory per
      batch cost about a tenth of decoding small clips);
    - the workers run OpenCV single-threaded, as PyTorch makes its own threads in workers:
      OpenCV's pool would otherwise spread each worker's augmentation over every core and
      preempt the model's intra-op threads (about 4% of end-to-end training speed on 2
      cores; bench/bench_train.py). The setting is made in the parent just while the
      workers fork, and inherited: calling ``cv2.setNumThreads`` inside a forked child
      whose parent had an active OpenCV pool deadlocks (found by tests/test_dataset.py).
    """

    def check_worker_number_rationality(self) -> None:
        """PyTorch warns when the workers outnumber the cores; bebias bounds ``--workers``
        itself (:data:`~bebias.limits.MAX_WORKERS`), and more workers than cores is a
        legitimate choice for decoding that waits on the disk: no warning in our output."""

    def __iter__(self):
        if self.num_workers == 0:
            return super().__iter__()
        batches: ClipBatches = self.dataset
        batches.pool = None
        if self.multiprocessing_context is not None and self.multiprocessing_context.get_start_method() == "fork":
            # every request a worker holds (prefetch_factor each), the batch the caller
            # holds and the one arriving: beyond that, batches go PyTorch's way
            with contextlib.suppress(OSError):  # no memory for even the mappings: PyTorch's way
                batches.pool = SlabPool((self.prefetch_factor or 2) * self.num_workers + 2)
        saved = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            return super().__iter__()  # the workers start (fork) here
        finally:
            cv2.setNumThreads(saved)


def make_loader(ds: ClipDataset, batch_size: int, *, shuffle: bool, seed: int, epoch: int, workers: int,
                drop_last: bool, start_batch: int = 0, rank: int = 0, world: int = 1) -> DataLoader:
    """A DataLoader of :class:`~bebias.data.batches.Batch` es whose order is a function of
    (seed, epoch) only, starting at batch ``start_batch`` of that order (a resumed run
    neither repeats nor re-decodes batches).

    Under DDP (``world > 1``) every rank draws the same global permutation and takes every
    ``world``-th item, so ranks see disjoint, equally sized shards.
    """
    check_int("--workers", workers, 0, MAX_WORKERS)  # every caller's last line of defence against a fork bomb
    n = len(ds)
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch)).tolist()
    else:
        order = list(range(n))
    if drop_last:
        order = order[: n // (batch_size * world) * batch_size * world]
    order = order[rank::world][start_batch * batch_size:]
    chunks = [order[k:k + batch_size] for k in range(0, len(order), batch_size)]
    if drop_last:
        chunks = [c for c in chunks if len(c) == batch_size]
    source = ClipBatches(ds)
    return _Loader(source, batch_size=None, sampler=BatchRequests(chunks, source), num_workers=workers,
                   collate_fn=unbatched,
                   multiprocessing_context="fork" if workers > 0 and os.name == "posix" else None)
