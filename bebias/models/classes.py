"""Which model output is which data class: by name where both sides have names.

A bebias checkpoint records its class names in output order (``classes``); a dataset has
its own order (a manifest of class-name labels sorts them, the embedded benchmark and
integer-label manifests keep their indices). Matching the outputs to the data by index
when both sides have names gives silently wrong numbers as soon as the two orders differ,
so :func:`match_classes` maps by name, refuses sets that differ, and falls back to index
order only where one side has no names (a foreign state_dict, an archive without
``bebias.json``, integer labels without ``class_name``), recording why.

Used by ``bebias probe`` (:mod:`bebias.probing.run`), ``bebias eval``
(:mod:`bebias.training.evaluate`) and ``bebias cam`` (:mod:`bebias.workflows.cam`).
``bebias testset`` runs no model, and ``bebias finetune --init`` takes only the backbone of
a classifier (a new head is trained), so neither has outputs to match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bebias.errors import BebiasError


def is_named(classes: Sequence[Any] | None) -> bool:
    """True if ``classes`` are real names: not missing, and not the placeholders
    ``"0", "1", ...`` that integer labels without names get."""
    if not classes:
        return False
    return [str(c) for c in classes] != [str(i) for i in range(len(classes))]


def _few(names: Sequence[str], n: int = 4) -> str:
    names = list(names)
    return ", ".join(repr(c) for c in names[:n]) + (f" (+{len(names) - n} more)" if len(names) > n else "")


@dataclass(frozen=True)
class ClassMatch:
    """How a model's K output columns map to the data's K classes.

    ``columns``: for each data class j, the model's output column (None: column j, the
    identity). ``by``: ``"name"`` or ``"index"``; ``reason``: why index order (None when
    matched by name). ``model_classes``: the model's names in output order, where it has
    them.
    """

    columns: tuple[int, ...] | None
    by: str
    reason: str | None = None
    model_classes: tuple[str, ...] | None = None

    @property
    def reordered(self) -> bool:
        return self.columns is not None

    def apply(self, out: np.ndarray) -> np.ndarray:
        """(N, K) outputs in the model's order -> (N, K) in the data's class order."""
        return out[:, list(self.columns)] if self.columns is not None else out

    def record(self) -> dict[str, Any]:
        """For metrics / provenance: how the outputs were matched to the classes."""
        d: dict[str, Any] = {"by": self.by, "reordered": self.columns is not None}
        if self.reason:
            d["reason"] = self.reason
        return d

    def message(self, data_classes: Sequence[str]) -> str | None:
        """The line to print when the outputs were permuted (None otherwise)."""
        if self.columns is None:
            return None
        return (f"class order: the model's outputs ({_few(self.model_classes or ())}) are matched by name to the "
                f"data's classes ({_few(data_classes)})")


def match_classes(model_classes: Sequence[Any] | None, num_outputs: int, data_classes: Sequence[str], *,
                  checkpoint: str, data: str, names_from: str = "the checkpoint's class names") -> ClassMatch:
    """Match ``num_outputs`` model outputs (named ``model_classes`` in output order, or
    None) to ``data_classes`` (the data's names by label index).

    Raises :class:`BebiasError` (naming ``checkpoint``) when the counts differ, when the
    model's names are malformed (not one distinct string per output), or when both sides
    have names and the sets differ (a few on each side are named). ``data`` describes the
    data in the message (e.g. ``"split 'test' of x.csv"``), ``names_from`` where the
    model's names came from (e.g. ``"--classes"``).
    """
    data_classes = [str(c) for c in data_classes]
    K = len(data_classes)
    if int(num_outputs) != K:
        raise BebiasError(f"the checkpoint has {num_outputs} classes but {data} has {K}", checkpoint)
    if model_classes is None or (isinstance(model_classes, (list, tuple)) and len(model_classes) == 0):
        return ClassMatch(None, "index", "the checkpoint records no class names")
    if (not isinstance(model_classes, (list, tuple)) or not all(isinstance(c, str) for c in model_classes)
            or len(model_classes) != K or len(set(model_classes)) != K):
        raise BebiasError(f"{names_from} are not {K} distinct names for the model's {K} outputs "
                          f"(got {str(model_classes)[:120]})", checkpoint)
    names = tuple(model_classes)
    if not is_named(names):
        return ClassMatch(None, "index", "the checkpoint's classes have no names (integer labels)")
    if not is_named(data_classes):
        return ClassMatch(None, "index", "the data's classes have no names (integer labels)", names)
    if set(names) != set(data_classes):
        only_model = [c for c in names if c not in set(data_classes)]
        only_data = [c for c in data_classes if c not in set(names)]
        raise BebiasError(f"the model's classes are not the classes of {data}: only the model has "
                          f"{_few(only_model)}; only the data has {_few(only_data)}", checkpoint)
    columns = tuple(names.index(c) for c in data_classes)
    if columns == tuple(range(K)):
        return ClassMatch(None, "name", None, names)
    return ClassMatch(columns, "name", None, names)
