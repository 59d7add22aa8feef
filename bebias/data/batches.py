"""Batches: collating clips, and the shared memory a batch crosses the DataLoader's
process boundary in.

A DataLoader worker hands each batch to the main process through shared memory, and
PyTorch gives every batch tensor a fresh segment: created, faulted in page by page while
it is written (1.5 ms for a 4.8 MB batch on the 2-core reference CPU, against 0.35 ms to
rewrite memory already mapped), its file descriptor passed over a socket and the segment
mapped again by the main process -- together about a tenth of the time it takes to decode
the clips (bench/bench_loader.py).

So the trainers' loader (:func:`bebias.data.loader.make_loader`) serves batches
through :class:`ClipBatches`, which writes each batch into a *slab* of a
:class:`SlabPool` instead: anonymous shared mappings made before the workers fork (so
every process has them, at the same pages) and recycled. A batch in a slab crosses as a
few integers (pool, slab, offset, shape). A slab goes back to the pool only once the last
tensor viewing it has been garbage-collected, so a batch the caller keeps stays valid:
later batches take another slab or, all busy, PyTorch's fresh segments.
"""

from __future__ import annotations

import collections
import itertools
import math
import mmap
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from bebias.data.dataset import ClipDataset
from bebias.errors import BebiasError

Alloc = Callable[[tuple[int, ...], torch.dtype], torch.Tensor]
"""``alloc(shape, dtype)``: an uninitialised tensor to write a batch (or its rows) into."""

SLAB_BYTES = 1 << 30  # virtual size: pages are backed only once written, so only a batch's bytes cost memory
_ALIGN = 64  # slab offsets, so any dtype can view them


def private_empty(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype)


