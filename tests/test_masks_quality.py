"""Per-video mask quality signals (coverage, stability), the usability rule, the suite's
motion-method choices, and their use by the probe's source (bebias.probing.source)."""

import numpy as np
import pytest

from bebias.data.open import open_data
from bebias.errors import BebiasError
from bebias.probing.masks import (DEFAULT_METHOD, METHODS, mask_coverage, mask_is_usable, mask_quality,
                                  mask_stability)
from bebias.probing.source import MASK_SOURCES, ProbeSource, new_video_log, video_variants
from bebias.probing.suite import MASK_MODES, ProbeSuite, select_videos

DATA = "synthetic:classes=3,videos_per_class=4,test_videos_per_class=3,frames=12,size=32"


def moving_square(T=5, S=10, side=4, step=1):
    m = np.zeros((T, S, S), bool)
    for t in range(T):
        m[t, 2:2 + side, step * t:step * t + side] = True
    return m


# --------------------------------------------------------------------------------------
# the signals on hand-made masks
# --------------------------------------------------------------------------------------

def test_coverage_is_the_foreground_fraction():
    m = np.zeros((4, 10, 10), bool)
    m[:, :5, :4] = True  # 20 of 100 pixels in every frame
    assert mask_coverage(m) == pytest.approx(0.2)
    m[3] = False
    assert mask_coverage(m) == pytest.approx(0.15)
    assert mask_coverage(m[0]) == pytest.approx(0.2)  # one (H, W) frame
    assert mask_coverage(np.zeros((3, 4, 4), bool)) == 0.0


def test_stability_is_the_mean_iou_of_consecutive_frames():
    static = np.zeros((6, 10, 10), bool)
    static[:, 3:7, 3:7] = True
    assert mask_stability(static) == 1.0
    # a 4 x 4 square moving 1 px per frame: each pair overlaps on 12 of 20 pixels
    assert mask_stability(moving_square(step=1)) == pytest.approx(12 / 20)
    assert mask_stability(moving_square(S=20, step=4)) == 0.0  # it jumps by its own size
    flicker = static.copy()
    flicker[1::2] = False  # present, gone, present, ...: every pair has IoU 0
    assert mask_stability(flicker) == 0.0
    half = static.copy()
    half[3:] = False  # pairs: 1, 1, 0, empty-empty = 1, 1
    assert mask_stability(half) == pytest.approx(4 / 5)
    assert mask_stability(np.zeros((5, 4, 4), bool)) == 1.0  # nothing, steadily
    assert mask_stability(static[:1]) == 1.0
    assert mask_quality(moving_square()) == {"coverage": pytest.approx(16 / 100), "stability": pytest.approx(0.6)}
    with pytest.raises(ValueError):
        mask_stability(np.zeros((2, 3, 4, 5), bool))


def test_usable_needs_coverage_in_range_and_enough_stability():
    sq = moving_square(T=6, S=20, side=6, step=1)  # coverage 0.09, stability 30 / 42
    assert mask_is_usable(sq)
    assert mask_is_usable(sq, min_stability=0.7)
    assert not mask_is_usable(sq, min_stability=0.75)
    flicker = sq.copy()
    flicker[1::2] = False
    assert mask_is_usable(flicker)  # the fraction rule alone lets it through
    assert not mask_is_usable(flicker, min_stability=0.3)
    assert not mask_is_usable(np.zeros_like(sq), min_stability=0.3)  # stable, but empty
    assert not mask_is_usable(np.ones_like(sq), min_stability=0.3)  # stable, but no background
    assert not mask_is_usable(np.zeros((0, 4, 4), bool))


# --------------------------------------------------------------------------------------
# the suite
# --------------------------------------------------------------------------------------

def test_suite_motion_method_choices_and_default():
    s = ProbeSuite()
    assert s.motion_method == DEFAULT_METHOD == "grabcut-refine" and s.motion_method in METHODS
    assert set(METHODS) <= set(MASK_MODES) and {"diff", "mog2"} <= set(METHODS)  # the old methods stay available
    assert {f"motion:{m}" for m in METHODS} <= set(MASK_SOURCES)
    assert MASK_SOURCES[:4] == ("", "ground-truth", "motion:diff", "motion:mog2")  # earlier codes keep their meaning
    for m in METHODS:
        ProbeSuite(motion_method=m, mask=m).validate()
    with pytest.raises(BebiasError, match="motion_method"):
        ProbeSuite(motion_method="flow").validate()
    with pytest.raises(BebiasError, match="min_mask_stability"):
        ProbeSuite(min_mask_stability=1.5).validate()
    assert ProbeSuite.from_dict({"min_mask_stability": 0.5}).min_mask_stability == 0.5


# --------------------------------------------------------------------------------------
# the probe's source records the signals and keeps unusable masks out
# --------------------------------------------------------------------------------------

class _Clip:
    frames, stride = 8, 1


def _run(suite: ProbeSuite):
    src = ProbeSource(open_data(DATA, split="conflict"), _Clip(), suite, need_mask=True)
    selected = select_videos(src.labels)
    vids, state = new_video_log()
    out = {}
    for i in selected:
        out[i] = list(video_variants(i, src, selected, ["swap-background", "shuffle"], suite, 0, vids, state))
    return src, vids, state, out


@pytest.mark.parametrize("mask", ["ground-truth", "grabcut-refine"])
def test_source_records_coverage_and_stability(mask):
    src, vids, state, _ = _run(ProbeSuite(mask=mask, variants=("swap-background", "shuffle")))
    assert len(vids["stability"]) == len(vids["index"]) == len(vids["fraction"]) == 9
    for k, i in enumerate(vids["index"]):
        v = src.video(i)
        assert vids["fraction"][k] == pytest.approx(mask_coverage(v.mask))
        assert vids["stability"][k] == pytest.approx(mask_stability(v.mask))
        assert v.quality == {"coverage": vids["fraction"][k], "stability": vids["stability"][k]}
        expected = "ground-truth" if mask == "ground-truth" else "motion:grabcut-refine"
        assert MASK_SOURCES[vids["source"][k]] == expected


def test_unstable_masks_are_kept_out_of_the_mask_based_variants():
    base = ProbeSuite(mask="grabcut-refine", variants=("swap-background", "shuffle"))
    src, vids, state, out = _run(base)
    stab = np.asarray(vids["stability"])
    assert vids["usable"] == [True] * 9, vids  # the benchmark's motion masks pass the default thresholds
    cut = float(np.median(stab))  # a threshold that the less stable half fails
    src, vids2, state2, out2 = _run(ProbeSuite(mask="grabcut-refine", variants=("swap-background", "shuffle"),
                                               min_mask_stability=cut))
    unusable = [i for k, i in enumerate(vids2["index"]) if not vids2["usable"][k]]
    assert unusable == [i for k, i in enumerate(vids["index"]) if stab[k] < cut] and 0 < len(unusable) < 9
    assert state2["excluded"] == {"swap-background": {"mask_unusable": len(unusable)}}
    for i, rows in out2.items():
        names = [meta["variant"] for _, meta in rows]
        assert names == (["shuffle"] if i in unusable else ["swap-background", "shuffle"])  # shuffle needs no mask
