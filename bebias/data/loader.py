"""The trainers' and inference's data loader: how many worker processes a run starts, and
a DataLoader whose batch order is a function of (seed, epoch) only.

:func:`free_cores` is here too: the cores no other process is busy on, which bound the
default worker count (and torch's threads under ``BEBIAS_THREADS=auto``,
:func:`bebias.models.device.default_threads`).
"""

from __future__ import annotations

import contextlib
import os

import cv2
import torch
from torch.utils.data import DataLoader

from bebias.data.batches import BatchRequests, ClipBatches, SlabPool, unbatched
from bebias.data.dataset import ClipDataset
from bebias.limits import MAX_WORKERS, check_int
from bebias.seeds import torch_seed


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
        order = torch.randperm(n, generator=torch.Generator().manual_seed(torch_seed(seed, "order", epoch))).tolist()
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
