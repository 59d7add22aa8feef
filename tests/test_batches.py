"""Batches through recycled shared-memory slabs (bebias.data.batches)."""

import io
import pickle
from multiprocessing.reduction import ForkingPickler

import pytest
import torch

from bebias.data.batches import Batch, SlabPool
from bebias.data.dataset import ClipDataset
from bebias.data.loader import make_loader
from bebias.data.open import open_data
from bebias.data.transforms import ClipSpec, train_transform

SPEC = ClipSpec(frames=8, stride=1, size=32)


def _cross(batch: Batch) -> tuple[Batch, int]:
    """What a worker's batch becomes in the main process (pickled the DataLoader's way), and its pickled size."""
    buf = io.BytesIO()
    ForkingPickler(buf, pickle.HIGHEST_PROTOCOL).dump(batch)
    return pickle.loads(buf.getvalue()), buf.tell()


def test_a_batch_in_a_slab_crosses_as_its_place_and_frees_the_slab_with_its_last_view():
    pool = SlabPool(2, nbytes=1 << 20)
    slab = pool.take()
    alloc = pool.arena(slab)
    clip = alloc((3, 5), torch.float32)
    neg = alloc((3, 7), torch.uint8)
    assert clip.data_ptr() % 64 == 0 and neg.data_ptr() % 64 == 0 and pool.offset(slab, neg) >= clip.nbytes
    clip.copy_(torch.arange(15.0).view(3, 5))
    neg.fill_(9)
    b = Batch(clip=clip, negative=neg, label=torch.tensor([1, 2, 3]), index=torch.tensor([4, 5, 6]), failed=[])
    b.slab = (pool.id, slab)
    got, size = _cross(b)
    assert size < 1000  # places, not bytes
    assert got["clip"].data_ptr() == clip.data_ptr() and torch.equal(got["clip"], torch.arange(15.0).view(3, 5))
    assert torch.equal(got["negative"], neg) and got["label"].tolist() == [1, 2, 3] and got["failed"] == []
    assert pool.take() is not None and pool.take() is None  # both slabs out
    row = got["clip"][1]
    del got, b
    assert pool.take() is None  # a view of the batch is still alive: the slab stays out
    del row
    assert pool.take() == slab  # the last view is gone: the slab is back


def test_what_does_not_fit_a_slab_crosses_the_pytorch_way_and_the_slab_comes_back_at_once():
    pool = SlabPool(1, nbytes=4096)
    slab = pool.take()
    alloc = pool.arena(slab)
    big = alloc((2, 4096), torch.uint8)
    assert pool.offset(slab, big) is None and big.is_shared()  # past the slab's end: fresh shared memory
    big.fill_(3)
    b = Batch(clip=big, label=torch.tensor([0, 1]), index=torch.tensor([0, 1]), failed=[])
    b.slab = (pool.id, slab)
    got, _ = _cross(b)
    assert torch.equal(got["clip"], big)
    assert pool.take() == slab  # nothing of the batch was in the slab


def _streamed(ds, workers: int) -> tuple[list[dict], object]:
    loader = make_loader(ds, 3, shuffle=True, seed=2, epoch=0, workers=workers, drop_last=False)
    out = []
    for batch in loader:  # each batch is dropped before the next arrives, as in training
        out.append({k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in batch.items()})
    return out, loader.dataset.pool


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_recycle_slabs_and_their_batches_equal_in_process_ones(workers):
    d = open_data("synthetic:classes=4,videos_per_class=6,test_videos_per_class=2,frames=12,size=32")
    ds = ClipDataset(d.videos, d.decoder, SPEC, train_transform(SPEC, hflip=False, normalize=False), views=2,
                     intra_negative=True, seed=3)
    ref, _ = _streamed(ds, 0)
    got, pool = _streamed(ds, workers)
    assert len(ref) == len(got) == 8
    assert pool is not None and pool.taken > len(pool._maps)  # slabs were reused
    for a, b in zip(ref, got):
        assert set(a) == set(b) == {"clip", "label", "index", "negative", "failed"}
        for k in ("clip", "label", "index", "negative"):
            assert torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype


def test_a_batch_the_caller_keeps_is_never_overwritten():
    d = open_data("synthetic:classes=4,videos_per_class=6,test_videos_per_class=2,frames=12,size=32")
    ds = ClipDataset(d.videos, d.decoder, SPEC, train_transform(SPEC, hflip=False, normalize=False), seed=1)
    loader = make_loader(ds, 2, shuffle=False, seed=0, epoch=0, workers=1, drop_last=False)
    kept, copies = [], []
    for k, batch in enumerate(loader):
        if k % 3 == 0:
            kept.append(batch["clip"][0])  # one view is enough to pin the slab
            copies.append(batch["clip"][0].clone())
    assert len(kept) == 4 and loader.dataset.pool.taken > 0
    for view, copy in zip(kept, copies):
        assert torch.equal(view, copy)
