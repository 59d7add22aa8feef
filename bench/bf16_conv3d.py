"""Reproducer for the CPU bf16 Conv3d weight-gradient fault (docs/precision.md).

A bare ``nn.Conv3d`` applied TWICE in one graph under CPU bf16 autocast, on a 2x2x2
spatial input (what small3d's layer4 sees at 8x32x32 clips, and what MoCo+BE does when
the query encoder also encodes the intra-video negative), against the same computation in
fp32. Prints, per trial, the largest |weight gradient| in bf16 and fp32 and their relative
error, which convolution backend PyTorch picked for bf16, and a verdict.

    python bench/bf16_conv3d.py [--trials 10] [--channels 256] [--size 2] [--uses 2] [--out x.json]

Exit status 1 when any trial's bf16 gradient is non-finite or off by more than 10x its
fp32 value (the fault), 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys

import torch


def conv_backend(channels: int, size: int, dtype: torch.dtype) -> str:
    """The backend ``torch.nn.functional.conv3d`` dispatches to for these shapes and dtype on CPU."""
    x = torch.zeros(2, channels, size, size, size, dtype=dtype)
    w = torch.zeros(channels, channels, 3, 3, 3, dtype=dtype)
    return str(torch._C._select_conv_backend(x, w, None, [1, 1, 1], [1, 1, 1], [1, 1, 1], False, [0, 0, 0], 1, None))


def trial(seed: int, channels: int, size: int, uses: int, batch: int = 4) -> dict:
    """One trial: weight gradient of ``uses`` applications of one conv, bf16 autocast vs fp32."""
    g = torch.Generator().manual_seed(seed)
    conv = torch.nn.Conv3d(channels, channels, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * (2.0 / (channels * 27)) ** 0.5)
    xs = [torch.randn(batch, channels, size, size, size, generator=g) for _ in range(uses)]
    grads = {}
    for name, enabled in (("bf16", True), ("fp32", False)):
        conv.weight.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
            loss = sum(conv(x).float().square().mean() for x in xs)
        loss.backward()
        grads[name] = conv.weight.grad.detach().clone()
    ref = grads["fp32"]
    err = float((grads["bf16"] - ref).norm() / ref.norm())
    return {"seed": seed, "bf16_max": float(grads["bf16"].abs().max()), "fp32_max": float(ref.abs().max()),
            "rel_err": err, "bad": not (err < 10.0)}  # NaN/inf compare False: bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--channels", type=int, default=256)
    ap.add_argument("--size", type=int, default=2, help="spatial side of the cubic input (T = H = W)")
    ap.add_argument("--uses", type=int, default=2, help="applications of the conv in one graph")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    a = ap.parse_args()
    rows = [trial(s, a.channels, a.size, a.uses) for s in range(a.trials)]
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?") \
        if os.path.exists("/proc/cpuinfo") else platform.processor()
    res = {"torch": torch.__version__, "cpu": cpu, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "threads": torch.get_num_threads(), "backend_bf16": conv_backend(a.channels, a.size, torch.bfloat16),
           "backend_fp32": conv_backend(a.channels, a.size, torch.float32), "channels": a.channels,
           "size": a.size, "uses": a.uses, "trials": rows, "bad_trials": sum(r["bad"] for r in rows)}
    for r in rows:
        print(f"seed {r['seed']}: max|grad| bf16 {r['bf16_max']:.3g}  fp32 {r['fp32_max']:.3g}  "
              f"rel err {r['rel_err']:.3g}{'  <-- FAULT' if r['bad'] else ''}")
    print(f"{res['bad_trials']} of {a.trials} trials faulty; torch {res['torch']}, {cpu} "
          f"({res['cpu_capability']}), {res['threads']} threads; bf16 conv3d backend: {res['backend_bf16']}, "
          f"fp32: {res['backend_fp32']}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)
    return 1 if res["bad_trials"] else 0


if __name__ == "__main__":
    sys.exit(main())
