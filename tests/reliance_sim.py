"""Simulated probe runs for the headline score's tests: the rows a probe of N videos with K
classes would hand to :func:`bebias.probing.assemble.compute_metrics`, for models whose
decision rule is known.

Every clip is described by the motion it shows (the actor's class, or -1: no actor, no
motion) and the scene of its background (a class index: the class whose usual scene it
is). A model is a function ``(motion, scene, rng) -> decisions`` over the N clips of one
variant. The variants simulated are those of the headline: ``original`` (motion y_i,
scene s_i), ``background-only`` (no motion, scene s_i) and ``swap-background`` (motion
y_i on the plate of a donor d(i) whose scene is not y_i, as ``probing/source.py`` picks
them; scene s_d(i)).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bebias.probing.suite import ALL_VARIANTS

N, K = 128, 8
Model = Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]
VARIANTS = ("original", "background-only", "swap-background")


def random_model(motion, scene, rng):
    """Uniform random decisions on every clip."""
    return rng.integers(0, K, len(motion))


def background_oracle(mapping: np.ndarray | None = None) -> Model:
    """Decides by the scene alone: ``mapping[scene]`` (None: the usual-scene class)."""
    m = np.arange(K) if mapping is None else np.asarray(mapping)
    return lambda motion, scene, rng: m[scene]


def motion_oracle(motion, scene, rng):
    """Decides by the motion alone: right wherever the actor moves; on a clip without motion
    it has nothing to read and the background does not enter, so it gives one constant
    class (its prior)."""
    return np.where(motion >= 0, motion, 0)


def motion_noise(accuracy: float) -> Model:
    """Uses only the motion, its errors are pixel noise: right with probability ``accuracy``
    where the actor moves, else a uniformly random wrong class; on a clip without motion the
    noise alone decides (uniform)."""
    def model(motion, scene, rng):
        wrong = (motion + rng.integers(1, K, len(motion))) % K
        noisy = rng.integers(0, K, len(motion))
        right = rng.random(len(motion)) < accuracy
        return np.where(motion >= 0, np.where(right, motion, wrong), noisy)
    return model


def scene_split(kind: str, rng: np.random.Generator, rho: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """(labels, scenes) of N videos: ``iid`` = the usual scene with probability rho, else
    another; ``conflict`` = never the usual scene."""
    y = np.arange(N) % K
    other = (y + rng.integers(1, K, N)) % K
    if kind == "iid":
        return y, np.where(rng.random(N) < rho, y, other)
    return y, other


def donors(y: np.ndarray, scene: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per video a donor j != i whose background belongs to another class than y_i."""
    out = np.empty(N, np.int64)
    for i in range(N):
        cands = np.flatnonzero((scene != y[i]) & (np.arange(N) != i))
        out[i] = rng.choice(cands)
    return out


def onehot(pred: np.ndarray) -> np.ndarray:
    p = np.full((len(pred), K), 0.3 / (K - 1))
    p[np.arange(len(pred)), pred] = 0.7
    return p


def simulate(model: Model | tuple[Model, Model, float], split: str = "iid", seed: int = 0,
             bg_only_model: Model | None = None) -> dict[str, np.ndarray]:
    """The rows of one probe run (``compute_metrics``' input) for ``model``.

    ``model`` may be ``(a, b, p)``: a mixture whose decision on each clip is ``b``'s with
    probability p and ``a``'s otherwise (one uniform draw per clip, the same for every p:
    raising p only switches clips from a to b). ``bg_only_model``: decide the
    background-only clips with this model instead (a mixture that reads the bare scene as
    the background oracle does: there is nothing else in it)."""
    rng = np.random.default_rng(seed)
    y, scene = scene_split(split, rng)
    d = donors(y, scene, rng)
    clips = {"original": (y, scene), "background-only": (np.full(N, -1), scene),
             "swap-background": (y, scene[d])}
    mrng = np.random.default_rng(seed + 1000)
    u = np.random.default_rng(seed + 2000).random((len(VARIANTS), N))
    rows: dict[str, list] = {k: [] for k in ("video", "variant", "label", "bg", "donor", "pred")}
    for v, name in enumerate(VARIANTS):
        motion, sc = clips[name]
        if name == "background-only" and bg_only_model is not None:
            pred = bg_only_model(motion, sc, mrng)
        elif isinstance(model, tuple):
            a, b, p = model
            pred = np.where(u[v] < p, b(motion, sc, mrng), a(motion, sc, mrng))
        else:
            pred = model(motion, sc, mrng)
        rows["video"].append(np.arange(N))
        rows["variant"].append(np.full(N, ALL_VARIANTS.index(name)))
        rows["label"].append(y)
        rows["bg"].append(sc)
        rows["donor"].append(d if name == "swap-background" else np.full(N, -1))
        rows["pred"].append(pred)
    out = {k: np.concatenate(v).astype(np.int64) for k, v in rows.items()}
    out["probs"] = onehot(out.pop("pred"))
    out["feats"] = np.zeros((len(out["video"]), 0))
    return out
