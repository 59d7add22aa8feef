"""MoCo: queue ring buffer, EMA, gradients, logit layout, symmetric loss, state_dict, DDP."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bebias.errors import BebiasError
from bebias.models.backbones import Backbone
from bebias.models.moco import MoCo, concat_all_gather


class Tiny(Backbone):
    """1x1x1 Conv3d + BN + ReLU: (B,3,T,H,W) -> (B,c). Fast, and has BN buffers."""

    def __init__(self, c: int = 4) -> None:
        super().__init__(dim=c)
        self.conv = nn.Conv3d(3, c, 1, bias=False)
        self.bn = nn.BatchNorm3d(c)

    def features(self, clip):
        return torch.relu(self.bn(self.conv(clip)))


def clips(b: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, 3, 2, 4, 4, generator=torch.Generator().manual_seed(seed))


def make(**kw) -> MoCo:
    torch.manual_seed(0)
    kw = {"dim": 8, "queue_size": 16, **kw}
    return MoCo(Tiny(), **kw)


def key_params(m: MoCo):
    return [*m.backbone_k.parameters(), *m.head_k.parameters()]


def query_params(m: MoCo):
    return [*m.backbone_q.parameters(), *m.head_q.parameters()]


# ------------------------------------------------------------------ queue


def test_queue_init_is_normalised_fp32_and_pointer_zero():
    m = make(dim=5, queue_size=7)
    assert m.queue.shape == (5, 7) and m.queue.dtype == torch.float32
    torch.testing.assert_close(m.queue.norm(dim=0), torch.ones(7))
    assert m.queue_ptr.dtype == torch.long and m.queue_ptr.tolist() == [0]
    torch.manual_seed(123)  # the initial queue does not depend on the global seed (same on every rank)
    torch.testing.assert_close(MoCo(Tiny(), dim=5, queue_size=7).queue, m.queue)


def test_enqueue_ring_buffer_with_wrap_around():
    m = make(dim=3, queue_size=10)
    init = m.queue.clone()

    def batch(step):  # key i of step s is the constant vector 10*s + i
        return torch.arange(4, dtype=torch.float32)[:, None].add(10 * step).expand(4, 3).clone()

    m.dequeue_and_enqueue(batch(1))
    assert m.queue_ptr.item() == 4
    m.dequeue_and_enqueue(batch(2))
    assert m.queue_ptr.item() == 8
    m.dequeue_and_enqueue(batch(3))  # columns 8, 9 then wraps to 0, 1
    assert m.queue_ptr.item() == 2
    # column -> value, worked out by hand
    expected_row = [32, 33, 12, 13, 20, 21, 22, 23, 30, 31]
    torch.testing.assert_close(m.queue, torch.tensor(expected_row, dtype=torch.float32).expand(3, 10))

    # more keys than the queue holds: only the last K survive, where a sequential write leaves them
    m.dequeue_and_enqueue(torch.arange(12, dtype=torch.float32)[:, None].add(100).expand(12, 3).clone())
    assert m.queue_ptr.item() == (2 + 12) % 10
    expected_row = [108, 109, 110, 111, 102, 103, 104, 105, 106, 107]
    torch.testing.assert_close(m.queue, torch.tensor(expected_row, dtype=torch.float32).expand(3, 10))
    assert not torch.equal(m.queue, init)


def test_enqueue_casts_to_fp32_and_detaches():
    m = make(dim=3, queue_size=6)
    keys = torch.ones(2, 3, dtype=torch.bfloat16, requires_grad=True)
    m.dequeue_and_enqueue(keys)
    assert m.queue.dtype == torch.float32 and not m.queue.requires_grad
    torch.testing.assert_close(m.queue[:, :2], torch.ones(3, 2))


def test_concat_all_gather_is_identity_without_distributed():
    t = torch.randn(3, 2)
    assert concat_all_gather(t) is t


# ------------------------------------------------------------------ key encoder


def test_key_encoder_is_a_copy_without_grad():
    torch.manual_seed(0)
    q, k = Tiny(), Tiny()  # different random init
    with torch.no_grad():
        q.bn.running_mean.fill_(0.5)
    m = MoCo(q, k, dim=8, queue_size=16)
    assert m.backbone_k is k
    for (n1, a), (n2, b) in zip(m.backbone_q.state_dict().items(), m.backbone_k.state_dict().items()):
        assert n1 == n2 and torch.equal(a, b), n1  # parameters and BN buffers copied
    for a, b in zip(m.head_q.parameters(), m.head_k.parameters()):
        assert torch.equal(a, b)
    assert all(not p.requires_grad for p in key_params(m))
    assert all(p.requires_grad for p in query_params(m))
    # deepcopy when no key backbone is given
    m2 = MoCo(Tiny(), dim=8, queue_size=16)
    assert m2.backbone_k is not m2.backbone_q


def test_bad_arguments_raise():
    with pytest.raises(BebiasError, match="architecture"):
        MoCo(Tiny(4), Tiny(5))
    b = Tiny()
    with pytest.raises(BebiasError, match="separate"):
        MoCo(b, b)
    with pytest.raises(BebiasError):
        MoCo(Tiny(), momentum=1.5)
    with pytest.raises(BebiasError):
        MoCo(Tiny(), temperature=0)


def test_heads():
    lin = make(mlp=False, dim=6)
    assert isinstance(lin.head_q, nn.Linear) and (lin.head_q.in_features, lin.head_q.out_features) == (4, 6)
    mlp = make(mlp=True, dim=6)
    layers = list(mlp.head_q)
    assert [type(x) for x in layers] == [nn.Linear, nn.ReLU, nn.Linear]
    assert (layers[0].in_features, layers[0].out_features, layers[2].out_features) == (4, 4, 6)
    z = mlp.encode_q(clips())
    assert z.shape == (3, 6)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(3))


def test_momentum_update_hand_computed():
    m = make(momentum=0.9)
    with torch.no_grad():
        for p in query_params(m):
            p.fill_(3.0)
        for p in key_params(m):
            p.fill_(1.0)
        m.backbone_k.bn.running_mean.fill_(7.0)
    m.momentum_update()  # 0.9 * 1 + 0.1 * 3 = 1.2
    for p in key_params(m):
        torch.testing.assert_close(p, torch.full_like(p, 1.2))
    m.momentum_update()  # 0.9 * 1.2 + 0.1 * 3 = 1.38
    for p in key_params(m):
        torch.testing.assert_close(p, torch.full_like(p, 1.38))
    for p in query_params(m):  # the query encoder is untouched
        torch.testing.assert_close(p, torch.full_like(p, 3.0))
    # buffers are not averaged: the key encoder keeps its own BN statistics
    torch.testing.assert_close(m.backbone_k.bn.running_mean, torch.full((4,), 7.0))


def test_momentum_update_elementwise():
    m = make(momentum=0.9)
    with torch.no_grad():
        for p in key_params(m):
            p.copy_(torch.randn_like(p))
    before_k = [p.clone() for p in key_params(m)]
    m.momentum_update()
    for pk, k0, pq in zip(key_params(m), before_k, query_params(m)):
        torch.testing.assert_close(pk, 0.9 * k0 + 0.1 * pq)


def test_gradients_reach_query_encoder_only():
    m = make()
    out = m(clips(seed=1), clips(seed=2), clips(seed=3))
    assert out["q"].requires_grad and not out["k"].requires_grad
    out["loss"].backward()
    for p in key_params(m):
        assert p.grad is None and not p.requires_grad
    for name, p in [*m.backbone_q.named_parameters(), *m.head_q.named_parameters()]:
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


# ------------------------------------------------------------------ logits and loss


@pytest.mark.parametrize("with_negative", [False, True])
def test_logit_layout(with_negative):
    B, dim, K, tau = 3, 8, 16, 0.07
    m = make(dim=dim, queue_size=K, temperature=tau)
    g = torch.Generator().manual_seed(5)
    q, k, n = (F.normalize(torch.randn(B, dim, generator=g), dim=1) for _ in range(3))
    logits = m.logits(q, k, n if with_negative else None)
    assert logits.shape == (B, 1 + K + int(with_negative)) and logits.dtype == torch.float32
    torch.testing.assert_close(logits[:, 0], (q * k).sum(1) / tau)
    torch.testing.assert_close(logits[:, 1:1 + K], q @ m.queue / tau)
    if with_negative:
        torch.testing.assert_close(logits[:, -1], (q * n).sum(1) / tau)


def test_forward_matches_manual_loss_and_enqueues_keys():
    m = make(queue_size=16)
    xq, xk, xn = clips(seed=1), clips(seed=2), clips(seed=3)
    queue0 = m.queue.clone()
    out = m(xq, xk, xn)
    assert set(out) >= {"loss", "logits", "q", "k"}
    assert out["logits"].shape == (3, 1 + 16 + 1) and out["loss"].ndim == 0
    # the loss used the queue as it was before this step's keys were written
    manual = m.logits(out["q"], out["k"], m.encode_q(xn))
    manual_queue0 = torch.cat([manual[:, :1], out["q"].detach() @ queue0 / m.temperature, manual[:, -1:]], 1)
    torch.testing.assert_close(out["logits"], manual_queue0)
    torch.testing.assert_close(out["loss"], F.cross_entropy(out["logits"], torch.zeros(3, dtype=torch.long)))
    assert m.queue_ptr.item() == 3
    torch.testing.assert_close(m.queue[:, :3], out["k"].T)
    torch.testing.assert_close(m.queue[:, 3:], queue0[:, 3:])


def test_update_false_changes_nothing():
    m = make(momentum=0.5)
    with torch.no_grad():
        for p in key_params(m):
            p.add_(1.0)
    state = {k: v.clone() for k, v in m.state_dict().items() if "running" not in k and "num_batches" not in k}
    m(clips(seed=1), clips(seed=2), update=False)
    for k, v in state.items():
        assert torch.equal(m.state_dict()[k], v), k


def test_symmetric_loss_and_enqueues_both_key_sets():
    B = 3
    m = make(symmetric=True, queue_size=16)
    xq, xk, xn = clips(B, seed=1), clips(B, seed=2), clips(B, seed=3)
    out = m(xq, xk, xn, update=False)
    with torch.no_grad():
        n = m.encode_q(xn)
        l1 = F.cross_entropy(m.logits(m.encode_q(xq), m.encode_k(xk), n), torch.zeros(B, dtype=torch.long))
        l2 = F.cross_entropy(m.logits(m.encode_q(xk), m.encode_k(xq), n), torch.zeros(B, dtype=torch.long))
    torch.testing.assert_close(out["loss"], (l1 + l2) / 2)
    assert m.queue_ptr.item() == 0

    out = m(xq, xk, xn)
    out["loss"].backward()
    assert m.queue_ptr.item() == 2 * B
    torch.testing.assert_close(m.queue[:, :B], out["k"].T)
    torch.testing.assert_close(m.queue[:, B:2 * B], m.encode_k(xq).T)  # second direction's keys


def test_autocast_bf16_keeps_queue_and_logits_fp32():
    m = make()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(clips(seed=1), clips(seed=2), clips(seed=3))
    assert out["logits"].dtype == torch.float32 and out["q"].dtype == torch.float32
    assert m.queue.dtype == torch.float32
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    # the logits themselves are computed in fp32, not merely cast back to it
    q, k = out["q"].detach(), out["k"]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = m.logits(q, k)
    torch.testing.assert_close(inside, m.logits(q, k), rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------ state_dict


def test_state_dict_holds_queue_pointer_and_key_encoder():
    m = make()
    m(clips(seed=1), clips(seed=2))
    sd = m.state_dict()
    assert {"queue", "queue_ptr"} <= set(sd)
    assert any(k.startswith("backbone_k.") for k in sd) and any(k.startswith("head_k.") for k in sd)
    assert "backbone_k.bn.running_mean" in sd
    torch.manual_seed(99)
    fresh = MoCo(Tiny(), dim=8, queue_size=16)
    fresh.load_state_dict(sd)
    assert fresh.queue_ptr.item() == 3
    for k, v in sd.items():
        assert torch.equal(fresh.state_dict()[k], v), k


# ------------------------------------------------------------------ DDP (2 processes, gloo, CPU)

_DDP_SCRIPT = textwrap.dedent('''
    import gc
    import sys
    import torch
    import torch.distributed as dist
    import torch.multiprocessing as mp
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel as DDP

    from bebias.models.backbones import Backbone
    from bebias.models.moco import MoCo, concat_all_gather

    B, K, DIM, WORLD = 2, 10, 8, 2


    class Tiny(Backbone):
        def __init__(self, c=4):
            super().__init__(dim=c)
            self.conv = nn.Conv3d(3, c, 1, bias=False)
            self.bn = nn.BatchNorm3d(c)

        def features(self, clip):
            return torch.relu(self.bn(self.conv(clip)))


    def same_everywhere(t):
        g = concat_all_gather(t.detach().reshape(1, -1).float())
        return torch.allclose(g, g[:1].expand_as(g), rtol=0, atol=1e-6)


    def check_synced(model, what):
        for name, p in model.named_parameters():
            assert same_everywhere(p), f"{what}: parameter {name} differs across ranks"
        assert same_everywhere(model.queue), f"{what}: queue differs across ranks"
        assert same_everywhere(model.queue_ptr), f"{what}: queue_ptr differs across ranks"


    def worker(rank, port):
        torch.set_num_threads(1)
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
        try:
            torch.manual_seed(100 + rank)  # different init per rank: DDP must broadcast rank 0's state
            model = MoCo(Tiny(), dim=DIM, queue_size=K, momentum=0.9, shuffle_bn=True)
            ddp = DDP(model)
            check_synced(model, "after DDP init")
            g = torch.Generator().manual_seed(1000 + rank)  # different data per rank
            xq, xk, xn = (torch.randn(B, 3, 2, 4, 4, generator=g) for _ in range(3))

            # shuffle-BN: the keys equal the key encoder run on the shuffled sub-batches
            def mixes(s):  # does the permutation drawn after manual_seed(s) give rank 0 a sample of rank 1?
                torch.manual_seed(s)
                return set(torch.randperm(2 * B)[:B].tolist()) != set(range(B))

            seed = next(s for s in range(1000) if mixes(s))
            torch.manual_seed(seed)
            k = model.encode_k(xk)
            torch.manual_seed(seed)
            perm = torch.randperm(2 * B)
            x_all = concat_all_gather(xk)
            ref = torch.empty(2 * B, DIM)
            with torch.no_grad():
                for r in range(WORLD):
                    idx = perm.view(WORLD, B)[r]
                    ref[idx] = model._encode_k_local(x_all[idx])
                plain = model._encode_k_local(xk)
            assert k.shape == (B, DIM)
            assert torch.allclose(k, ref[rank * B:(rank + 1) * B], atol=1e-5), "shuffle-BN keys wrong"
            assert not torch.allclose(k, plain, atol=1e-4), "shuffle-BN had no effect"

            # a DDP-wrapped training step
            opt = torch.optim.SGD([p for p in ddp.parameters() if p.requires_grad], lr=0.5)
            q_before = [p.detach().clone() for p in model.backbone_q.parameters()]
            out = ddp(xq, xk, xn)
            out["loss"].backward()
            opt.step()
            assert model.queue_ptr.item() == 2 * B, model.queue_ptr
            k_all = concat_all_gather(out["k"])  # rank 0's keys, then rank 1's
            assert torch.allclose(model.queue[:, :2 * B], k_all.T), "queue does not hold both ranks' keys"
            assert any(not torch.equal(a, b) for a, b in zip(q_before, model.backbone_q.parameters()))
            check_synced(model, "after step 1")

            # a symmetric step: 2 key sets x 2 ranks = 8 keys from column 4, wrapping to 0, 1
            model.symmetric = True
            opt.zero_grad()
            out = ddp(xq, xk, xn)
            out["loss"].backward()
            opt.step()
            assert model.queue_ptr.item() == (2 * B + 4 * B) % K, model.queue_ptr
            k_all = concat_all_gather(out["k"])
            assert torch.allclose(model.queue[:, 4:6], k_all[:B].T)  # rank 0's first-direction keys
            assert torch.allclose(model.queue[:, 8:10], k_all[B:].T)  # rank 1's first-direction keys
            check_synced(model, "after symmetric step")
            print(f"rank {rank} ok", flush=True)
            # DDP holds the process group: alive past destroy_process_group, gloo's teardown
            # moves to interpreter exit and can abort there (SIGABRT, ~1 run in 8)
            del ddp, out, opt
            gc.collect()
            dist.barrier()  # no rank tears gloo down while the other is still in a collective
        finally:
            dist.destroy_process_group()


    if __name__ == "__main__":
        mp.spawn(worker, args=(int(sys.argv[1]),), nprocs=WORLD, join=True)
''')


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.multiprocess
def test_ddp_two_processes_gather_shuffle_bn_and_sync(tmp_path):
    script = tmp_path / "ddp_moco.py"
    script.write_text(_DDP_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(_free_port())], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "rank 0 ok" in proc.stdout and "rank 1 ok" in proc.stdout
