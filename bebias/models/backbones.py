"""Video backbones behind one interface.

Every backbone maps a normalised clip ``(B, 3, T, H, W)`` to

- :meth:`Backbone.features`: the last convolutional feature map ``(B, C, T', H', W')``,
  kept spatial and temporal so that class-activation maps can be computed on it;
- :meth:`Backbone.forward`: its global average pool ``(B, C)``, ``C == backbone.dim``.

There is no classifier head: heads (MoCo projection, linear probe) are separate modules.

=============== ==== ========================================================== =============
arch            dim  what                                                       smallest clip
=============== ==== ========================================================== =============
``small3d``     256  small 3D ResNet for CPU runs on 32-64 px clips (this file) any
``r3d_18``      512  torchvision R3D-18                                         any
``mc3_18``      512  torchvision MC3-18                                         any
``r2plus1d_18`` 512  torchvision R(2+1)D-18                                     any
``s3d``         1024 torchvision S3D                                            3x5x17x17
``c3d``         512  C3D (Tran et al. 2015) with BatchNorm (this file)          any
``i3d``         1024 Inception-v1 I3D (Carreira & Zisserman 2017) (this file)   any
``swin3d_t``    768  torchvision Video Swin-T (also ``_s`` 768, ``_b`` 1024)    any
``mvit_v1_b``   768  torchvision MViT-B (also ``mvit_v2_s``, 768)                16x224x224 only
=============== ==== ========================================================== =============

The transformers live in :mod:`bebias.models.tv_transformers`.

``build_backbone(arch, pretrained=True)`` loads torchvision's Kinetics-400 weights for the
nine torchvision architectures from torch's local cache (never downloading them: a missing
file is an error saying where to put it); the others have none.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bebias.errors import BebiasError

__all__ = [
    "ARCHS",
    "Backbone",
    "BasicBlock3d",
    "C3D",
    "I3D",
    "S3DBackbone",
    "Small3D",
    "TorchvisionResNet",
    "build_backbone",
    "init_weights",
]


def init_weights(module: nn.Module) -> None:
    """Kaiming-normal (fan_out, ReLU) for every Conv3d, zero conv biases, BN weight 1 / bias 0.

    The same scheme as torchvision's video ResNets, so every arch starts alike.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm3d, nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class Backbone(nn.Module, abc.ABC):
    """Abstract base class: ``features`` (B,3,T,H,W) -> (B,C,T',H',W'); ``forward`` -> (B,C).

    Subclasses set ``dim`` (= C) and implement :meth:`features`, and name in
    :attr:`cam_layer` the last spatio-temporal conv block, whose output *is* the feature
    map :meth:`features` returns (the one the pooled features and the head see), and in
    :attr:`cam_layers` the stage blocks Grad-CAM may explain, shallow to deep; the default
    CAM layer is chosen among them from the input size (:func:`bebias.models.cam.default_layer`).
    """

    dim: int
    #: qualified module name (``named_modules``) of the last spatio-temporal conv block
    cam_layer: str = ""
    #: the stage blocks a CAM may explain (``named_modules`` names), shallow to deep, ending with :attr:`cam_layer`
    cam_layers: tuple[str, ...] = ()

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    @abc.abstractmethod
    def features(self, clip: Tensor) -> Tensor:
        """(B, 3, T, H, W) normalised clip -> last conv feature map (B, dim, T', H', W')."""

    def forward(self, clip: Tensor) -> Tensor:
        """(B, 3, T, H, W) normalised clip -> (B, dim): global average pool of :meth:`features`."""
        return self.features(clip).mean(dim=(2, 3, 4))


# --------------------------------------------------------------------------- small3d


def _conv_bn(cin: int, cout: int, kernel: tuple[int, int, int], stride: tuple[int, int, int],
             padding: tuple[int, int, int]) -> list[nn.Module]:
    # No conv bias: the BatchNorm that follows has its own.
    return [nn.Conv3d(cin, cout, kernel, stride, padding, bias=False), nn.BatchNorm3d(cout)]


