"""Self-supervised pre-training: MoCo, MoCo + Background Erasing, MoCo + FAME.

One step (B clips, two augmented views of the SAME frames each):

- ``moco``: query = view 1, key = view 2.
- ``be``: query = view 1 with a static frame mixed into every frame,
  ``(1-λ)·x_j + λ·x_k`` (``bebias.distract.background_erasing``, the official recipe:
  k a random frame of the same clip, λ ~ U[0, λ_max) per batch); key = the clean view 2.
- ``fame``: query = the motion-derived foreground of view 1 pasted onto another clip's
  background (FAME, the peer baseline); key = view 2.

Every component is its own switch: ``intra_negative`` (a clip of the same video at another
start, through the query encoder, appended as one extra negative per sample; default on for
``be`` as in the official code), ``other_negative`` (instead a clip of another video, as the
official MoCo baseline), ``be_source`` (static frame from the same clip or another
one), ``be_per_clip``, ``symmetric``, ``mlp``, ``intra_min_gap``.

Two calibration oracles of benchmark v2 (``oracle``, with ``method="moco"``): ``actor-swap``
(the query is the ground-truth actor on another video's plate: must help) and
``one-frame`` (the query is one frame repeated: must hurt).

Outputs in ``out``: ``last.pth`` (everything needed to resume exactly: both encoders, the
queue and its pointer, optimizer, step, RNG), ``model.pth`` (the final pre-trained
checkpoint), ``metrics.jsonl``, ``config.json``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bebias import distract
from bebias.checkpoint import CheckpointMeta
from bebias.data.dataset import ClipDataset
from bebias.data.open import Data
from bebias.data.transforms import AUGMENTS, normalize, train_transform
from bebias.errors import BebiasError
from bebias.limits import check_float, check_int, check_memory
from bebias.models.backbones import build_backbone
from bebias.models.moco import MoCo
from bebias.progress import ProgressFn
from bebias.recipes import pretrain_label, uses_intra_negative
from bebias.seeds import torch_seed
from bebias.training import loop, run_common
from bebias.training.config import RunConfig
from bebias.training.run_common import RunResult

METHODS = ("moco", "be", "fame")
#: benchmark v2's calibration oracles (docs/benchmark-v2-protocol.md), MoCo whose query is
#: - ``actor-swap``: the ground-truth actor and its motion on ANOTHER video's plate and camera
#:   (embedded benchmark only; must help: the scene cannot match query and key);
#: - ``one-frame``: one frame of view 1 repeated T times (must hurt: the query has no motion).
ORACLES = ("none", "actor-swap", "one-frame")


@dataclass
class PretrainConfig(RunConfig):
    """Everything a pre-training run depends on (saved in its checkpoints).

    The defaults are CPU-sized for the embedded benchmark (minutes on 2 cores); the
    official recipe for real datasets is ``configs/be-official.toml``.
    """

    method: str = "be"
    be_lambda_max: float = 0.3
    be_per_clip: bool = False
    be_source: str = "same"  # same | other: the static frame from the same clip or another clip of the batch
    intra_negative: bool | None = None  # None: on for "be" (official recipe), off for "moco"/"fame"
    other_negative: bool = False  # the extra negative is a clip of ANOTHER video (the official MoCo baseline's)
    intra_min_gap: int = 2  # frames between the starts of a clip and its intra-video negative
    oracle: str = "none"  # none | actor-swap | one-frame (ORACLES; with --method moco)
    augment: str = "default"  # default | official (FingerRec/BE's rotation, resize, random crop, colour jitter)
    dim: int = 128
    queue_size: int = 1024
    momentum: float = 0.99  # 0.999 in the paper's 100s of epochs; a short CPU run needs a faster key encoder
    temperature: float = 0.07
    mlp: bool = False
    symmetric: bool = False
    shuffle_bn: bool = True
    epochs: int = 6
    batch_size: int = 32
    warmup: float = 0.05
    precision: str = "fp32"
    out: str = "runs/train"

    @property
    def use_intra_negative(self) -> bool:
        return uses_intra_negative(self.method, self.intra_negative, self.other_negative)

    @property
    def label(self) -> str:
        """The method label reports and ``bebias compare`` show (``moco+be+intra-neg``, ...)."""
        return pretrain_label(self.method, self.intra_negative, self.other_negative)

    @property
    def extra_negative(self) -> bool:
        """One extra negative clip per sample (intra- or other-video): the dataset decodes it."""
        return self.use_intra_negative or self.other_negative

    @property
    def clips_per_sample(self) -> int:  # type: ignore[override]
        return 2 + self.extra_negative

    def validate(self) -> None:
        super().validate()
        check_int("--dim", self.dim)
        check_int("--queue-size", self.queue_size)
        check_memory(4 * self.queue_size * self.dim, f"a MoCo queue of --queue-size {self.queue_size} x {self.dim}")
        check_float("--momentum", self.momentum, minimum=0.0, maximum=1.0)
        check_float("--temperature", self.temperature, positive=True)
        if self.method not in METHODS:
            raise BebiasError(f"--method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.be_source not in ("same", "other"):
            raise BebiasError(f"--be-source must be 'same' or 'other', got {self.be_source!r}")
        if not 0.0 <= check_float("--be-lambda-max", self.be_lambda_max) <= 1.0:
            raise BebiasError(f"--be-lambda-max must be in [0, 1], got {self.be_lambda_max}")
        if self.other_negative and self.use_intra_negative:
            raise BebiasError("one extra negative per sample: --intra-negative or --other-negative, not both")
        if self.other_negative and self.batch_size < 2:
            raise BebiasError("--other-negative takes the negative from another video of the batch: "
                              f"--batch-size must be >= 2, got {self.batch_size}")
        if self.oracle not in ORACLES:
            raise BebiasError(f"--oracle must be one of {', '.join(ORACLES)}, got {self.oracle!r}")
        if self.oracle != "none" and self.method != "moco":
            raise BebiasError(f"--oracle {self.oracle} replaces MoCo's query: it needs --method moco, "
                              f"got {self.method!r}")
        if self.intra_min_gap < 1:
            raise BebiasError(f"--intra-min-gap must be >= 1 frame, got {self.intra_min_gap}")
        if self.augment not in AUGMENTS:
            raise BebiasError(f"--augment must be one of {', '.join(AUGMENTS)}, got {self.augment!r}")
        if self.augment == "official" and self.hflip:
            raise BebiasError("--augment official has no horizontal flip (as the official code); drop hflip")


def make_query(x: torch.Tensor, cfg: PretrainConfig, generator: torch.Generator) -> torch.Tensor:
    """The query clip (B,3,T,H,W) for ``cfg.method`` from the first view ``x`` (for the
    actor-swap oracle the dataset already decoded view 1 on another scene)."""
    if cfg.oracle == "one-frame":  # one random frame per clip, repeated: no motion left
        B, _, T = x.shape[:3]
        k = torch.randint(T, (B,), generator=generator)
        return x[torch.arange(B), :, k].unsqueeze(2).expand_as(x).contiguous()
    if cfg.method == "moco":
        return x
    if cfg.method == "fame":
        return distract.fame_merge(x, x.roll(1, 0))  # another clip of the batch gives the background
    if cfg.be_source == "other":
        return distract.static_frame_from(x, x.roll(1, 0), cfg.be_lambda_max, per_clip=cfg.be_per_clip,
                                          generator=generator)[0]
    return distract.background_erasing(x, cfg.be_lambda_max, per_clip=cfg.be_per_clip, generator=generator)[0]


def pretrain(cfg: PretrainConfig, *, resume: bool = False, overwrite: bool = False,
             progress: ProgressFn | None = None, data: Data | None = None) -> RunResult:
    """Pre-train as configured (single process, or one rank of a torchrun job).

    ``resume``: continue the run in ``cfg.out``; ``overwrite``: replace it. With neither, an
    ``out`` holding a run is refused (:func:`bebias.training.loop.check_out`)."""
    run = run_common.start(cfg, resume=resume, overwrite=overwrite, data=data, multiprocess=True)
    rank, world, device, spec = run.rank, run.world, run.device, run.spec
    # uint8 clips; normalised in step_fn, batched on the device
    tf = train_transform(spec, scale=tuple(cfg.crop_scale), hflip=run.hflip, normalize=False, augment=cfg.augment)
    query_decoder = None
    if cfg.oracle == "actor-swap":
        if run.data.synth is None:
            raise BebiasError("--oracle actor-swap renders the ground-truth actor on another scene: it needs the "
                              "embedded benchmark in memory (--data synthetic[:options])", cfg.data)
        from bebias.data.decoders import ActorSwapDecoder

        query_decoder = ActorSwapDecoder(run.data.synth)
    ds = ClipDataset(run.data.videos, run.data.decoder, spec, tf, views=2, intra_negative=cfg.extra_negative,
                     seed=cfg.seed, min_gap=cfg.intra_min_gap, query_decoder=query_decoder)
    run.prepare(ds)
    moco = MoCo(build_backbone(cfg.arch, pretrained=cfg.pretrained), dim=cfg.dim, queue_size=cfg.queue_size,
                momentum=cfg.momentum, temperature=cfg.temperature, mlp=cfg.mlp, symmetric=cfg.symmetric,
                shuffle_bn=cfg.shuffle_bn).to(device)
    run.check_bf16(moco.backbone_q)
    model = moco
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(moco, device_ids=[device.index] if device.type == "cuda"
                                                          else None)
    named = [(n, p) for n, p in moco.named_parameters() if p.requires_grad]
    opt = cfg.make_optimizer([p for _, p in named])
    guard = loop.StepGuard(moco, moco.key_params())  # key encoder, queue, BN statistics: undone on a bad step

    def payload(**extra) -> dict:
        meta = CheckpointMeta("pretrain", cfg.arch, cfg.method, config=cfg.to_dict(), input=spec.to_dict(),
                              classes=tuple(run.data.videos.classes))
        return {**meta.to_dict(), "backbone": moco.backbone_q.state_dict(), "moco": moco.state_dict(), **extra}

    def step_fn(batch: dict, step: int) -> float:
        views = normalize(batch["clip"].to(device, non_blocking=True), spec)  # uint8 -> float (B, 2, 3, T, H, W)
        g = torch.Generator().manual_seed(torch_seed(cfg.seed, "query", step, rank))  # BE draws: resume-exact
        x_q = make_query(views[:, 0], cfg, g)
        x_neg = normalize(batch["negative"].to(device), spec) if cfg.extra_negative else None
        if cfg.other_negative:  # sample i's negative: the extra clip of another video of the batch
            x_neg = distract.other_video_negative(x_neg, batch["index"])
        run.set_lr(opt, step)
        guard.save()
        with run.autocast():
            out = model(x_q, views[:, 1], x_neg)
        loss = out["loss"].float()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        return loop.guarded_update(opt, guard, loss, named, keys=out["keys"])

    moco.train()
    return run.train(ds, opt, step_fn, payload=payload, load=lambda st: moco.load_state_dict(st["moco"]),
                     progress=progress, stage="pre-training")
