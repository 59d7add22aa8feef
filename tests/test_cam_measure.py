"""The CAM measure with range (bebias.models.cam_measure) and the default CAM layer
(bebias.models.cam.default_layer), on constructed cases whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from bebias.models.backbones import ARCHS, build_backbone
from bebias.models.tv_transformers import TV_WEIGHTS
from bebias.models.cam import MIN_CELLS, GradCam, actor_share, chance_level, default_layer, layer_grids
from bebias.models.cam_measure import ceiling_share, measure_batch, normalised, oracle_map, summarise

T, S = 8, 32
ci = {"n_boot": 200, "seed": 0}


def _masks(n: int, seed: int = 0, side: int = 9) -> list[np.ndarray]:
    """n (T, S, S) float masks: a side x side square actor moving right, at a random place."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        m = np.zeros((T, S, S), np.float32)
        y, x = rng.integers(0, S - side), rng.integers(0, S - side - T)
        for t in range(T):
            m[t, y:y + side, x + t:x + t + side] = 1
        out.append(m)
    return out


class ToyBackbone(nn.Module):
    """Channel 0 of the clip is the actor's mask, channel 1 the scene (1 - mask); ``stage``
    average-pools both to a (T', H', W') grid (the layer Grad-CAM explains), the features
    are their means (B, 2). A head reading channel 0 has the actor as its only evidence."""

    def __init__(self, grid: tuple[int, int, int]) -> None:
        super().__init__()
        self.stage = nn.AdaptiveAvgPool3d(grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stage(x[:, :2]).mean(dim=(2, 3, 4))


def _head(w: list[list[float]], b: list[float]) -> nn.Linear:
    head = nn.Linear(2, len(w))
    with torch.no_grad():
        head.weight.copy_(torch.tensor(w))
        head.bias.copy_(torch.tensor(b))
    return head


def _clips(masks: list[np.ndarray], actor: str) -> torch.Tensor:
    """(B, 3, T, S, S): channel 0 what the head's class 0 reads (the actor, a constant, or
    the scene), channel 1 the scene."""
    m = torch.from_numpy(np.stack(masks))
    c0 = {"actor": m, "uniform": torch.ones_like(m), "scene": 1 - m}[actor]
    return torch.stack([c0, 1 - m, torch.zeros_like(m)], dim=1)


@pytest.mark.parametrize("grid", [(4, 4, 4), (2, 2, 2)])
@pytest.mark.parametrize("looks, expect", [("actor", 1.0), ("uniform", 0.0), ("scene", None)])
def test_normalised_score_of_maps_with_a_known_answer(grid, looks, expect):
    masks = _masks(12)
    cam = GradCam(ToyBackbone(grid), _head([[1.0, 0.0]], [0.0]), layer="stage")
    pred, true, terms = measure_batch(cam, _clips(masks, looks), masks, [0] * len(masks))
    assert pred.raw.shape[1:] == grid and true is not None
    s = summarise([t.share for t in terms], [t.chance for t in terms], [t.ceiling for t in terms], **ci)
    assert s["chance"]["value"] == pytest.approx(np.mean([m.mean() for m in masks]))
    assert s["chance"]["value"] < s["ceiling"]["value"] < 1
    norm = s["normalised"]
    if expect is None:
        # the scene's map is 1 - (the pooled mask): its share a(1 - e)/(1 - a) at chance a and
        # ceiling e, so its normalised score is -a / (1 - a) whatever the layer, below 0
        a = s["chance"]["value"]
        assert norm["value"] == pytest.approx(-a / (1 - a), abs=0.01) and norm["ci_high"] < 0
    else:
        # the actor's map at this layer is the pooled mask itself: exactly the ceiling;
        # a uniform map exactly chance
        assert norm["value"] == pytest.approx(expect, abs=1e-5)
        assert norm["ci_low"] == pytest.approx(expect, abs=1e-5) and norm["ci_high"] == pytest.approx(expect, abs=1e-5)


def test_predicted_and_true_class_maps_are_both_measured():
    # class 0 reads the actor, class 1 the scene; the bias makes every clip predicted class 1
    masks = _masks(6, seed=1)
    cam = GradCam(ToyBackbone((4, 4, 4)), _head([[1.0, 0.0], [0.0, 1.0]], [0.0, 5.0]), layer="stage")
    pred, true, terms = measure_batch(cam, _clips(masks, "actor"), masks, [0] * 6)
    assert pred.target.tolist() == [1] * 6 and true.target.tolist() == [0] * 6
    p = summarise([t.share for t in terms], [t.chance for t in terms], [t.ceiling for t in terms], **ci)
    q = summarise([t.share_true for t in terms], [t.chance for t in terms], [t.ceiling for t in terms], **ci)
    assert p["normalised"]["ci_high"] < 0  # the wrong prediction's evidence is the scene
    assert q["normalised"]["value"] == pytest.approx(1.0, abs=1e-5)  # the right answer's is the actor
    # no true class known (or no mask): NaN, left out and counted
    _, none, terms = measure_batch(cam, _clips(masks, "actor"), [None, *masks[1:]], [None] * 6)
    assert none is None and all(math.isnan(t.share_true) for t in terms) and math.isnan(terms[0].share)
    s = summarise([t.share for t in terms], [t.chance for t in terms], [t.ceiling for t in terms], **ci)
    assert s["share"]["n"] == 5 and s["videos_left_out"] == 1


def test_oracle_and_ceiling():
    masks = _masks(3, seed=2, side=6)
    m = masks[0]
    # at the clip's own resolution the oracle is the mask: all of it on the actor
    assert torch.allclose(oracle_map(m, m.shape), torch.from_numpy(m))
    assert ceiling_share(m, m.shape) == pytest.approx(1.0)
    # one cell: a uniform map, exactly chance
    assert ceiling_share(m, (1, 1, 1)) == pytest.approx(chance_level(m))
    # the coarser the grid, the lower the ceiling of a small actor
    ceil = [ceiling_share(m, g) for g in [(8, 16, 16), (8, 8, 8), (4, 4, 4), (2, 2, 2)]]
    assert all(a > b for a, b in zip(ceil, ceil[1:])) and ceil[-1] > chance_level(m)
    assert actor_share(oracle_map(m, (2, 2, 2)), m) == pytest.approx(ceil[-1])
    with pytest.raises(ValueError):
        oracle_map(m[0], (2, 2))


def test_summarise_hand_values_and_undefined_cases():
    s = summarise([0.3, 0.5, math.nan], [0.1, 0.1, 0.1], [0.5, 0.5, 0.5], **ci)
    assert s["share"]["value"] == pytest.approx(0.4) and s["share"]["n"] == 2 and s["videos_left_out"] == 1
    assert s["normalised"]["value"] == pytest.approx((0.4 - 0.1) / (0.5 - 0.1))
    assert s["normalised"]["ci_low"] <= 0.75 <= s["normalised"]["ci_high"]
    # a ceiling at chance (a mask no layer can resolve) has no normalised score
    assert math.isnan(normalised(0.2, 0.1, 0.1))
    assert summarise([0.2], [0.1], [0.1], **ci)["normalised"]["value"] is None
    empty = summarise([], [], [], **ci)
    assert all(empty[k]["value"] is None and empty[k]["n"] == 0 for k in ("share", "normalised"))
    with pytest.raises(ValueError):
        summarise([0.1], [0.1, 0.2], [0.3], **ci)


# --------------------------------------------------------------------------------------
# the default layer: the deepest stage whose map has >= 4x4 cells at the input size
# --------------------------------------------------------------------------------------

# the CNNs list their stages; the transformers (TV_WEIGHTS) have one fixed default layer
@pytest.mark.parametrize("arch", [a for a in ARCHS if a not in TV_WEIGHTS])
def test_default_layer_has_enough_cells_at_the_input_size(arch):
    bb = build_backbone(arch)
    for shape in [(8, 32, 32), (16, 112, 112)]:
        name = default_layer(bb, shape)
        grids = layer_grids(bb, bb.cam_layers, shape)
        assert min(grids[name][1:]) >= MIN_CELLS
        deeper = bb.cam_layers[bb.cam_layers.index(name) + 1:]
        assert all(min(grids[d][1:]) < MIN_CELLS for d in deeper)  # the deepest one that has them
    assert default_layer(bb) == bb.cam_layer  # without an input size: the last block


def test_default_layer_small3d_and_r3d_18():
    assert default_layer(build_backbone("small3d"), (8, 32, 32)) == "layer3"  # layer4 is 2x2x2 there
    assert default_layer(build_backbone("small3d"), (8, 64, 64)) == "layer4"
    assert default_layer(build_backbone("r3d_18"), (16, 112, 112)) == "layer4"  # 2x7x7
    # too small for any 4x4 map: the stage with the most cells
    assert default_layer(build_backbone("small3d"), (4, 8, 8)) == "layer1"


def test_choosing_the_layer_changes_no_state():
    bb = build_backbone("small3d").train()
    before = {k: v.clone() for k, v in bb.state_dict().items()}
    default_layer(bb, (8, 32, 32))
    assert bb.training and not any(m._forward_hooks for m in bb.modules())
    assert all(torch.equal(before[k], v) for k, v in bb.state_dict().items())  # BatchNorm statistics too