class BasicBlock3d(nn.Module):
    """3x3x3 conv-BN-ReLU, 3x3x3 conv-BN, plus shortcut, ReLU. (B,cin,T,H,W) -> (B,cout,T/st,H/ss,W/ss).

    The shortcut is a strided 1x1x1 conv + BN whenever channels or resolution change, the
    identity otherwise. Kernel 3 with padding 1 and stride 2 gives ceil(n/2) >= 1, so a
    block never collapses an axis, whatever its length.
    """

    def __init__(self, cin: int, cout: int, stride: tuple[int, int, int] = (1, 1, 1)) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(cin, cout, (3, 3, 3), stride, (1, 1, 1))
        self.conv2, self.bn2 = _conv_bn(cout, cout, (3, 3, 3), (1, 1, 1), (1, 1, 1))
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if cin != cout or stride != (1, 1, 1):
            self.downsample = nn.Sequential(*_conv_bn(cin, cout, (1, 1, 1), stride, (0, 0, 0)))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Small3D(Backbone):
    """Small, fast 3D ResNet for CPU experiments on 32-64 px clips of 8-16 frames.

    stem: Conv3d k=(3,5,5) s=(1,2,2) + BN + ReLU (halves H, W; keeps T);
    then four stages of one :class:`BasicBlock3d` each, widths ``widths`` (default
    32, 64, 128, 256), spatial stride 2 in stages 2-4, temporal stride 2 in stages 3-4.

    Shapes: (B, 3, T, H, W) -> features (B, widths[-1], ceil(T/4), ceil(H/16), ceil(W/16)),
    e.g. 3x8x32x32 -> 256x2x2x2 and 3x16x64x64 -> 256x4x4x4. Any T >= 1 and H, W >= 1 work
    (strided 3x3x3 convs with padding 1 never collapse an axis), but below 16 px or 4
    frames the last stages see a single position and stop being spatial/temporal.
    """

    cam_layer = "layer4"
    cam_layers = ("layer1", "layer2", "layer3", "layer4")

    def __init__(self, widths: Sequence[int] = (32, 64, 128, 256)) -> None:
        if len(widths) != 4:
            raise BebiasError(f"Small3D needs 4 stage widths, got {tuple(widths)}")
        super().__init__(dim=int(widths[-1]))
        w = [int(c) for c in widths]
        self.stem = nn.Sequential(*_conv_bn(3, w[0], (3, 5, 5), (1, 2, 2), (1, 2, 2)), nn.ReLU(inplace=True))
        # Time is kept at full rate through stage 2 (motion is the signal), then halved
        # twice: T=8 -> 2 and T=16 -> 4 at the output.
        self.layer1 = BasicBlock3d(w[0], w[0], (1, 1, 1))
        self.layer2 = BasicBlock3d(w[0], w[1], (1, 2, 2))
        self.layer3 = BasicBlock3d(w[1], w[2], (2, 2, 2))
        self.layer4 = BasicBlock3d(w[2], w[3], (2, 2, 2))
        init_weights(self)

    def features(self, clip: Tensor) -> Tensor:
        """(B, 3, T, H, W) -> (B, dim, ceil(T/4), ceil(H/16), ceil(W/16))."""
        x = self.stem(clip)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)


# --------------------------------------------------------------------------- torchvision


def cached_weights(weights) -> dict:
    """The state_dict of torchvision ``weights`` from torch's local cache
    (``$TORCH_HOME/hub/checkpoints``), read with ``weights_only=True``. bebias never
    downloads at run time: weights that are not there are one error line saying where to
    put them."""
    import os

    path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))
    if not os.path.exists(path):
        raise BebiasError(f"torchvision's {type(weights).__name__}.{weights.name} weights are not in the local "
                          f"cache; bebias does not download at run time: fetch {weights.url} to this path (or "
                          "set TORCH_HOME to the folder that holds hub/checkpoints/) and run again", path)
    from bebias.checkpoint import load_file

    return load_file(path)


def _tv_video():
    # Imported lazily: torchvision.models pulls in every model family.
    import torchvision.models.video as tvv

    return tvv


