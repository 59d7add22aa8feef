"""MoCo v2 (He et al. 2020; Chen et al. 2020) for video backbones, with BE's intra-video negative.

One module holds both encoders, the projection heads and the queue of negatives, in the
manner of facebookresearch/moco's ``builder.py``:

- query encoder  ``backbone_q`` + ``head_q``: trained by the optimiser;
- key encoder    ``backbone_k`` + ``head_k``: a copy of the query encoder at construction
  (parameters *and* buffers), never given a gradient, then moved towards the query
  encoder by an exponential moving average, θk <- m·θk + (1 - m)·θq, once per step;
- ``queue`` (dim, K): the L2-normalised keys of the last K samples (all ranks under DDP),
  a ring buffer whose write position is ``queue_ptr``. Both are buffers, so they are in
  ``state_dict`` and a checkpoint resumes with the same negatives (the official BE
  checkpoint saves neither the key encoder nor the queue, so it cannot resume).

The loss is InfoNCE: logits ``[q·k, q·queue, (q·n)] / τ`` with the positive in column 0.
Background Erasing adds the optional last column: one extra negative per sample, the
same video at another time through the *query* encoder (with gradient), as FingerRec/BE
does. Only keys are enqueued.

BatchNorm and buffers
---------------------
The momentum update averages parameters only. The key encoder's BatchNorm running
statistics are copied from the query encoder at construction and from then on are its
own: the key encoder runs in train mode (like the query encoder), so its BN normalises
with batch statistics and accumulates running statistics of *its* weights on key batches,
as in the official MoCo. Those running statistics never influence the keys during
training; they only matter if the key encoder is later used in eval mode, where
statistics computed with its own (EMA) weights are the consistent ones.

Shuffle-BN
----------
With BN, a query and its key normalised with the same batch statistics can "cheat"
(the batch statistics leak which samples belong together). MoCo's remedy is to compute
the keys on a batch shuffled *across* GPUs and un-shuffle them afterwards. Here
``shuffle_bn=True`` does that whenever ``torch.distributed`` is initialised with more than
one process (all_gather of the key clips, a permutation drawn on rank 0 and broadcast,
each rank encoding its slice, all_gather of the keys, inverse permutation). In a single
process there is nothing to shuffle across, and shuffling within the batch would change
nothing (BN statistics are permutation-invariant): the key encoder then sees the same
per-batch BN statistics as the query encoder, exactly as the official BE code, which
never used shuffle-BN. Every rank must pass the same batch size (all_gather needs it).

DDP
---
Wrap the whole module: ``DistributedDataParallel(MoCo(...))``. DDP's initial broadcast
copies rank 0's parameters (the key encoder's too) and buffers to every rank; only the
query encoder has ``requires_grad`` and is all-reduced. The queue is identical on every
rank by construction (it is initialised from a fixed seed and always written with the
keys gathered from all ranks), so ``broadcast_buffers=False`` is safe for it and saves
a queue-sized broadcast per step (BN running statistics then stay per-rank).

Precision: the queue is fp32 and logits are computed in fp32 with autocast disabled, so
bf16/fp16 autocast only affects the encoders.
"""

from __future__ import annotations

import copy

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from bebias.errors import BebiasError
from bebias.models.backbones import Backbone

__all__ = ["MoCo", "concat_all_gather"]

#: Seed of the queue's random initial content (the same on every rank, see the module doc).
QUEUE_INIT_SEED = 0


