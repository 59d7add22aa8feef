"""What every training run is configured by: data, model, clip spec, optimisation, output.

``PretrainConfig`` and ``FinetuneConfig`` extend :class:`RunConfig` with their own fields
and defaults. A config is plain data: it round-trips through ``to_dict``/``from_dict`` (a
TOML/JSON file, or a checkpoint's ``config`` entry) and is compared on ``--resume``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import asdict, dataclass
from typing import TypeVar

import torch

from bebias.data.transforms import KINETICS_MEAN, KINETICS_STD, ClipSpec
from bebias.errors import BebiasError
from bebias.models.tv_transformers import check_fixed_input
from bebias.parse import read_json, read_toml

C = TypeVar("C", bound="RunConfig")


@dataclass
class RunConfig:
    data: str = "synthetic"
    dataset: str | None = None
    split: str = "train"
    fold: int = 1
    annotations: str | None = None
    frame_template: str | None = None
    arch: str = "small3d"
    pretrained: bool = False  # torchvision's Kinetics-400 weights, from torch's local cache (never downloaded)
    frames: int = 8
    stride: int = 2
    size: int = 32
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
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
    workers: int | None = None  # DataLoader processes; None: runtime.resolve_workers decides
    seed: int = 0
    out: str = "runs/run"

    @property
    def clip_spec(self) -> ClipSpec:
        return ClipSpec(self.frames, self.stride, self.size, tuple(self.mean), tuple(self.std))

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls: type[C], d: dict) -> C:
        """Build from plain data; unknown keys and invalid values are user errors."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise BebiasError(f"unknown config keys: {', '.join(sorted(unknown))}")
        cfg = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.optimizer not in ("adamw", "sgd"):
            raise BebiasError(f"--optimizer must be adamw or sgd, got {self.optimizer!r}")
        if self.precision not in ("fp32", "bf16"):
            raise BebiasError(f"--precision must be fp32 or bf16, got {self.precision!r}")
        if self.max_skips < 0:
            raise BebiasError(f"--max-skips must be >= 0, got {self.max_skips}")
        if self.lr_schedule not in ("cosine", "step"):
            raise BebiasError(f"--lr-schedule must be cosine or step, got {self.lr_schedule!r}")
        if not (isinstance(self.lr_steps, tuple) and all(isinstance(m, int) and m >= 0 for m in self.lr_steps)
                and list(self.lr_steps) == sorted(self.lr_steps)):
            raise BebiasError(f"--lr-steps must be ascending epochs >= 0, got {self.lr_steps!r}")
        if not self.lr_gamma > 0:
            raise BebiasError(f"--lr-gamma must be > 0, got {self.lr_gamma}")
        if not 0.0 <= self.warmup < 1.0:
            raise BebiasError(f"--warmup must be in [0, 1), got {self.warmup}")
        check_fixed_input(self.arch, self.frames, self.size)  # MViT: 16 x 224 only

    def make_optimizer(self, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=0.9, weight_decay=self.weight_decay)
        return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)


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