class TorchvisionResNet(Backbone):
    """torchvision's R3D-18 / MC3-18 / R(2+1)D-18 without ``avgpool`` and ``fc``.

    The modules keep torchvision's names (``stem``, ``layer1`` .. ``layer4``), so the
    state_dict keys are torchvision's minus ``fc.*``: a torchvision checkpoint loads with
    ``load_state_dict({k: v for k, v in sd.items() if not k.startswith("fc.")})``.

    Shapes: (B, 3, T, H, W) -> features (B, 512, T', ceil(H/16), ceil(W/16)) with
    T' = ceil(T/8) for r3d_18 / r2plus1d_18 and T' = T for mc3_18 (its layers 2-4 are
    purely spatial). Any clip size works (strided padded convs only, no pooling); e.g.
    3x8x32x32 -> 512x1x2x2 (r3d_18) and 3x16x112x112 -> 512x2x7x7 (r3d_18).
    """

    cam_layer = "layer4"
    cam_layers = ("layer1", "layer2", "layer3", "layer4")
    _WEIGHTS = {"r3d_18": "R3D_18_Weights", "mc3_18": "MC3_18_Weights", "r2plus1d_18": "R2Plus1D_18_Weights"}

    def __init__(self, arch: str, pretrained: bool = False) -> None:
        super().__init__(dim=512)
        tvv = _tv_video()
        net = getattr(tvv, arch)(weights=None)
        if pretrained:
            net.load_state_dict(cached_weights(getattr(tvv, self._WEIGHTS[arch]).DEFAULT))
        self.arch = arch
        self.stem = net.stem
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        if not pretrained:
            init_weights(self)  # torchvision already does this; explicit so every arch matches

    def features(self, clip: Tensor) -> Tensor:
        """(B, 3, T, H, W) -> (B, 512, T', H/16, W/16) (see the class docstring for T')."""
        x = self.stem(clip)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)


class S3DBackbone(Backbone):
    """torchvision's S3D without ``avgpool`` and ``classifier``.

    Its trunk is registered under torchvision's name ``features`` so the state_dict keys
    are torchvision's minus ``classifier.*``. That name is also the :meth:`features`
    method, so the module is reached as :attr:`trunk` (a plain attribute lookup finds the
    method first; ``nn.Module`` keeps the submodule in ``_modules``).

    Shapes: (B, 3, T, H, W) -> features (B, 1024, T', H', W') with
    T' = floor(ceil(T/4) / 2) and H' = floor(ceil(H/16) / 2) (same for W): every stage
    rounds up except the last max-pool (2x2x2, stride 2, no padding), which floors. Minimum input is therefore
    **T >= 5 and H, W >= 17** (3x5x17x17 -> 1024x1x1x1); 3x4xHxW or 16x16 px raise.
    E.g. 3x16x112x112 -> 1024x2x3x3, 3x8x64x64 -> 1024x1x2x2.
    """

    cam_layer = "features.15"  # Mixed_5c, the trunk's last block (after its last max-pool)
    cam_layers = ("features.6", "features.12", "features.15")  # Mixed_3c, Mixed_4f, Mixed_5c

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__(dim=1024)
        tvv = _tv_video()
        net = tvv.s3d(weights=None)
        if pretrained:
            net.load_state_dict(cached_weights(tvv.S3D_Weights.DEFAULT))
        # Assigning through __setattr__ would work too, but writing _modules directly
        # makes the deliberate name clash with the features() method explicit.
        self._modules["features"] = net.features
        if not pretrained:
            init_weights(self)  # torchvision's S3D keeps PyTorch's default conv init

    @property
    def trunk(self) -> nn.Sequential:
        """torchvision's ``S3D.features`` (registered as ``features``)."""
        return self._modules["features"]  # type: ignore[return-value]

    def features(self, clip: Tensor) -> Tensor:
        """(B, 3, T, H, W), T >= 5, H, W >= 17 -> (B, 1024, T', H', W') (see class docstring)."""
        return self.trunk(clip)


