"""The bf16 check of training: refuse autocast where this CPU computes wrong gradients."""

from __future__ import annotations

import torch

from bebias.errors import BebiasError
from bebias.models.device import autocast


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
