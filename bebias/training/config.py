"""What every training run is configured by: data, model, clip spec, optimisation, output.

``PretrainConfig`` and ``FinetuneConfig`` extend :class:`RunConfig` with their own fields
and defaults. A config is plain data: it round-trips through ``to_dict``/``from_dict`` (a
TOML/JSON file, or a checkpoint's ``config`` entry) and is compared on ``--resume``.

The clip a run trains on is one :class:`~bebias.data.transforms.ClipSpec` (``cfg.clip``, also
what the checkpoint records as its input spec). Files, flags and the Python API name its
parts flat, as always (``frames``, ``stride``, ``size``, ``mean``, ``std``, and ``resize``,
the short side for evaluation): ``RunConfig(frames=4, size=32)`` builds the clip, and
``to_dict`` writes them flat in their old place.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

from bebias.data.transforms import KINETICS_MEAN, KINETICS_STD, ClipSpec
from bebias.errors import BebiasError
from bebias.limits import MAX_EPOCHS, MAX_WORKERS, check_float, check_int, check_memory, check_seed, clip_bytes
from bebias.models.device import check_device
from bebias.models.presets import Preset, preset_for
from bebias.models.tv_transformers import FIXED_INPUT, check_fixed_input
from bebias.parse import read_json, read_toml

C = TypeVar("C", bound="RunConfig")

#: the clip's parts under the flat names that config files, flags and a checkpoint's config use
CLIP_KEYS: dict[str, object] = {"frames": int, "stride": int, "size": int, "mean": tuple[float, float, float],
                                "std": tuple[float, float, float], "resize": int}


def _default_clip() -> ClipSpec:
    return ClipSpec(frames=8, stride=2, size=32, mean=KINETICS_MEAN, std=KINETICS_STD)


def clip_preset(arch: object, pretrained: object) -> Preset | None:
    """The preset a run's clip starts from instead of the CPU-sized default: the weights'
    own (:func:`bebias.models.presets.preset_for`) with ``--pretrained``, so that e.g. Swin3D's
    Kinetics weights see their mean/std (0.45, 0.225), not r3d's; and for an architecture
    that takes one clip size only (MViT: 16 x 224) even from random init. None otherwise."""
    name = str(arch or "").strip().lower()
    if pretrained is True or name in FIXED_INPUT:
        return preset_for(name)
    return None


def _base_clip(kw: dict[str, Any]) -> ClipSpec:
    p = clip_preset(kw.get("arch"), kw.get("pretrained"))
    if p is None:
        return _default_clip()
    return ClipSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in p.spec.items()})


class _FlatClipNames(type):
    """Lets every run config take its clip's parts by their flat names (``frames=4, size=32``):
    they replace those of ``clip=`` (or of the default clip: :func:`clip_preset`'s where there
    is one, else 8 x 32 px), each checked for its type first."""

    def __call__(cls, *args: Any, **kw: Any) -> Any:
        flat = {k: kw.pop(k) for k in list(kw) if k in CLIP_KEYS}
        if "clip" not in kw and not args:
            kw["clip"] = _base_clip(kw)
        if flat:
            for k, v in flat.items():
                if not _type_ok(v, CLIP_KEYS[k]):
                    raise BebiasError(f"--{k} (config key {k!r}) must be {_type_name(CLIP_KEYS[k])}, got {v!r}")
            base = kw.get("clip") or _default_clip()
            kw["clip"] = dataclasses.replace(base, **{k: tuple(v) if isinstance(v, list) else v
                                                      for k, v in flat.items()})
        return super().__call__(*args, **kw)


@dataclass
class RunConfig(metaclass=_FlatClipNames):
    data: str = "synthetic"
    dataset: str | None = None
    split: str = "train"
    fold: int = 1
    annotations: str | None = None
    frame_template: str | None = None
    arch: str = "small3d"
    pretrained: bool = False  # torchvision's Kinetics-400 weights, from torch's local cache (never downloaded)
    #: the clip: frames x stride, size, mean/std, resize (flat names in files and flags: CLIP_KEYS)
    clip: ClipSpec = field(default_factory=_default_clip)
    crop_scale: tuple[float, float] = (0.5, 1.0)
    hflip: bool | None = None  # None: the data's own answer (False for the benchmark)
    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 16
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup: float = 0.1  # fraction of steps with linearly rising LR, then cosine decay
    lr_schedule: str = "cosine"  # cosine (warm-up + cosine) | step (x lr_gamma at each epoch of lr_steps)
    lr_steps: tuple[int, ...] = (120, 160)  # epochs (0-based) at which the step schedule decays
    lr_gamma: float = 0.1
    precision: str = "fp32"
    max_skips: int = 0  # bad steps (non-finite / outlier gradient) skipped before the run stops
    device: str = "auto"
    workers: int | None = None  # DataLoader processes; None: bebias.data.loader.resolve_workers decides
    seed: int = 0
    out: str = "runs/run"

    def __post_init__(self) -> None:
        # every entry point (flags, a config file, the Python API) goes through here
        self.validate()

    #: clips decoded per sample of a batch (pre-training: two views, and an extra negative)
    clips_per_sample = 1

    @property
    def clip_spec(self) -> ClipSpec:
        """The clip (``self.clip``), under the name the training code reads it by."""
        return self.clip

    def to_dict(self) -> dict:
        """Plain data, the clip's parts flat where they have always been (``resize`` only when set)."""
        out: dict = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "clip":
                out.update(v.to_dict())
            else:
                out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def from_dict(cls: type[C], d: dict) -> C:
        """Build from plain data (the clip's parts by their flat names, :data:`CLIP_KEYS`);
        unknown keys and invalid values are user errors."""
        names = ({f.name for f in dataclasses.fields(cls)} - {"clip"}) | set(CLIP_KEYS)
        unknown = set(d) - names
        if unknown:
            raise BebiasError(f"unknown config keys: {', '.join(sorted(unknown))}")
        return cls(**d)  # __post_init__ validates

    def validate(self) -> None:
        """Refuse (one line, :class:`~bebias.errors.BebiasError`) a value of the wrong type or
        out of range; also run again by ``pretrain``/``finetune`` (a config edited in place)."""
        _check_types(self)
        check_int("--fold", self.fold)
        spec = self.clip  # frames, stride, size, and one clip's memory: checked when it was made
        if not isinstance(spec, ClipSpec):
            raise BebiasError(f"clip must be a ClipSpec (or give frames, stride, size, mean, std), got {spec!r}")
        check_int("--epochs", self.epochs, 1, MAX_EPOCHS)
        if self.max_steps is not None:
            check_int("--max-steps", self.max_steps, hint=", or omit it to run --epochs epochs")
        check_int("--batch-size", self.batch_size)
        check_memory(self.batch_size * self.clips_per_sample * clip_bytes(spec.frames, spec.size),
                     f"a batch of --batch-size {self.batch_size} x {self.clips_per_sample} clip(s) of --frames "
                     f"{spec.frames} x --size {spec.size}")
        check_float("--lr", self.lr, positive=True)
        check_float("--weight-decay", self.weight_decay, minimum=0.0)
        check_float("--lr-gamma", self.lr_gamma, positive=True)
        lo, hi = (check_float("--crop-scale", v, positive=True, maximum=1.0) for v in self.crop_scale)
        if lo > hi:
            raise BebiasError(f"--crop-scale must be (low, high) with low <= high, got {self.crop_scale}")
        check_seed("--seed", self.seed)
        check_int("--max-skips", self.max_skips, 0)
        if self.workers is not None:
            check_int("--workers", self.workers, 0, MAX_WORKERS)
        check_device(self.device)
        if not self.out:
            raise BebiasError("--out must be a directory path, got ''")
        if self.optimizer not in ("adamw", "sgd"):
            raise BebiasError(f"--optimizer must be adamw or sgd, got {self.optimizer!r}")
        if self.precision not in ("fp32", "bf16"):
            raise BebiasError(f"--precision must be fp32 or bf16, got {self.precision!r}")
        if self.lr_schedule not in ("cosine", "step"):
            raise BebiasError(f"--lr-schedule must be cosine or step, got {self.lr_schedule!r}")
        if not (isinstance(self.lr_steps, tuple) and all(isinstance(m, int) and m >= 0 for m in self.lr_steps)
                and list(self.lr_steps) == sorted(self.lr_steps)):
            raise BebiasError(f"--lr-steps must be ascending epochs >= 0, got {self.lr_steps!r}")
        if not 0.0 <= check_float("--warmup", self.warmup) < 1.0:
            raise BebiasError(f"--warmup must be in [0, 1), got {self.warmup}")
        check_fixed_input(self.arch, spec.frames, spec.size)  # MViT: 16 x 224 only

    def make_optimizer(self, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=0.9, weight_decay=self.weight_decay)
        return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)


