"""The one definition of a probe's ``metrics.json``: :class:`ProbeMetrics`.

``bebias probe`` writes it (:func:`ProbeMetrics.to_json`), and everything that shows a probe's
numbers reads it back through it (:func:`ProbeMetrics.from_json`): the CLI summary, the demo
table, ``bebias report``'s tables and figures. It sits below :mod:`bebias.probing` and
:mod:`bebias.reporting` (siblings that may not import each other), so both see the same class.

The file is a JSON object::

    {"kind": "bebias-probe", "schema_version": 2, "bebias_version": ...,
     "provenance": {...}, "videos": {...}, "headline": {name: value},
     "accuracy" | "drop" | "agreement" | "conflict" | "similarity": {variant: block},
     "contrasted_accuracy", "static_frame_accuracy", ...: block,   # where the run defines them
     "background_reliance": block | null, "cam": block, "swaps": block}

A block of one number is ``{value, ci_low, ci_high[, n]}`` (an :class:`Estimate`), its CI a
percentile bootstrap over the probed (test) videos of that one model: :data:`VIDEO_CI`
names it wherever it is shown. Files written before the schema had a version (no ``kind``,
no ``schema_version``) are version 1 and read the same; a newer version, another kind or a
missing field is one :class:`~bebias.errors.BebiasError` line naming the file.

**Adding a headline metric** touches this module (an entry of :data:`SCALARS`) and its test;
the CLI summary and the report's checkpoint table pick it up from there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from bebias.errors import BebiasError

KIND = "bebias-probe"
#: 1: no ``kind``/``schema_version`` in the file (bebias before the schema); 2: this layout
#: (adds ``kind``, ``schema_version`` and the ``swaps`` block; every older key unchanged)
SCHEMA_VERSION = 2
#: what the bootstrap CIs of a probe are over, as shown next to them
VIDEO_CI = "95 % CI over test videos"

#: blocks keyed by probe variant
PER_VARIANT = ("accuracy", "drop", "agreement", "conflict", "similarity")
#: single blocks written where the run defines them (absent otherwise)
OPTIONAL = ("contrasted_accuracy", "static_frame_accuracy", "background_only_accuracy", "shuffle_sensitivity",
            "reverse_sensitivity", "cam", "swaps")


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


@dataclass(frozen=True)
class Estimate:
    """One number with its CI (None where absent) and the count it is over."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None

    @classmethod
    def of(cls, block: Any, n: Any = None) -> Estimate:
        """From a block ``{value, ci_low, ci_high[, n]}`` or a bare number (no CI)."""
        if isinstance(block, dict):
            got = _num(block.get("n", n))
            return cls(_num(block.get("value")), _num(block.get("ci_low")), _num(block.get("ci_high")),
                       None if got is None else int(got))
        got = _num(n)
        return cls(_num(block), None, None, None if got is None else int(got))


@dataclass(frozen=True)
class Scalar:
    """A headline metric: its key (the report's column key), label and how it is read from a
    :class:`ProbeMetrics` (None = the run does not define it)."""

    key: str
    label: str
    read: Callable[[ProbeMetrics], Estimate | None]
    #: a column of ``bebias report``'s checkpoint table (else the CLI summary only)
    report: bool = True


def _headline_or(m: ProbeMetrics, block: str) -> Estimate | None:
    """A single block where written, else its headline number (same key); None if neither is."""
    b = getattr(m, block)
    if b is not None:
        return Estimate.of(b)
    return Estimate.of(m.headline[block]) if block in m.headline else None


def _top1(m: ProbeMetrics) -> Estimate | None:
    acc = m.accuracy.get("original")
    if isinstance(acc, dict):
        return Estimate.of(acc.get("top1"), acc.get("n"))
    return Estimate.of(m.headline["original_top1"]) if "original_top1" in m.headline else None


def _reliance(m: ProbeMetrics) -> Estimate | None:
    rel = m.background_reliance
    if isinstance(rel, dict):  # a score of the pre-anchored definition is another scale: not shown
        return Estimate.of(rel) if m.reliance_block() is not None else Estimate(None)
    if m.has_reliance_key or "background_reliance" in m.headline:
        return Estimate.of(m.headline.get("background_reliance"))
    return None


def _swap_follow(m: ProbeMetrics) -> Estimate | None:
    swap = m.conflict.get("swap-background")
    if isinstance(swap, dict):
        return Estimate.of(swap.get("background_follow"), swap.get("n"))
    return Estimate.of(m.headline["swap_background_follow"]) if "swap_background_follow" in m.headline else None