def _distributed() -> bool:
    """True when torch.distributed is initialised with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


@torch.no_grad()
def concat_all_gather(t: Tensor) -> Tensor:
    """(B, ...) on every rank -> (world_size * B, ...), rank 0's rows first; identity when not distributed.

    Every rank must pass the same shape. No gradient flows through the gather.
    """
    if not _distributed():
        return t
    gathered = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, t.contiguous())
    return torch.cat(gathered, dim=0)


def _head(in_dim: int, dim: int, mlp: bool) -> nn.Module:
    """Projection head: Linear(C -> dim) (BE's recipe), or MoCo v2's C -> C -> ReLU -> dim."""
    if mlp:
        return nn.Sequential(nn.Linear(in_dim, in_dim), nn.ReLU(inplace=True), nn.Linear(in_dim, dim))
    return nn.Linear(in_dim, dim)


class MoCo(nn.Module):
    """MoCo v2 around a video :class:`Backbone`: clips (B,3,T,H,W) -> InfoNCE loss.

    Args:
        backbone_q: the query backbone (the one that is trained and kept).
        backbone_k: the key backbone, same architecture; ``None`` makes a deep copy of
            ``backbone_q``. Either way its parameters and buffers are overwritten with the
            query's at construction.
        dim: embedding size of the projection heads (128).
        queue_size: K, number of negatives kept (3569 for UCF101/HMDB51/Diving48 in BE,
            65536 for Kinetics). Need not be a multiple of the batch size.
        momentum: m of the key-encoder EMA (0.999).
        temperature: τ of the logits (0.07).
        mlp: ``False``: Linear(C->dim) head as in BE; ``True``: MoCo v2's 2-layer MLP.
        symmetric: also use the key clip as query and the query clip as key (MoCo v3
            style) and average the two losses; both key sets are enqueued.
        shuffle_bn: shuffle the key batch across ranks under DDP (no effect in one process).
    """

    queue: Tensor
    queue_ptr: Tensor

    def __init__(self, backbone_q: Backbone, backbone_k: Backbone | None = None, dim: int = 128,
                 queue_size: int = 3569, momentum: float = 0.999, temperature: float = 0.07,
                 mlp: bool = False, symmetric: bool = False, shuffle_bn: bool = True) -> None:
        super().__init__()
        if dim < 1 or queue_size < 1:
            raise BebiasError(f"MoCo needs dim >= 1 and queue_size >= 1, got dim={dim}, queue_size={queue_size}")
        if not 0.0 <= momentum <= 1.0:
            raise BebiasError(f"MoCo momentum must be in [0, 1], got {momentum}")
        if temperature <= 0:
            raise BebiasError(f"MoCo temperature must be > 0, got {temperature}")
        if backbone_k is backbone_q:
            raise BebiasError("backbone_k must be a separate module from backbone_q (or None for a copy)")
        self.dim, self.queue_size = int(dim), int(queue_size)
        self.momentum, self.temperature = float(momentum), float(temperature)
        self.mlp, self.symmetric, self.shuffle_bn = bool(mlp), bool(symmetric), bool(shuffle_bn)

        self.backbone_q = backbone_q
        self.head_q = _head(backbone_q.dim, self.dim, self.mlp)
        self.backbone_k = copy.deepcopy(backbone_q) if backbone_k is None else backbone_k
        self.head_k = copy.deepcopy(self.head_q)
        try:  # parameters and buffers (BN statistics): the key encoder starts as the query encoder
            self.backbone_k.load_state_dict(self.backbone_q.state_dict())
        except RuntimeError as e:
            raise BebiasError(f"backbone_k does not match backbone_q's architecture: {e}") from None
        for p in self.key_params():
            p.requires_grad_(False)

        # Same initial queue on every rank, whatever the global seed.
        g = torch.Generator().manual_seed(QUEUE_INIT_SEED)
        self.register_buffer("queue", F.normalize(torch.randn(self.dim, self.queue_size, generator=g), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    # ---------------------------------------------------------------- encoders

    def query_params(self) -> list[nn.Parameter]:
        """The query encoder's parameters (backbone, head): what the optimiser trains."""
        return [*self.backbone_q.parameters(), *self.head_q.parameters()]

    def key_params(self) -> list[nn.Parameter]:
        """The key encoder's parameters, in the same order: moved only by :meth:`momentum_update`."""
        return [*self.backbone_k.parameters(), *self.head_k.parameters()]

    def encode_q(self, x: Tensor) -> Tensor:
        """(B, 3, T, H, W) -> (B, dim) fp32, L2-normalised, through the query encoder (with gradient)."""
        return F.normalize(self.head_q(self.backbone_q(x)).float(), dim=1)

    def _encode_k_local(self, x: Tensor) -> Tensor:
        # (b, 3, T, H, W) -> (b, dim) fp32, L2-normalised
        return F.normalize(self.head_k(self.backbone_k(x)).float(), dim=1)

    @torch.no_grad()
    def encode_k(self, x: Tensor) -> Tensor:
        """(B, 3, T, H, W) -> (B, dim) fp32, L2-normalised, through the key encoder (no gradient).

        Under DDP with ``shuffle_bn`` the batch is shuffled across ranks first (see module doc).
        """
        if not (self.shuffle_bn and _distributed()):
            return self._encode_k_local(x)
        b = x.shape[0]
        rank, world = dist.get_rank(), dist.get_world_size()
        x_all = concat_all_gather(x)  # (world*B, 3, T, H, W)
        perm = torch.randperm(world * b, device=x.device)  # drawn on every rank (keeps RNGs in step) ...
        dist.broadcast(perm, src=0)  # ... but rank 0's is used
        mine = perm.view(world, b)[rank]  # (B,) global indices this rank encodes
        k_mine = self._encode_k_local(x_all[mine])  # (B, dim), BN statistics of a mixed batch
        k_all_shuffled = concat_all_gather(k_mine)  # (world*B, dim), row j is sample perm[j]
        k_all = torch.empty_like(k_all_shuffled)
        k_all[perm] = k_all_shuffled  # un-shuffle: row i is sample i again
        return k_all[rank * b:(rank + 1) * b]  # (B, dim), this rank's samples in order

    # ---------------------------------------------------------------- state updates

    @torch.no_grad()
    def momentum_update(self) -> None:
        """θk <- m·θk + (1 - m)·θq for every parameter of the key encoder (buffers: see module doc)."""
        m = self.momentum
        for pk, pq in zip(self.key_params(), self.query_params(), strict=True):
            pk.mul_(m).add_(pq.detach(), alpha=1.0 - m)

    @torch.no_grad()
    def dequeue_and_enqueue(self, keys: Tensor) -> None:
        """Write keys (B, dim) (gathered from all ranks first under DDP) into the ring buffer.

        Columns ``ptr, ptr+1, ...`` (mod K) receive the keys in order, in at most two slices
        when the write wraps around; ``queue_ptr`` advances by the number written, mod K.
        If more than K keys arrive, only the last K are kept (they land where a sequential
        ring write would have left them).
        """
        keys = concat_all_gather(keys.detach()).to(self.queue.dtype)  # (N, dim), N = world*B
        n_all, K = keys.shape[0], self.queue_size
        ptr = int(self.queue_ptr.item())
        if n_all > K:  # older keys would be overwritten within this very write
            ptr = (ptr + n_all - K) % K
            keys = keys[n_all - K:]
        n = keys.shape[0]
        first = min(n, K - ptr)  # columns up to the end of the queue
        self.queue[:, ptr:ptr + first] = keys[:first].T
        if n > first:  # wrap around to the start
            self.queue[:, :n - first] = keys[first:].T
        self.queue_ptr[0] = (ptr + n) % K

    # ---------------------------------------------------------------- loss

    def logits(self, q: Tensor, k: Tensor, extra_negatives: Tensor | None = None) -> Tensor:
        """q, k (B, dim) [, extra_negatives n (B, dim)] -> (B, 1 + K [+ 1]) fp32 logits.

        Column 0: q_i·k_i (the positive, label 0); columns 1..K: q_i·queue; last (only with
        ``extra_negatives``): q_i·n_i, ONE extra negative per sample (BE's intra-video
        negative). All divided by τ. ``k`` is treated as a constant (detached); ``q`` and
        ``n`` keep their gradients.
        """
        if extra_negatives is not None and extra_negatives.shape != q.shape:
            raise BebiasError(f"extra_negatives must have q's shape {tuple(q.shape)}, "
                              f"got {tuple(extra_negatives.shape)}")
        with torch.autocast(device_type=q.device.type, enabled=False):  # fp32 whatever the context
            q, k = q.float(), k.detach().float()
            l_pos = (q * k).sum(dim=1, keepdim=True)  # (B, 1)
            # clone: the queue is written in place after the loss, before backward needs it
            l_neg = q @ self.queue.clone().detach()  # (B, dim) @ (dim, K) -> (B, K)
            parts = [l_pos, l_neg]
            if extra_negatives is not None:
                parts.append((q * extra_negatives.float()).sum(dim=1, keepdim=True))  # (B, 1)
            return torch.cat(parts, dim=1) / self.temperature  # (B, 1 + K [+ 1])

    def _loss(self, logits: Tensor) -> Tensor:
        labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)  # positive = column 0
        return F.cross_entropy(logits, labels)

    def forward(self, x_q: Tensor, x_k: Tensor, x_neg: Tensor | None = None, *,
                update: bool = True) -> dict[str, Tensor]:
        """One MoCo step on clips (B, 3, T, H, W): query x_q, key x_k, optional intra-video negative x_neg.

        With ``update`` (training): momentum-update the key encoder first, enqueue the keys
        after the loss. ``update=False`` (e.g. validation) leaves key encoder and queue as they are.

        Returns ``{"loss": scalar, "logits": (B, 1+K[+1]), "q": (B, dim), "k": (B, dim),
        "keys": (B or 2B, dim)}``; with ``symmetric`` the loss is the mean of both directions,
        logits / q / k are those of the x_q -> x_k direction, and ``keys`` (what was
        enqueued) holds both key sets.
        """
        if update:
            self.momentum_update()
        q = self.encode_q(x_q)  # (B, dim)
        k = self.encode_k(x_k)  # (B, dim), no gradient
        n = self.encode_q(x_neg) if x_neg is not None else None  # (B, dim), with gradient (as BE)
        logits = self.logits(q, k, n)
        loss = self._loss(logits)
        keys = k
        if self.symmetric:
            q2 = self.encode_q(x_k)  # the clean clip as query ...
            k2 = self.encode_k(x_q)  # ... and the distracted clip as key
            loss = (loss + self._loss(self.logits(q2, k2, n))) / 2
            keys = torch.cat([k, k2], dim=0)  # (2B, dim)
        if update:
            self.dequeue_and_enqueue(keys)
        return {"loss": loss, "logits": logits, "q": q, "k": k, "keys": keys}

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, queue_size={self.queue_size}, momentum={self.momentum}, "
                f"temperature={self.temperature}, mlp={self.mlp}, symmetric={self.symmetric}, "
                f"shuffle_bn={self.shuffle_bn}")
