"""Benchmark v2's calibration oracles in pre-training, and the intra-negative's minimum gap."""

import numpy as np
import pytest
import torch

from bebias.checkpoint import load_checkpoint
from bebias.data.dataset import ClipDataset
from bebias.data.decoders import ActorSwapDecoder
from bebias.data.open import open_data
from bebias.data.synth import oracle_partner
from bebias.data.transforms import ClipSpec
from bebias.errors import BebiasError
from bebias.training.pretrain import PretrainConfig, make_query, pretrain

from tiny import tiny_pretrain

V2_TINY = ("synthetic:version=v2,classes=2,videos_per_class=4,test_videos_per_class=1,conflict_videos_per_class=1,"
           "frames=12,size=32")


def test_one_frame_query_is_one_frame_of_the_view_repeated():
    x = torch.randn(5, 3, 4, 8, 8)
    q = make_query(x, PretrainConfig(method="moco", oracle="one-frame"), torch.Generator().manual_seed(0))
    assert q.shape == x.shape
    for i in range(5):
        k = [t for t in range(4) if torch.equal(q[i, :, 0], x[i, :, t])]
        assert k, "the repeated frame is one of the clip's own frames"
        assert all(torch.equal(q[i, :, t], q[i, :, 0]) for t in range(4))  # no motion left


def test_actor_swap_view_is_the_actor_on_the_partners_scene_at_the_same_frames():
    d = open_data(V2_TINY, split="train")
    spec = ClipSpec(4, 2, 32)
    raw = ClipDataset(d.videos, d.decoder, spec, None, seed=3)  # plain frames, to learn the clip's indices
    swap = ActorSwapDecoder(d.synth)
    rec = d.videos.records[1]
    frames = [0, 2, 4, 6]
    got = swap.read(rec, frames)
    bench = d.synth
    specs = bench.specs("train")
    other = oracle_partner(bench.cfg, specs, 1)
    mine, theirs = bench.video("train", 1), bench.video("train", other.index)
    bg = ~(mine.masks[frames] | theirs.masks[frames])
    for i in range(1, 3):  # dilate: anti-aliased edges
        bg &= np.roll(bg, i, 1) & np.roll(bg, -i, 1) & np.roll(bg, i, 2) & np.roll(bg, -i, 2)
    diff_theirs = np.abs(got.astype(int) - theirs.frames[frames].astype(int)).sum(-1)[bg].mean()
    diff_mine = np.abs(got.astype(int) - mine.frames[frames].astype(int)).sum(-1)[bg].mean()
    assert diff_theirs < 1.0 < diff_mine  # the background is the partner's, not the video's own
    assert raw[1]["clip"].shape == (4, 32, 32, 3)
    # in a training item, view 0 (the query) comes from the swap decoder, view 1 (the key) is the video
    from bebias.data.transforms import train_transform

    tf = train_transform(spec, normalize=False)
    ds = ClipDataset(d.videos, d.decoder, spec, tf, views=2, seed=0, query_decoder=swap)
    item = ds[1]
    assert item["clip"].shape[0] == 2 and not torch.equal(item["clip"][0], item["clip"][1])
    with pytest.raises(ValueError):
        ClipDataset(d.videos, d.decoder, spec, tf, views=1, query_decoder=swap)


@pytest.mark.parametrize("oracle", ["actor-swap", "one-frame"])
def test_oracle_pretraining_runs_and_is_recorded(tmp_path, oracle):
    cfg = tiny_pretrain(str(tmp_path / oracle), data=V2_TINY, split="pretrain", method="moco", oracle=oracle,
                        max_steps=2)
    res = pretrain(cfg)
    ck = load_checkpoint(res.model_path)
    assert ck["config"]["oracle"] == oracle and ck["method"] == "moco"


def test_oracles_are_checked():
    with pytest.raises(BebiasError, match="needs --method moco"):
        PretrainConfig(method="be", oracle="one-frame").validate()
    with pytest.raises(BebiasError, match="--oracle must be"):
        PretrainConfig(method="moco", oracle="psychic").validate()
    with pytest.raises(BebiasError, match="intra-min-gap"):
        PretrainConfig(intra_min_gap=0).validate()


def test_actor_swap_needs_the_benchmark_in_memory(tmp_path):
    import csv

    from bebias.data.video_io import write_video

    rows = []
    for i in range(4):
        p = tmp_path / f"v{i}.mkv"
        write_video(str(p), np.full((12, 32, 32, 3), 40 * i, np.uint8), fps=25.0)
        rows.append([str(p), i % 2])
    man = tmp_path / "m.csv"
    with open(man, "w", newline="") as f:
        csv.writer(f).writerows([["path", "label"], *rows])
    cfg = tiny_pretrain(str(tmp_path / "run"), data=str(man), method="moco", oracle="actor-swap", max_steps=1)
    with pytest.raises(BebiasError, match="embedded benchmark"):
        pretrain(cfg)


def test_intra_min_gap_reaches_the_dataset():
    d = open_data(V2_TINY, split="train")
    spec = ClipSpec(2, 2, 32)  # clips span 3 of the 12 frames: starts 0..9
    for gap in (2, 6):
        ds = ClipDataset(d.videos, d.decoder, spec, None, intra_negative=True, min_gap=gap, seed=0)
        gaps = []
        for epoch in range(4):
            ds.set_epoch(epoch)
            for i in range(len(ds)):
                item = ds[i]
                video = d.synth.video("train", int(d.videos.records[i].path.rsplit("/", 1)[1])).frames

                def start(clip):
                    return [t for t in range(len(video)) if np.array_equal(video[t], clip[0].numpy())][0]

                gaps.append(abs(start(item["negative"]) - start(item["clip"])))
        assert min(gaps) >= gap
        if gap == 2:
            assert min(gaps) < 6  # the default lets a negative start close to the clip