def _type_ok(value: object, tp: object) -> bool:
    """Whether ``value`` is of the (resolved) field type ``tp``: str, int, float (an int too),
    bool, None, unions of these, and tuples (fixed length, or ``tuple[X, ...]``)."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in args)
    if typing.get_origin(tp) is tuple:
        if not isinstance(value, (tuple, list)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_type_ok(v, args[0]) for v in value)
        return len(value) == len(args) and all(_type_ok(v, a) for v, a in zip(value, args))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    return True


def _type_name(tp: object) -> str:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join("omitted" if a is type(None) else _type_name(a) for a in args)
    if typing.get_origin(tp) is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_type_name(args[0]).removeprefix('an ').removeprefix('a ')}s"
        return f"a list of {len(args)} {_type_name(args[0]).removeprefix('an ').removeprefix('a ')}s"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


@functools.cache
def _field_types(cls: type) -> dict[str, object]:
    return typing.get_type_hints(cls)


def _check_types(cfg: RunConfig) -> None:
    """Every field of ``cfg`` of its declared type (a TOML ``epochs = "ten"`` or ``lr = [1]``
    is one line naming the key); lists given for tuple fields become tuples."""
    for f in dataclasses.fields(cfg):
        tp, value = _field_types(type(cfg))[f.name], getattr(cfg, f.name)
        if not _type_ok(value, tp):
            raise BebiasError(f"--{f.name.replace('_', '-')} (config key {f.name!r}) must be {_type_name(tp)}, "
                              f"got {value!r}")
        if isinstance(value, list):
            setattr(cfg, f.name, tuple(value))


def _read_config(path: str) -> dict:
    if not os.path.exists(path):
        raise BebiasError("config file does not exist", path)
    return read_toml(path, "config") if path.endswith(".toml") else read_json(path, "config")


def config_from_file(path: str) -> dict:
    """A TOML or JSON config file -> dict of config fields (its ``[reference]`` table, the
    published numbers and cost of the recipe, is documentation: see :func:`config_reference`)."""
    return {k: v for k, v in _read_config(path).items() if k != "reference"}


def config_reference(path: str) -> dict:
    """The config file's ``[reference]`` table (``source``, ``reported``, ``cost``...), or {}."""
    ref = _read_config(path).get("reference", {})
    if not isinstance(ref, dict):
        raise BebiasError("'reference' must be a table", path)
    return ref