def _cam(m: ProbeMetrics) -> Estimate | None:
    return Estimate.of(m.cam.get("actor_share")) if isinstance(m.cam, dict) else None


def _cam_norm(m: ProbeMetrics) -> Estimate | None:
    """(share - chance) / (ceiling - chance) of the predicted class's map (docs/cam.md); probes
    of an earlier bebias have the share only."""
    pred = m.cam.get("pred") if isinstance(m.cam, dict) else None
    return Estimate.of(pred.get("normalised")) if isinstance(pred, dict) else None


#: the headline metrics, in the order the CLI and the report show them (the reliance
#: score's parts follow it: :meth:`ProbeMetrics.scalars`)
SCALARS: tuple[Scalar, ...] = (
    Scalar("top1", "top-1 (original)", _top1),
    Scalar("reliance", "background reliance", _reliance),
    Scalar("contrasted", "contrasted accuracy", lambda m: _headline_or(m, "contrasted_accuracy")),
    Scalar("static", "static-frame accuracy", lambda m: _headline_or(m, "static_frame_accuracy")),
    Scalar("background_only", "background-only accuracy", lambda m: _headline_or(m, "background_only_accuracy"),
           report=False),
    Scalar("shuffle", "shuffle sensitivity", lambda m: _headline_or(m, "shuffle_sensitivity"), report=False),
    Scalar("reverse", "reverse sensitivity", lambda m: _headline_or(m, "reverse_sensitivity"), report=False),
    Scalar("swap_bg_follow", "swap bg-follow", _swap_follow),
    Scalar("cam", "CAM on actor", _cam),
    Scalar("cam_norm", "CAM on actor, normalised", _cam_norm),
)


