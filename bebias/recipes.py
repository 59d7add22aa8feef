"""The pre-training recipe's rules that its results carry: which extra negative a run used and
the method label a table shows for it.

One definition, below both :mod:`bebias.training` (``PretrainConfig.use_intra_negative`` and
``PretrainConfig.label`` call these) and :mod:`bebias.reporting` (which reads a checkpoint's
recorded config and may not import training), so the label a report prints is the rule the
run was trained by.
"""

from __future__ import annotations

#: pre-training method of a bebias checkpoint -> the name the paper and ``bebias compare`` use
METHOD_NAMES = {"moco": "moco", "be": "moco+be", "fame": "moco+fame"}


def uses_intra_negative(method: str | None, intra_negative: bool | None, other_negative: bool = False) -> bool:
    """Whether a run appends an intra-video negative: ``intra_negative`` as set, and where it is
    None (not set) the method's default: on for ``be`` (the official recipe) unless the extra
    negative is taken from another video (``other_negative``)."""
    if intra_negative is None:
        return method == "be" and not other_negative
    return bool(intra_negative)


def pretrain_label(method: str | None, intra_negative: bool | None = None, other_negative: bool = False) -> str:
    """``moco`` / ``moco+be`` / ``moco+fame``, then ``+intra-neg`` or ``+other-neg`` for the
    extra negative the run used (an unknown method is shown as recorded, ``?`` if none)."""
    name = METHOD_NAMES.get(method or "", method or "?")
    if method in METHOD_NAMES and uses_intra_negative(method, intra_negative, other_negative):
        name += "+intra-neg"
    if other_negative:
        name += "+other-neg"
    return name


def label_from_config(method: str | None, config: dict | None) -> str:
    """:func:`pretrain_label` of a recorded config (a checkpoint's ``config`` entry)."""
    cfg = config or {}
    return pretrain_label(method, cfg.get("intra_negative"), bool(cfg.get("other_negative")))
