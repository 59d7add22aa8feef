"""The one progress event of every long operation, and the one callback type that receives it.

A long operation (a training loop, a probe pass, rendering the benchmark, writing a test
set, an evaluation, Grad-CAM, a demo stage) takes ``progress: ProgressFn | None`` and calls
it with a :class:`Progress` whenever it has done a unit of work. Computing floors only emit
events; drawing them (bars on a terminal, timestamped lines in a log) is the CLI's
(:mod:`bebias.cli.progress`). This module is on the lowest floor so every floor can emit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` units (videos, steps, batches) of ``stage`` are finished.

    ``total`` is None where it is not known in advance. ``info``: a few live numbers or
    words about the stage (a training step's ``loss`` and ``clips_per_s``), shown next to
    the count. Events of one stage come in order; the stage is finished when
    ``done == total``.
    """

    stage: str
    done: int
    total: int | None = None
    info: Mapping[str, float | str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "info", MappingProxyType(dict(self.info)))  # frozen all the way down

    def __reduce__(self) -> tuple:  # picklable (a mappingproxy is not): events cross process queues
        return (Progress, (self.stage, self.done, self.total, dict(self.info)))

    @property
    def fraction(self) -> float | None:
        """``done / total`` (None with no or zero total)."""
        return self.done / self.total if self.total else None


#: the callback every long operation takes
ProgressFn = Callable[[Progress], None]


def scoped(progress: ProgressFn | None, prefix: str) -> ProgressFn | None:
    """``progress`` with every event's stage put under ``prefix`` (``"biased"`` +
    ``"fine-tuning"`` -> ``"biased fine-tuning"``): one operation run several times by a
    larger one (a grid of trainings, the demo's models) keeps its runs apart. None stays None."""
    if progress is None:
        return None
    return lambda p: progress(replace(p, stage=f"{prefix} {p.stage}"))
