"""Probe suites: which counterfactual variants a probe runs, with which parameters.

A suite is a declarative TOML file read by ``bebias probe --suite``: a path, or the name of
a built-in suite (``quick``, ``full``: package data in ``bebias/probing/suites/``, so a wheel
install has them). Every field of :class:`ProbeSuite` is a top-level key of the same name, all
optional.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from importlib import resources
from typing import Any

from bebias.errors import BebiasError
from bebias.limits import OptionError
from bebias.parse import read_toml
from bebias.probing.masks import DEFAULT_METHOD, METHODS
from bebias.stats import check_n_boot
from bebias.probing.testsets import VARIANTS

#: every variant a probe can run, in the order rows are written ("original" is always run)
ALL_VARIANTS: tuple[str, ...] = (*VARIANTS, "conflict-foreground")
#: the ``bebias probe`` switches -> variants
FLAG_VARIANTS: dict[str, tuple[str, ...]] = {
    "swap_backgrounds": ("swap-background", "swap-background-static"),
    "static_frame": ("static-frame",),
    "background_only": ("background-only",),
    "foreground_only": ("foreground-only",),
    "shuffle": ("shuffle",),
    "reverse": ("reverse",),
    "conflict_foreground": ("conflict-foreground",),
    "be_distraction": ("be",),
}
#: ``mask`` settings of a suite: "auto", "ground-truth", or a motion-mask method
MASK_MODES: tuple[str, ...] = ("auto", "ground-truth", *METHODS)
SWAP_SOURCES: tuple[str, ...] = ("donor", "stripes", "images")


@dataclass(frozen=True)
class ProbeSuite:
    """A declarative probe: which variants, with which parameters (a suite TOML file).

    Every field is a top-level TOML key of the same name; all are optional.
    """

    name: str = "all"
    description: str = ""
    #: variants to run besides "original" (see :data:`ALL_VARIANTS`)
    variants: tuple[str, ...] = ALL_VARIANTS[1:]
    #: at most this many videos, class-balanced (:func:`select_videos`); 0 = all
    max_videos: int = 0
    #: "auto" (the benchmark's ground truth, else a mask given with the data (a manifest's
    #: ``mask`` column, ``--masks DIR``), else motion masks), "ground-truth" (only recorded
    #: or given masks), or a
    #: motion-mask method (:data:`bebias.probing.masks.METHODS`) even where ground truth exists
    mask: str = "auto"
    #: motion-mask method where no ground truth is used, and of the IoU check against it
    #: (docs/masks.md: grabcut-refine has the best IoU on the benchmark)
    motion_method: str = DEFAULT_METHOD
    #: a mask is usable if its foreground fraction lies in [min, max] and its stability
    #: (mean IoU of consecutive frames' masks) is at least min_mask_stability
    min_mask_fraction: float = 0.005
    max_mask_fraction: float = 0.9
    min_mask_stability: float = 0.2
    #: background of the swaps: "donor" (another video's plate), "stripes", "images"
    swap_background: str = "donor"
    #: image files for swap_background = "images" (relative to the suite file)
    images: tuple[str, ...] = ()
    #: mixing weight of the "be" variant
    be_lambda: float = 0.3
    #: bootstrap replicates and 1 - confidence level of every interval
    n_boot: int = 1000
    alpha: float = 0.05
    #: representation-level probing (pre-trained checkpoints): k and the gallery split
    knn_k: int = 10
    gallery: str = "train"
    #: videos per chunk (resume granularity) and clips per forward pass
    chunk: int = 16
    batch_size: int = 16

    def validate(self, where: str | None = None) -> "ProbeSuite":
        def bad(msg: str) -> BebiasError:
            return BebiasError(f"suite: {msg}", where)

        unknown = [v for v in self.variants if v not in ALL_VARIANTS or v == "original"]
        if unknown:
            raise bad(f"unknown variant {unknown[0]!r}; choose from {', '.join(ALL_VARIANTS[1:])}")
        if len(set(self.variants)) != len(self.variants):
            raise bad("a variant is listed twice")
        if self.mask not in MASK_MODES:
            raise bad(f"mask must be one of {', '.join(MASK_MODES)}, got {self.mask!r}")
        if self.motion_method not in METHODS:
            raise bad(f"motion_method must be one of {', '.join(METHODS)}, got {self.motion_method!r}")
        if not 0.0 <= self.min_mask_fraction <= self.max_mask_fraction <= 1.0:
            raise bad("need 0 <= min_mask_fraction <= max_mask_fraction <= 1")
        if not 0.0 <= self.min_mask_stability <= 1.0:
            raise bad(f"min_mask_stability must lie in [0, 1], got {self.min_mask_stability}")
        if self.swap_background not in SWAP_SOURCES:
            raise bad(f"swap_background must be one of {', '.join(SWAP_SOURCES)}, got {self.swap_background!r}")
        if self.swap_background == "images" and not self.images:
            raise bad("swap_background = 'images' needs a non-empty images list")
        if not 0.0 <= self.be_lambda <= 1.0:
            raise bad(f"be_lambda must lie in [0, 1], got {self.be_lambda}")
        if not 0.0 < self.alpha < 1.0:
            raise bad(f"alpha must lie in (0, 1), got {self.alpha}")
        for key in ("n_boot", "knn_k", "chunk", "batch_size"):
            if getattr(self, key) < 1:
                raise bad(f"{key} must be >= 1, got {getattr(self, key)}")
        try:  # 1e12 replicates: refused now, not after the probe
            check_n_boot(self.n_boot, 1, "n_boot")
        except OptionError as e:
            raise bad(str(e)) from None
        if self.max_videos < 0:
            raise bad(f"max_videos must be >= 0 (0 = all), got {self.max_videos}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str | None = None) -> "ProbeSuite":
        types = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(d) - set(types))
        if unknown:
            raise BebiasError(f"suite: unknown key {unknown[0]!r}; keys: {', '.join(types)}", where)
        kw: dict[str, Any] = {}
        for k, v in d.items():
            default = getattr(cls, k) if k not in ("variants", "images") else ()
            if k in ("variants", "images"):
                if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                    raise BebiasError(f"suite: {k} must be a list of strings", where)
                v = tuple(v)
            elif isinstance(default, bool) or isinstance(v, bool):
                raise BebiasError(f"suite: bad value for {k}: {v!r}", where)
            elif isinstance(default, int) and not isinstance(default, bool):
                if not isinstance(v, int):
                    raise BebiasError(f"suite: {k} must be an integer, got {v!r}", where)
            elif isinstance(default, float):
                if not isinstance(v, (int, float)):
                    raise BebiasError(f"suite: {k} must be a number, got {v!r}", where)
                v = float(v)
            elif isinstance(default, str) and not isinstance(v, str):
                raise BebiasError(f"suite: {k} must be a string, got {v!r}", where)
            kw[k] = v
        return cls(**kw).validate(where)


#: the built-in suites: package data, read through importlib.resources (checkout or wheel)
_BUILTIN = resources.files("bebias.probing") / "suites"


def builtin_suites() -> tuple[str, ...]:
    """Names of the suites shipped with the package (``bebias/probing/suites/NAME.toml``)."""
    return tuple(sorted(p.name[:-5] for p in _BUILTIN.iterdir() if p.name.endswith(".toml")))


def _suite_path(name: str) -> str:
    """A suite argument -> an existing file: a path, else a bare name NAME (or NAME.toml) is a
    built-in suite. A file of that name in the working directory wins over a built-in."""
    if os.path.isfile(name):
        return name
    if os.sep not in name and "/" not in name:
        stem = name[:-5] if name.endswith(".toml") else name
        res = _BUILTIN / f"{stem}.toml"
        if res.is_file():
            # pip installs wheels unpacked, so the resource is a real file: its path goes into
            # the probe's provenance like a user's suite file
            return os.fspath(res)
    raise BebiasError("suite file does not exist (give a path, or a built-in suite: "
                      f"{', '.join(builtin_suites())})", name)


def load_suite(name_or_path: str) -> tuple[ProbeSuite, str]:
    """Parse a suite file (see :class:`ProbeSuite`); returns it and its path. Image paths
    are made relative to the working directory. Errors are :class:`BebiasError`."""
    path = _suite_path(name_or_path)
    raw = read_toml(path, "suite file")
    suite = ProbeSuite.from_dict(raw, path)
    if suite.images:
        base = os.path.dirname(os.path.abspath(path))
        imgs = tuple(p if os.path.isabs(p) else os.path.relpath(os.path.join(base, p)) for p in suite.images)
        missing = [p for p in imgs if not os.path.isfile(p)]
        if missing:
            raise BebiasError("suite: background image does not exist", missing[0])
        suite = replace(suite, images=imgs)
    return suite, path


def select_videos(labels: Sequence[int], max_videos: int = 0) -> list[int]:
    """Indices of the videos to probe: all of them, or ``max_videos`` class-balanced ones
    (round robin over the classes in index order: the first video of every class, then the
    second, ...), returned sorted. Deterministic and independent of the seed."""
    labels = [int(y) for y in labels]
    if not max_videos or max_videos >= len(labels):
        return list(range(len(labels)))
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    order: list[int] = []
    rank = 0
    while len(order) < max_videos:
        for c in sorted(by_class):
            if rank < len(by_class[c]):
                order.append(by_class[c][rank])
        rank += 1
    return sorted(order[:max_videos])
