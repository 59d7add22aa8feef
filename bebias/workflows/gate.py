"""The demo's positive-control gate and the conclusions a run may draw (pure functions).

A probe that calls a model "background-reliant" is believable only once it has been shown
a model that is not: ``supervised-unbiased``, trained on ``train-unbiased`` (background
independent of the class) until it reads the motion. If that model does not reach
:data:`THRESHOLD` top-1 on ``conflict`` (videos whose background points to another
class), it has not learnt the motion, a low score for it means nothing, and the demo says
**positive control failed** and draws no conclusion. At ``--fast`` size no model can learn
anything, so the gate is **not checked** there and no conclusion is drawn either.

Both functions read plain numbers (the demo's rows, fractions in [0, 1]) and return plain
data, so they are tested on fabricated metrics (``tests/test_demo_gate.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

#: the model the gate checks
POSITIVE_CONTROL = "supervised-unbiased"
#: the background-follower it is compared with
BIASED = "supervised-biased"
#: conflict top-1 the positive control must reach (the calibration recipe reaches 0.96;
#: chance is 1/K = 0.125 at K = 8)
THRESHOLD = 0.85

PASSED, FAILED, NOT_CHECKED = "passed", "failed", "not checked"


@dataclass(frozen=True)
class Gate:
    """The gate's verdict. ``status``: passed | failed | not checked; ``conflict_top1``: what
    the positive control reached in this run (None where it was not measured)."""

    status: str
    control: str
    threshold: float
    conflict_top1: float | None
    message: str

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _known(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def positive_control_gate(conflict_top1: float | None, *, checked: bool = True, threshold: float = THRESHOLD,
                          control: str = POSITIVE_CONTROL, why_unchecked: str = "at --fast size") -> Gate:
    """Did the positive control learn the motion? ``conflict_top1``: its top-1 on ``conflict``
    in [0, 1] (None / NaN: not measured, which fails). ``checked=False``: the run is too small
    for the check to mean anything (``why_unchecked`` says why); the gate is then neither
    passed nor failed, and no conclusion is drawn."""
    got = f"{100 * conflict_top1:.1f} %" if _known(conflict_top1) else "not measured"
    need = f"{100 * threshold:.0f} %"
    if not checked:
        return Gate(NOT_CHECKED, control, threshold, conflict_top1 if _known(conflict_top1) else None,
                    f"positive control not checked {why_unchecked} ({control} on conflict: {got}; "
                    f"the check needs >= {need} at full size): no conclusion is drawn")
    if _known(conflict_top1) and conflict_top1 >= threshold:  # type: ignore[operator]
        return Gate(PASSED, control, threshold, conflict_top1,
                    f"positive control passed: {control} reached {got} top-1 on conflict (>= {need})")
    return Gate(FAILED, control, threshold, conflict_top1 if _known(conflict_top1) else None,
                f"positive control failed: {control} reached {got} top-1 on conflict (needs >= {need}), so it has "
                f"not learnt the motion and this run cannot tell a motion model from a background follower: "
                f"no conclusion is drawn")


def conclusions(gate: Gate, rows: Sequence[Mapping[str, Any]], *, biased: str = BIASED) -> list[str]:
    """What this run supports, one sentence each; the gate's message alone unless it passed.

    ``rows``: the demo's rows (``model``, ``reliance``, ``reliance_ci`` = [low, high] over
    test videos, ``reliance_no_signal``, ``conflict``, ``conflict_bg_follow``). Only the
    biased model is compared with the positive control, by their reliance CIs over test
    videos; one trained model each, so a difference is not one across seeds."""
    if not gate.passed:
        return [gate.message]
    by = {r["model"]: r for r in rows}
    out = [gate.message]
    ctrl, bia = by.get(gate.control), by.get(biased)
    if ctrl is None or bia is None:
        return out + [f"no comparison: the run has no {biased if bia is None else gate.control} row"]

    def score(r: Mapping[str, Any]) -> str:
        v, (lo, hi) = r.get("reliance"), (r.get("reliance_ci") or [None, None])
        if not _known(v):
            return "not measured"
        return f"{v:.2f}" + (f" [{lo:.2f}, {hi:.2f}]" if _known(lo) and _known(hi) else "") + (
            " (no signal)" if r.get("reliance_no_signal") else "")

    follow = bia.get("conflict_bg_follow")
    if _known(follow):
        out.append(f"{biased} names the background's class on {100 * follow:.0f} % of conflict videos "
                   f"({100 * bia['conflict']:.1f} % top-1 there)")
    b_lo = (bia.get("reliance_ci") or [None, None])[0]
    c_hi = (ctrl.get("reliance_ci") or [None, None])[1]
    if _known(b_lo) and _known(c_hi) and b_lo > c_hi and not bia.get("reliance_no_signal"):
        out.append(f"the probe tells them apart: background reliance {score(bia)} for {biased} against "
                   f"{score(ctrl)} for {gate.control} (95 % CIs over test videos apart; one trained model each, "
                   f"so not a difference across seeds)")
    else:
        out.append(f"the probe does not tell them apart in this run: background reliance {score(bia)} for "
                   f"{biased} against {score(ctrl)} for {gate.control} (95 % CIs over test videos not apart)")
    return out
