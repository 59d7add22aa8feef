"""What every training run is configured by: data, model, clip spec, optimisation, output.

``PretrainConfig`` and ``FinetuneConfig`` extend :class:`RunConfig` with their own fields
and defaults. A config is plain data: it round-trips through ``to_dict``/``from_dict`` (a
TOML/JSON file, or a checkpoint's ``config`` entry) and is compared on ``--resume``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import asdict, dataclass
from typing import TypeVar

import torch

from bebias.data.transforms import KINETICS_MEAN, KINETICS_STD, ClipSpec
from bebias.errors import BebiasError

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
    pretrained: bool = False  # torchvision weights (needs the internet)
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

    def make_optimizer(self, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=0.9, weight_decay=self.weight_decay)
        return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)


def config_from_file(path: str) -> dict:
    """A TOML or JSON config file -> dict of config fields."""
    if not os.path.exists(path):
        raise BebiasError("config file does not exist", path)
    try:
        if path.endswith(".toml"):
            import tomllib

            with open(path, "rb") as f:
                return tomllib.load(f)
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except ValueError as e:
        raise BebiasError(f"malformed config ({e})", path) from None
