"""The process's global random generators: seeding them at the start of a run, and their
states as plain data (saved in ``last.pth``, so a resumed run draws what it would have)."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's legacy and torch's global generators with ``seed`` (a run's
    model initialisation draws from them; every other stream is derived, bebias.seeds)."""
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
