"""Swap donors change the scene class where scene classes are known (issue 19, item 4): on
the embedded benchmark (families) and on a manifest with a ``bg_label`` column, a swap's
donor has a background of another motion class AND another scene class than the video's
own; a video with no such donor is left out of the swap and counted (metrics.json
``swaps``). Without scene labels the rule is the motion class alone, as before."""

import numpy as np
import pytest

from bebias.data.open import Data, open_data
from bebias.data.records import LabeledVideos, VideoRecord
from bebias.data.transforms import ClipSpec
from bebias.errors import BebiasError
from bebias.probing.assemble import swaps_block
from bebias.probing.source import ProbeSource, new_video_log, video_variants
from bebias.probing.suite import ProbeSuite

SWAPS = ["swap-background", "swap-background-static", "conflict-foreground"]
SPEC = ClipSpec(4, 1, 32)


def run_variants(src: ProbeSource, suite: ProbeSuite, seed: int = 0) -> tuple[list[dict], dict]:
    vids, state = new_video_log()
    sel = list(range(len(src.records)))
    metas = [dict(meta, video=i) for i in sel
             for _, meta in video_variants(i, src, sel, SWAPS, suite, seed, vids, state)]
    return metas, state


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_benchmark_swaps_change_the_motion_class_and_the_scene_family(seed):
    data = open_data("synthetic:classes=3,videos_per_class=4,test_videos_per_class=4,frames=6,size=32",
                     split="conflict")
    suite = ProbeSuite()
    src = ProbeSource(data, SPEC, suite)
    metas, state = run_variants(src, suite, seed)
    assert len(metas) == 3 * len(src.records) and not state["excluded"]  # 3 families: a donor always exists
    for m in metas:
        i, j = m["video"], m["donor"]
        assert src.scene[j] != src.labels[i], m  # another class than the motion (as before)
        assert src.scene[j] != src.scene[i], m  # and another scene than the video's own (new)
        assert m["bg"] == src.scene[j]
    blk = swaps_block(src, SWAPS, suite, state["excluded"])
    assert blk["scene_labels"] == "benchmark families" and blk["without_donor"] == dict.fromkeys(SWAPS, 0)


def test_with_two_families_no_conflict_clip_has_a_scene_changing_donor_and_that_is_counted():
    """Conflict clips of a 2-class benchmark sit on the other class's family: a donor of
    another motion class has the clip's own family, so no swap can change the scene."""
    data = open_data("synthetic:classes=2,videos_per_class=4,test_videos_per_class=3,frames=6,size=32",
                     split="conflict")
    suite = ProbeSuite()
    src = ProbeSource(data, SPEC, suite)
    metas, state = run_variants(src, suite)
    n = len(src.records)
    assert metas == [] and all(state["excluded"][v] == {"no_other_scene_donor": n} for v in SWAPS)
    assert swaps_block(src, SWAPS, suite, state["excluded"])["without_donor"] == dict.fromkeys(SWAPS, n)


class _Frames:
    """A decoder without files: a bright square moving over a static random background
    (motion masks find it)."""

    def num_frames(self, rec):
        return 8

    def frame_size(self, rec):
        return 32, 32

    def read(self, rec, idx, out=None, short=None):
        rng = np.random.default_rng(int(rec.path[1]))
        bg = rng.integers(0, 120, (32, 32, 3), dtype=np.uint8)
        frames = np.repeat(bg[None], len(idx), 0)
        for t, k in enumerate(idx):
            frames[t, 10:20, 4 + 2 * int(k):14 + 2 * int(k)] = 255
        return frames


def manifest_data(bg: list[str]) -> Data:
    """Six videos of classes 0, 0, 1, 1, 2, 2 with the given bg_label cells ("" = none)."""
    recs = [VideoRecord(path=f"v{k}.mp4", label=k // 2, meta={"bg_label": b} if b is not None else {})
            for k, b in enumerate(bg)]
    return Data(LabeledVideos(recs, ["a", "b", "c"], name="m"), _Frames(), "m.csv")


def test_a_manifest_bg_label_column_is_the_scene_class():
    # video k's scene: 1, 1, 0, 2, 0, 1 -- video 0 (class 0, scene 1) may only take video 3 (scene 2)
    data = manifest_data(["1", "1", "0", "2", "0", "1"])
    src = ProbeSource(data, SPEC, ProbeSuite())
    assert src.scene_labels == "manifest bg_label" and src.own_bg(0) == 1 and src.bg_key(3) == 2
    metas, state = run_variants(src, ProbeSuite(), seed=0)
    swaps = [m for m in metas if m["variant"] == "swap-background"]
    for m in swaps:
        i, j = m["video"], m["donor"]
        assert src.bg_key(j) not in (src.labels[i], src.own_bg(i)), m
    assert {m["video"] for m in swaps} == set(range(6)) and not state["excluded"]
    # the only videos of another motion and scene class: 0, 1 -> 3; 2 -> 3; 3 -> 2 or 4; 4 -> 0, 1 or 5; 5 -> 2 or 4
    allowed = {0: {3}, 1: {3}, 2: {3}, 3: {2, 4}, 4: {0, 1, 5}, 5: {2, 4}}
    assert all(m["donor"] in allowed[m["video"]] for m in swaps)
    assert all(m["bg"] == src.bg_key(m["donor"]) for m in metas)


def test_without_scene_labels_the_donor_rule_is_the_motion_class_alone():
    data = manifest_data([None] * 6)
    src = ProbeSource(data, SPEC, ProbeSuite())
    assert src.scene_labels is None and src.own_bg(0) == -1 and src.bg_key(3) == 1  # its class
    vids, state = new_video_log()
    metas = [dict(meta, video=i) for i in range(6)
             for _, meta in video_variants(i, src, list(range(6)), ["swap-background"], ProbeSuite(), 0, vids, state)]
    assert len(metas) == 6 and all(src.labels[m["donor"]] != src.labels[m["video"]] for m in metas)
    assert swaps_block(src, ["swap-background"], ProbeSuite(), state["excluded"])["donor_rule"].endswith(
        "(scene classes unknown)")


def test_a_bg_label_that_is_not_a_class_index_is_a_user_error():
    with pytest.raises(BebiasError, match=r"v1.mp4: bg_label '7' is not a class index \(0..2\)"):
        ProbeSource(manifest_data(["1", "7", "", "", "", ""]), SPEC, ProbeSuite(), need_mask=False)