# --------------------------------------------------------------------------- c3d


class _ConvBNReLU(nn.Sequential):
    """Conv3d (no bias) + BatchNorm3d + ReLU, as ``conv`` / ``bn`` / ``relu``."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int, int] = 3,
                 stride: int | tuple[int, int, int] = 1, padding: int | tuple[int, int, int] = 1) -> None:
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm3d(cout)
        self.relu = nn.ReLU(inplace=True)


class C3D(Backbone):
    """C3D (Tran et al., ICCV 2015) with BatchNorm after every conv, up to conv5b.

    All convs are 3x3x3, stride 1, padding 1: conv1 64, pool1 (1,2,2); conv2 128, pool2;
    conv3a/b 256, pool3; conv4a/b 512, pool4; conv5a/b 512 (pool2-4 are 2x2x2, stride 2).
    pool5 / fc6 / fc7 are left out: features are conv5b's output.

    The pools use ``ceil_mode=True`` so odd or tiny sizes round up instead of dropping
    (or collapsing to 0): any clip size works.
    Shapes: (B, 3, T, H, W) -> (B, 512, ceil(T/8), ceil(H/16), ceil(W/16)),
    e.g. 3x8x32x32 -> 512x1x2x2 and 3x16x112x112 -> 512x2x7x7.
    """

    cam_layer = "conv5b"
    cam_layers = ("conv3b", "conv4b", "conv5b")

    def __init__(self) -> None:
        super().__init__(dim=512)
        pool = lambda k: nn.MaxPool3d(k, k, ceil_mode=True)  # noqa: E731
        self.conv1 = _ConvBNReLU(3, 64)
        self.pool1 = pool((1, 2, 2))  # keep time early, as in the paper
        self.conv2 = _ConvBNReLU(64, 128)
        self.pool2 = pool((2, 2, 2))
        self.conv3a, self.conv3b = _ConvBNReLU(128, 256), _ConvBNReLU(256, 256)
        self.pool3 = pool((2, 2, 2))
        self.conv4a, self.conv4b = _ConvBNReLU(256, 512), _ConvBNReLU(512, 512)
        self.pool4 = pool((2, 2, 2))
        self.conv5a, self.conv5b = _ConvBNReLU(512, 512), _ConvBNReLU(512, 512)
        init_weights(self)

    def features(self, clip: Tensor) -> Tensor:
        """(B, 3, T, H, W) -> (B, 512, ceil(T/8), ceil(H/16), ceil(W/16))."""
        x = self.pool1(self.conv1(clip))
        x = self.pool2(self.conv2(x))
        x = self.pool3(self.conv3b(self.conv3a(x)))
        x = self.pool4(self.conv4b(self.conv4a(x)))
        return self.conv5b(self.conv5a(x))


# --------------------------------------------------------------------------- i3d


def _same_pad(size: Sequence[int], kernel: Sequence[int], stride: Sequence[int]) -> list[int]:
    """F.pad amounts for TensorFlow 'SAME' on (T, H, W): output = ceil(in / stride).

    Total padding per axis is max(k - s, 0) or max(k - in % s, 0), the extra pixel going
    at the end as in TF. Returned in F.pad's order (W_lo, W_hi, H_lo, H_hi, T_lo, T_hi).
    """
    pads: list[int] = []
    for n, k, s in zip(reversed(size), reversed(kernel), reversed(stride)):
        total = max(k - s, 0) if n % s == 0 else max(k - n % s, 0)
        pads += [total // 2, total - total // 2]
    return pads


def _triple(v: int | Sequence[int]) -> tuple[int, int, int]:
    return (v, v, v) if isinstance(v, int) else (int(v[0]), int(v[1]), int(v[2]))


class Unit3D(nn.Module):
    """Conv3d (TF-'SAME' padding, no bias) + BatchNorm3d + ReLU: (B,cin,T,H,W) -> (B,cout,ceil(T/s),..)."""

    def __init__(self, cin: int, cout: int, kernel: int | Sequence[int] = 1, stride: int | Sequence[int] = 1) -> None:
        super().__init__()
        self.kernel, self.stride = _triple(kernel), _triple(stride)
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, self.stride, padding=0, bias=False)
        # eps / momentum of the TF original (and of pytorch-i3d ports of its weights).
        self.bn = nn.BatchNorm3d(cout, eps=1e-3, momentum=0.01)

    def forward(self, x: Tensor) -> Tensor:
        # Padding depends on the input size when stride > 1 (TF pads asymmetrically).
        x = F.pad(x, _same_pad(x.shape[2:], self.kernel, self.stride))
        return F.relu(self.bn(self.conv3d(x)), inplace=True)


class MaxPool3dSame(nn.Module):
    """MaxPool3d with TF-'SAME' padding: output ceil(in / stride), never 0 on small inputs.

    Pads with -inf, so padding is never the maximum (TF semantics).
    """

    def __init__(self, kernel: int | Sequence[int], stride: int | Sequence[int]) -> None:
        super().__init__()
        self.kernel, self.stride = _triple(kernel), _triple(stride)

    def forward(self, x: Tensor) -> Tensor:
        x = F.pad(x, _same_pad(x.shape[2:], self.kernel, self.stride), value=-math.inf)
        return F.max_pool3d(x, self.kernel, self.stride)


class InceptionModule(nn.Module):
    """I3D inception block: four branches concatenated on channels.

    b0: 1x1x1; b1: 1x1x1 -> 3x3x3; b2: 1x1x1 -> 3x3x3; b3: 3x3x3 max-pool (stride 1) -> 1x1x1.
    ``out = (b0, b1a, b1b, b2a, b2b, b3b)`` channels; output has b0 + b1b + b2b + b3b
    channels at the input's resolution. Branch names follow pytorch-i3d.
    """

    def __init__(self, cin: int, out: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        self.b0 = Unit3D(cin, out[0], 1)
        self.b1a = Unit3D(cin, out[1], 1)
        self.b1b = Unit3D(out[1], out[2], 3)
        self.b2a = Unit3D(cin, out[3], 1)
        self.b2b = Unit3D(out[3], out[4], 3)
        self.b3a = MaxPool3dSame(3, 1)
        self.b3b = Unit3D(cin, out[5], 1)
        self.out_channels = out[0] + out[2] + out[4] + out[5]

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


class I3D(Backbone):
    """Inception-v1 I3D (Carreira & Zisserman, CVPR 2017), RGB stream, up to mixed_5c.

    conv 7x7x7/2 - pool (1,3,3)/(1,2,2) - conv 1x1x1 - conv 3x3x3 - pool (1,3,3)/(1,2,2) -
    mixed_3b, 3c - pool 3x3x3/2 - mixed_4b..4f - pool 2x2x2/2 - mixed_5b, 5c (1024 ch).
    Every conv and pool uses TF-'SAME' padding (output ceil(in / stride)), so no axis
    collapses to 0 and any clip size works. Module names are pytorch-i3d's lowercased
    (``Mixed_3b.b1b.conv3d.weight`` -> ``mixed_3b.b1b.conv3d.weight``), so its converted
    Kinetics checkpoints map with ``k.lower()`` (minus ``logits.*``).

    Shapes: (B, 3, T, H, W) -> (B, 1024, ceil(T/8), ceil(H/32), ceil(W/32)),
    e.g. 3x16x112x112 -> 1024x2x4x4 and 3x8x64x64 -> 1024x1x2x2.
    """

    cam_layer = "mixed_5c"
    cam_layers = ("mixed_3c", "mixed_4f", "mixed_5c")

    def __init__(self) -> None:
        super().__init__(dim=1024)
        self.conv3d_1a_7x7 = Unit3D(3, 64, 7, 2)
        self.maxpool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))  # no temporal pooling early
        self.conv3d_2b_1x1 = Unit3D(64, 64, 1)
        self.conv3d_2c_3x3 = Unit3D(64, 192, 3)
        self.maxpool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.mixed_3b = InceptionModule(192, (64, 96, 128, 16, 32, 32))  # -> 256
        self.mixed_3c = InceptionModule(256, (128, 128, 192, 32, 96, 64))  # -> 480
        self.maxpool3d_4a_3x3 = MaxPool3dSame(3, 2)
        self.mixed_4b = InceptionModule(480, (192, 96, 208, 16, 48, 64))  # -> 512
        self.mixed_4c = InceptionModule(512, (160, 112, 224, 24, 64, 64))  # -> 512
        self.mixed_4d = InceptionModule(512, (128, 128, 256, 24, 64, 64))  # -> 512
        self.mixed_4e = InceptionModule(512, (112, 144, 288, 32, 64, 64))  # -> 528
        self.mixed_4f = InceptionModule(528, (256, 160, 320, 32, 128, 128))  # -> 832
        self.maxpool3d_5a_2x2 = MaxPool3dSame(2, 2)
        self.mixed_5b = InceptionModule(832, (256, 160, 320, 32, 128, 128))  # -> 832
        self.mixed_5c = InceptionModule(832, (384, 192, 384, 48, 128, 128))  # -> 1024
        init_weights(self)

    def features(self, clip: Tensor) -> Tensor:
        """(B, 3, T, H, W) -> (B, 1024, ceil(T/8), ceil(H/32), ceil(W/32))."""
        x = clip
        for module in self.children():  # registered in forward order
            x = module(x)
        return x


# --------------------------------------------------------------------------- registry


def _no_weights(arch: str, cls: Callable[[], Backbone]) -> Callable[[bool], Backbone]:
    def build(pretrained: bool = False) -> Backbone:
        if pretrained:
            raise BebiasError(f"no pretrained weights for arch {arch!r}; pretrained weights exist for "
                              "r3d_18, mc3_18, r2plus1d_18, s3d, swin3d_t/s/b, mvit_v1_b, mvit_v2_s")
        return cls()

    return build


_BUILDERS: dict[str, Callable[[bool], Backbone]] = {
    "small3d": _no_weights("small3d", Small3D),
    "r3d_18": lambda pretrained=False: TorchvisionResNet("r3d_18", pretrained),
    "mc3_18": lambda pretrained=False: TorchvisionResNet("mc3_18", pretrained),
    "r2plus1d_18": lambda pretrained=False: TorchvisionResNet("r2plus1d_18", pretrained),
    "s3d": lambda pretrained=False: S3DBackbone(pretrained),
    "c3d": _no_weights("c3d", C3D),
    "i3d": _no_weights("i3d", I3D),
}


def _transformer(arch: str) -> Callable[[bool], Backbone]:
    def build(pretrained: bool = False) -> Backbone:
        # imported here: tv_transformers imports this module
        from bebias.models import tv_transformers as tvt

        cls = tvt.TorchvisionMViT if arch in tvt.MVIT else tvt.TorchvisionSwin3D
        return cls(arch, pretrained)

    return build


for _arch in ("swin3d_t", "swin3d_s", "swin3d_b", "mvit_v1_b", "mvit_v2_s"):
    _BUILDERS[_arch] = _transformer(_arch)

#: Every architecture :func:`build_backbone` knows.
ARCHS: tuple[str, ...] = tuple(_BUILDERS)


def build_backbone(arch: str, pretrained: bool = False) -> Backbone:
    """Build backbone ``arch`` (one of :data:`ARCHS`, case-insensitive).

    ``pretrained=True`` loads torchvision's Kinetics-400 weights (``r3d_18``, ``mc3_18``,
    ``r2plus1d_18``, ``s3d``, ``swin3d_t/s/b``, ``mvit_v1_b``, ``mvit_v2_s``) from torch's local
    cache, never downloading them. Raises :class:`BebiasError` for an
    unknown arch, or for ``pretrained=True`` on an arch without weights.
    """
    key = arch.strip().lower()
    if key not in _BUILDERS:
        raise BebiasError(f"unknown arch {arch!r}; choose one of: {', '.join(ARCHS)}")
    return _BUILDERS[key](pretrained)