def shared_empty(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """A fresh uninitialised tensor in (PyTorch's) shared memory, without the copy of ``share_memory_()``."""
    storage = torch.UntypedStorage._new_shared(math.prod(shape) * dtype.itemsize)
    return torch.empty(0, dtype=dtype).set_(storage, 0, shape)


def default_alloc() -> Alloc:
    """PyTorch's shared memory inside a DataLoader worker (as its ``default_collate``
    does: the batch crosses without another copy), ordinary memory elsewhere."""
    return shared_empty if get_worker_info() is not None else private_empty


_POOLS: weakref.WeakValueDictionary[int, SlabPool] = weakref.WeakValueDictionary()
_pool_ids = itertools.count()


class SlabPool:
    """``count`` recyclable slabs of shared memory, ``nbytes`` (virtual) bytes each.

    Made in the main process before the DataLoader's workers fork. Only the main process
    takes and releases slabs; a worker writes a batch into the slab its request names.
    """

    def __init__(self, count: int, nbytes: int = SLAB_BYTES) -> None:
        self.id = next(_pool_ids)
        self.nbytes = nbytes
        self._maps = [mmap.mmap(-1, nbytes) for _ in range(count)]  # MAP_SHARED | MAP_ANONYMOUS
        self._bytes = [torch.frombuffer(m, dtype=torch.uint8) for m in self._maps]  # (nbytes,) views
        self._free = collections.deque(range(count))  # deque: released from whichever thread frees a batch
        self.taken = 0  # slabs handed out so far (more than ``count`` means they were recycled)
        _POOLS[self.id] = self

    def take(self) -> int | None:
        """A free slab, or None if every slab still holds a batch in use."""
        try:
            slab = self._free.popleft()
        except IndexError:
            return None
        self.taken += 1
        return slab

    def release(self, slab: int) -> None:
        self._free.append(slab)

    def arena(self, slab: int) -> Alloc:
        """Allocation of tensors one after another inside ``slab``; past its end, fresh
        shared memory (such tensors then cross the PyTorch way)."""
        data, used = self._bytes[slab], 0

        def alloc(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
            nonlocal used
            start, n = -(-used // _ALIGN) * _ALIGN, math.prod(shape) * dtype.itemsize
            if start + n > self.nbytes:
                return shared_empty(shape, dtype)
            used = start + n
            return data[start:start + n].view(dtype).view(shape)

        return alloc

    def offset(self, slab: int, t: torch.Tensor) -> int | None:
        """Byte offset of contiguous ``t`` inside ``slab``, None if it lies elsewhere."""
        start = self._bytes[slab].data_ptr()
        p = t.data_ptr()
        if t.is_contiguous() and start <= p and p + t.nbytes <= start + self.nbytes:
            return p - start
        return None

    def open(self, slab: int, placed: dict[str, tuple[int, tuple[int, ...], torch.dtype]]) -> dict[str, torch.Tensor]:
        """The tensors ``{key: (offset, shape, dtype)}`` of a batch a worker wrote into
        ``slab``; the slab is released when the last of them (or of their views) is freed."""
        used = max(off + math.prod(shape) * dtype.itemsize for off, shape, dtype in placed.values())
        lease = np.frombuffer(self._maps[slab], np.uint8, count=used)
        whole = torch.from_numpy(lease)  # its storage holds ``lease``, as does every view of it
        weakref.finalize(lease, self.release, slab)
        return {k: whole[off:off + math.prod(shape) * dtype.itemsize].view(dtype).view(shape)
                for k, (off, shape, dtype) in placed.items()}


class Batch(dict):
    """A collated batch (a plain ``dict`` to its users) that crosses the DataLoader's
    process boundary cheaply.

    ``label`` and ``index`` are a few bytes: they travel by value instead of as shared
    memory tensors (each costs PyTorch a file descriptor passed over a fresh socket
    connection, about 0.7 ms). Tensors inside the batch's slab travel as their place in it.
    """

    _BY_VALUE = ("label", "index")
    slab: tuple[int, int] | None = None  # (pool id, slab) this batch was written into, in a worker

    def __reduce__(self):
        small = {k: self[k].tolist() for k in self._BY_VALUE if k in self}
        big = {k: v for k, v in self.items() if k not in self._BY_VALUE}
        placed: dict[str, tuple[int, tuple[int, ...], torch.dtype]] = {}
        pool = _POOLS.get(self.slab[0]) if self.slab is not None else None
        if pool is not None:
            for k, v in list(big.items()):
                off = pool.offset(self.slab[1], v) if isinstance(v, torch.Tensor) else None
                if off is not None:
                    placed[k] = (off, tuple(v.shape), v.dtype)
                    del big[k]
        return _rebuild_batch, (big, small, self.slab, placed)


def _rebuild_batch(big: dict[str, Any], small: dict[str, list[int]], slab: tuple[int, int] | None,
                   placed: dict[str, tuple[int, tuple[int, ...], torch.dtype]]) -> Batch:
    b = Batch(big)
    b.update({k: torch.tensor(v, dtype=torch.int64) for k, v in small.items()})
    if slab is not None:
        pool = _POOLS.get(slab[0])
        if pool is None:
            raise BebiasError("this batch lives in a loader's shared slab; only the process that made the loader "
                              "can unpickle it")
        if placed:
            b.update(pool.open(slab[1], placed))
        else:  # nothing landed in the slab (every video unreadable, or too big): free it now
            pool.release(slab[1])
    return b


def _consecutive_rows(tensors: list[torch.Tensor]) -> torch.Tensor | None:
    """If ``tensors`` are consecutive rows of one contiguous buffer (as
    :meth:`ClipDataset.items` decodes raw clips), the (B, ...) view of them; else None."""
    first = tensors[0]
    st, n = first.untyped_storage(), first.numel()
    for k, t in enumerate(tensors):
        if (not t.is_contiguous() or t.shape != first.shape or t.untyped_storage().data_ptr() != st.data_ptr()
                or t.storage_offset() != first.storage_offset() + k * n):
            return None
    return first.new_empty(0).set_(st, first.storage_offset(), (len(tensors), *first.shape))


def _stack(tensors: list[torch.Tensor], alloc: Alloc) -> torch.Tensor:
    """torch.stack into ``alloc``'s memory; rows already decoded into one buffer are handed on as they are."""
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) > 1:  # only raw (untransformed) clips can differ
        raise BebiasError(f"clips of different sizes {sorted(shapes)} cannot be batched: raw clips "
                          "(transform=None) need videos of one frame size, or batch size 1")
    whole = _consecutive_rows(tensors)
    if whole is not None:
        return whole
    return torch.stack(tensors, out=alloc((len(tensors), *tensors[0].shape), tensors[0].dtype))


def collate_clips(batch: Sequence[dict[str, Any]], alloc: Alloc | None = None) -> Batch:
    """Stack the readable items; report the unreadable ones under ``failed``.

    Returns ``clip`` (B, ...), ``label`` (B,) int64, ``index`` (B,) int64, optionally
    ``negative``, and ``failed``: list of (index, path, error, replacement index) per
    unreadable video, in batch order -- the replacement being the video that took its row
    (a training :class:`ClipDataset` substitutes, so B stays ``len(batch)``), or None where
    the item was dropped (evaluation; B may shrink, down to 0).
    ``alloc``: where the stacked tensors go (default: :func:`default_alloc`).
    """
    alloc = alloc or default_alloc()
    ok = [b for b in batch if "error" not in b]
    failed: list[tuple[int, str, str, int | None]] = []
    for b in batch:
        failed += [(b["index"], b["path"], b["error"], None)] if "error" in b else b.get("replaced", [])
    out = Batch(failed=failed)
    if ok:
        out["clip"] = _stack([b["clip"] for b in ok], alloc)
        out["label"] = torch.tensor([b["label"] for b in ok], dtype=torch.int64)
        out["index"] = torch.tensor([b["index"] for b in ok], dtype=torch.int64)
        if "negative" in ok[0]:
            out["negative"] = _stack([b["negative"] for b in ok], alloc)
    return out


@dataclass(frozen=True)
class BatchRequest:
    """One batch to make: dataset indices, and the slab of the loader's pool to write it into (if any)."""

    indices: tuple[int, ...]
    slab: int | None = None


class ClipBatches(Dataset):
    """A :class:`ClipDataset` served one whole batch per item, for a DataLoader with
    ``batch_size=None`` and :class:`BatchRequests` as its sampler:
    ``self[request]`` -> the collated :class:`Batch`, written into the request's slab of
    ``pool`` when it names one."""

    def __init__(self, ds: ClipDataset) -> None:
        self.ds = ds
        self.pool: SlabPool | None = None  # set by the loader, before its workers fork

    def __getitem__(self, req: BatchRequest) -> Batch:
        in_slab = req.slab is not None and self.pool is not None
        alloc = self.pool.arena(req.slab) if in_slab else default_alloc()
        batch = collate_clips(self.ds.items(req.indices, alloc), alloc)
        if in_slab:
            batch.slab = (self.pool.id, req.slab)
        return batch


class BatchRequests:
    """A DataLoader sampler: one :class:`BatchRequest` per list of indices, each taking a
    free slab of ``source.pool`` at the moment the loader dispatches it."""

    def __init__(self, batches: list[list[int]], source: ClipBatches) -> None:
        self.batches, self.source = batches, source

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[BatchRequest]:
        for idx in self.batches:
            pool = self.source.pool
            yield BatchRequest(tuple(idx), pool.take() if pool is not None else None)


def unbatched(batch: Batch) -> Batch:
    """The identity: a :class:`ClipBatches` item is already a batch (the loader's ``collate_fn``)."""
    return batch