@dataclass
class ProbeMetrics:
    """A probe's ``metrics.json`` (module docstring). Blocks are kept as the probe wrote them
    (plain JSON); the methods are the typed view every reader goes through."""

    provenance: dict
    headline: dict
    videos: dict = field(default_factory=dict)
    accuracy: dict = field(default_factory=dict)
    drop: dict = field(default_factory=dict)
    agreement: dict = field(default_factory=dict)
    conflict: dict = field(default_factory=dict)
    similarity: dict = field(default_factory=dict)
    contrasted_accuracy: dict | None = None
    static_frame_accuracy: dict | None = None
    background_only_accuracy: dict | None = None
    shuffle_sensitivity: dict | None = None
    reverse_sensitivity: dict | None = None
    #: the headline score (``definition`` names it); None where the run cannot define it
    background_reliance: dict | None = None
    #: ``bebias probe --cam``
    cam: dict | None = None
    #: how swap donors were chosen and how many swaps found none (schema 2)
    swaps: dict | None = None
    bebias_version: str | None = None
    schema_version: int = SCHEMA_VERSION
    #: keys this schema does not know, kept for the round trip
    extra: dict = field(default_factory=dict)
    #: whether the file had a ``background_reliance`` key (null = undefined, not absent)
    has_reliance_key: bool = True

    # -- the file ---------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The JSON object written as metrics.json (always the current schema version)."""
        out: dict[str, Any] = {"kind": KIND, "schema_version": SCHEMA_VERSION, "bebias_version": self.bebias_version,
                               "provenance": self.provenance, "videos": self.videos, "headline": self.headline}
        out.update({k: getattr(self, k) for k in PER_VARIANT})
        for k in OPTIONAL[:5]:
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        out["background_reliance"] = self.background_reliance
        for k in OPTIONAL[5:]:
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        return {**out, **self.extra}

    @classmethod
    def from_json(cls, obj: Any, path: str = "metrics.json") -> ProbeMetrics:
        """Read a parsed metrics.json (any schema version up to :data:`SCHEMA_VERSION`);
        a wrong kind, a newer version or a missing/ill-typed field raises one
        :class:`BebiasError` line naming ``path``."""
        def need(cond: bool, what: str) -> None:
            if not cond:
                raise BebiasError(f"malformed probe metrics: {what}", path)

        need(isinstance(obj, dict), "not a JSON object")
        kind = obj.get("kind", KIND)
        need(kind == KIND, f"kind {kind!r} is not a probe's ({KIND!r})")
        version = obj.get("schema_version", 1)
        need(isinstance(version, int) and not isinstance(version, bool) and version >= 1,
             f"schema_version {version!r} is not a positive integer")
        if version > SCHEMA_VERSION:
            raise BebiasError(f"metrics.json schema version {version} is newer than this bebias reads "
                              f"({SCHEMA_VERSION}); upgrade bebias to read it", path)
        for k in ("provenance", "headline"):
            need(k in obj, f"no {k!r}")
            need(isinstance(obj[k], dict), f"{k!r} is not an object")
        pv = obj["provenance"]
        need(isinstance(pv.get("checkpoint_sha256") or pv.get("checkpoint"), str),
             "provenance names no checkpoint (checkpoint / checkpoint_sha256)")
        need(isinstance(pv.get("split"), str), "provenance has no 'split'")
        for k in ("videos",) + PER_VARIANT:
            need(isinstance(obj.get(k, {}), dict), f"{k!r} is not an object")
        for k in PER_VARIANT:
            for name, b in obj.get(k, {}).items():
                need(isinstance(b, dict), f"{k}[{name!r}] is not an object")
        for k in OPTIONAL + ("background_reliance",):
            need(obj.get(k) is None or isinstance(obj[k], dict), f"{k!r} is not an object or null")
        known = {f.name for f in fields(cls)} - {"extra", "has_reliance_key", "schema_version"}
        kw = {k: obj[k] for k in known if k in obj}
        extra = {k: v for k, v in obj.items() if k not in known and k not in ("kind", "schema_version")}
        return cls(**kw, schema_version=version, extra=extra, has_reliance_key="background_reliance" in obj)

    # -- the typed view ---------------------------------------------------------------

    @property
    def classes(self) -> list[str]:
        return list(self.provenance.get("classes") or [])

    @property
    def split(self) -> str:
        return self.provenance["split"]

    def reliance_block(self) -> dict | None:
        """The headline score's block, None where undefined or of the pre-anchored definition
        (the mean of sufficiency, necessity and dominance: another scale, not shown)."""
        rel = self.background_reliance
        return rel if isinstance(rel, dict) and "definition" in rel else None

    def reliance_parts(self) -> dict[str, tuple[Estimate, Estimate]]:
        """Each part of the score: (its estimate, its null on this probe run)."""
        comps = (self.reliance_block() or {}).get("components") or {}
        return {k: (Estimate.of(c), Estimate.of(c.get("null"), c.get("n")))
                for k, c in comps.items() if isinstance(c, dict)}

    def scalars(self, report: bool = False) -> dict[str, Estimate]:
        """Every headline metric the file defines (:data:`SCALARS`, then the score's parts as
        ``reliance_<part>`` and ``reliance_<part>_null``); a metric present with a null value
        is kept (it shows as "–"). ``report``: only the report's columns."""
        out: dict[str, Estimate] = {}
        for s in SCALARS:
            if report and not s.report:
                continue
            e = s.read(self)
            if e is not None:
                out[s.key] = e
            if s.key == "reliance":
                for k, (part, null) in self.reliance_parts().items():
                    out[f"reliance_{k}"], out[f"reliance_{k}_null"] = part, null
        return out

    def variants(self) -> list[str]:
        """The probe variants with an accuracy block, in the file's order."""
        return list(self.accuracy)

    def top1(self, variant: str) -> Estimate:
        acc = self.accuracy.get(variant) or {}
        return Estimate.of(acc.get("top1"), acc.get("n"))

    def variant_row(self, variant: str) -> dict[str, Estimate]:
        """The per-variant numbers the CLI table shows: top1, drop, bg_follow, agreement, similarity."""
        return {"top1": self.top1(variant), "drop": Estimate.of((self.drop.get(variant) or {}).get("value")),
                "bg_follow": Estimate.of(((self.conflict.get(variant) or {}).get("background_follow") or {})),
                "agreement": Estimate.of(((self.agreement.get(variant) or {}).get("agreement") or {})),
                "similarity": Estimate.of((self.similarity.get(variant) or {}).get("value"))}

    def follow(self, variant: str) -> tuple[Estimate, Estimate] | None:
        """(foreground-follow, background-follow) on a conflict variant, None if not probed."""
        c = self.conflict.get(variant)
        if not c:
            return None
        return Estimate.of(c.get("foreground_follow")), Estimate.of(c.get("background_follow"))

    def per_class_follow(self, variant: str) -> dict[str, float | None]:
        """Per true class: the share of ``variant``'s clips decided by the background's class."""
        pc = (((self.conflict.get(variant) or {}).get("per_class") or {}).get("background_follow") or {})
        return {str(k): _num(v) for k, v in pc.items()}

    def swaps_without_donor(self) -> int | None:
        """Swaps left out for want of a donor of another motion and scene class (schema 2)."""
        if not isinstance(self.swaps, dict):
            return None
        return int(sum(v for v in (self.swaps.get("without_donor") or {}).values() if isinstance(v, int)))
