"""Benchmark v2: each property has a known answer, v2 is pinned by its own hash, v1 is untouched."""

import hashlib
import math
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from bebias.data.synth import (MOTIONS, PRETRAIN, REVERSED, SPLITS, VERSIONS, SynthBenchmark, SynthConfig,
                               oracle_partner, render_frames, render_video, split_specs)
from bebias.data.synth_camera import MEASURED_PAN, MEASURED_SHAKE, MEASURED_ZOOM
from bebias.data.synth_motion import MAX_SAMPLED_TURN_DEG
from bebias.errors import BebiasError

V2 = SynthConfig(version="v2", videos_per_class=8, test_videos_per_class=4, conflict_videos_per_class=8, seed=1)


def _digest(cfg: SynthConfig, splits, per_split: int = 3) -> str:
    h = hashlib.sha256()
    for split in splits:
        for spec in split_specs(cfg, split)[:per_split]:
            v = render_video(cfg, spec) if split != PRETRAIN else SynthBenchmark(cfg).video(split, spec.index)
            h.update(np.ascontiguousarray(v.frames).tobytes())
            h.update(np.ascontiguousarray(v.masks).tobytes())
    return h.hexdigest()[:16]


def test_v2_golden_checksum():
    """Pins v2's pixels (computed by this code when v2 was fixed, before any v2 run)."""
    cfg = SynthConfig(version="v2", videos_per_class=8, test_videos_per_class=8, conflict_videos_per_class=8,
                      frames=12, size=32, seed=0)
    assert _digest(cfg, cfg.splits) == GOLDEN_V2


GOLDEN_V2 = "27b22be3a4e2eb7d"


def test_v1_is_the_default_and_its_explicit_settings_change_nothing():
    assert SynthConfig() == SynthConfig(version="v1") == SynthConfig(**VERSIONS["v1"] | {"conflict_videos_per_class": 64})
    small = dict(classes=8, videos_per_class=8, test_videos_per_class=8, frames=8, size=32, seed=0)
    assert _digest(SynthConfig(**small), SPLITS) == _digest(SynthConfig(**small, version="v1"), SPLITS)
    assert SynthConfig().splits == SPLITS and SynthConfig().pretrain_split == "train"


def test_one_property_at_a_time_overrides_the_version():
    cfg = SynthConfig(version="v2", reversal_twins=False, camera_model="pan-jitter")
    assert cfg.splits == SPLITS and cfg.frames == 48 and cfg.motion_variation
    assert SynthConfig(version="v1", conflict_videos_per_class=256).split_size("conflict") == 256 * 8
    assert SynthConfig(version="v2").split_size("conflict") == 256 * 8
    with pytest.raises(BebiasError, match="version"):
        SynthConfig(version="v3")
    with pytest.raises(BebiasError, match="min_motion needs motion_variation"):
        SynthConfig(version="v2", motion_variation=False)
    assert SynthConfig(version="v2", motion_variation=False, min_motion=0).frames == 48
    with pytest.raises(BebiasError, match="reversal_twins"):
        SynthConfig(version="v2", classes=3)  # "up" reversed is "down", class 3


def test_reversal_twin_is_the_time_reversed_original():
    bench = SynthBenchmark(V2)
    specs = bench.specs(PRETRAIN)
    N = len(bench.specs("train"))
    assert len(specs) == 2 * N
    for i in (0, 5, N - 1):
        orig, twin, train = bench.video(PRETRAIN, i), bench.video(PRETRAIN, N + i), bench.video("train", i)
        assert np.array_equal(orig.frames, train.frames)
        assert np.array_equal(twin.frames, orig.frames[::-1]) and np.array_equal(twin.masks, orig.masks[::-1])
        assert twin.spec.label == REVERSED[orig.spec.label] and twin.spec.family == orig.spec.family
        assert (twin.spec.plate, twin.spec.actor) == (orig.spec.plate, orig.spec.actor)
        # rendered on its own (no cache), a twin is the same pixels
        solo = render_frames(V2, specs[N + i], frames=[0, 3])
        assert np.array_equal(solo.frames, orig.frames[[V2.frames - 1, V2.frames - 4]])
        assert np.array_equal(solo.background, twin.background)
    assert [MOTIONS[REVERSED[MOTIONS.index(m)]] for m in ("right", "rotate-cw", "orbit", "zoom")] == \
        ["left", "rotate-ccw", "orbit", "zoom"]


def test_pools_share_plates_and_actors_so_neither_names_an_instance():
    cfg = SynthConfig(version="v2", videos_per_class=32, conflict_videos_per_class=32)
    for split in SPLITS:
        specs = split_specs(cfg, split)
        pairs = Counter((s.family, s.plate, s.actor) for s in specs)
        assert min(pairs.values()) >= 2  # every (plate, actor) pair a split uses: >= 2 videos
        assert {s.plate for s in specs} == set(range(cfg.plates_per_family))
        assert {s.actor for s in specs} == set(range(cfg.actor_pool))
        per_actor = Counter(s.actor for s in specs)  # the pool's actors in turn: balanced up to one
        # pair per actor and one odd video per family (a family's triple)
        assert max(per_actor.values()) - min(per_actor.values()) <= 2 + cfg.classes
    full = SynthConfig(version="v2")  # at the v2 sizes every actor meets every family and most classes
    for split in ("train", "train-unbiased", "conflict"):
        specs = split_specs(full, split)
        assert all(len({s.family for s in specs if s.actor == a}) == full.classes for a in range(full.actor_pool))
        assert all(len({s.label for s in specs if s.actor == a}) >= full.classes - 1 for a in range(full.actor_pool))
    # same pool entry, same pixels of plate (up to the camera); another entry differs
    a, b = split_specs(cfg, "train")[:2]
    same = [s for s in split_specs(cfg, "train") if (s.family, s.plate) == (a.family, a.plate) and s != a][0]
    off = replace(cfg, camera=False)
    va, vs = render_video(off, a), render_video(off, same)
    assert np.array_equal(va.background, vs.background)
    assert all(s.plate == -1 and s.actor == -1 for s in split_specs(SynthConfig(), "train"))  # v1: own plate, actor


def test_motion_per_sampled_frame_meets_the_floor_and_varies():
    cfg = replace(V2, camera=False)
    specs = split_specs(cfg, "train")
    motion, measured = {}, []
    for s in specs:
        v = render_video(cfg, s)
        assert v.meta["motion_px"] >= cfg.min_motion - 1e-9, (MOTIONS[s.label], v.meta["motion_px"])
        motion.setdefault(MOTIONS[s.label], []).append(v.meta["motion_px"])
        if MOTIONS[s.label] in ("right", "left", "up", "down"):
            # measured from the pixels: mask centroid steps between sampled frames, where the
            # whole object is in view, at the model's input scale
            inside = [t for t in range(cfg.frames) if v.masks[t].sum() > 0 and not (
                v.masks[t][0].any() or v.masks[t][-1].any() or v.masks[t][:, 0].any() or v.masks[t][:, -1].any())]
            steps = []
            for t in inside:
                if t + cfg.view_stride in inside:
                    (y0, x0), (y1, x1) = (np.argwhere(v.masks[k]).mean(0) for k in (t, t + cfg.view_stride))
                    steps.append(math.hypot(y1 - y0, x1 - x0) * cfg.view_size / cfg.size)
            if len(steps) >= 3:
                measured.append(np.mean(steps))
    assert len(measured) >= 4 and min(measured) >= 0.9 * cfg.min_motion, measured
    trans = [m for k in ("right", "left", "up", "down") for m in motion.get(k, [])]
    assert max(trans) > 1.3 * min(trans)  # speeds vary per instance
    v1 = SynthConfig(videos_per_class=4)
    slow = [render_video(v1, s).meta["motion_px"] for s in split_specs(v1, "train") if MOTIONS[s.label] == "right"]
    assert max(slow) < 1.0  # v1's translations: ~0.7 px per sampled frame (issue 20)


def test_spins_do_not_alias_and_headings_vary():
    import bebias.data.synth as synth
    import bebias.data.synth_motion as sm

    cfg = replace(V2, camera=False)
    spins = 0
    for s in split_specs(cfg, "train"):
        if MOTIONS[s.label].startswith("rotate"):
            poses = synth._layout(cfg, s).poses
            turns = [abs(poses[t + cfg.view_stride].angle - poses[t].angle) for t in range(cfg.frames - cfg.view_stride)]
            assert max(turns) <= math.radians(MAX_SAMPLED_TURN_DEG) + 1e-9
            assert min(turns) > 0  # modulation never stops or reverses a spin
            spins += 1
    assert spins
    rng = np.random.default_rng(3)
    angles = []
    for _ in range(50):
        poses, wraps = sm.varied_trajectory(rng, "right", 10, 64, 12.0, (0.0, 2.0, 4.0), (10.0, 10.0, 10.0), 3.0, 2)
        angles.append(math.degrees(math.atan2(poses[-1].cy - poses[0].cy, poses[-1].cx - poses[0].cx)))
        assert wraps
    assert max(np.abs(angles)) <= sm.HEADING_JITTER_DEG + 1e-6 and np.ptp(angles) > sm.HEADING_JITTER_DEG


def test_measured_camera_moves_within_the_measured_level():
    from bebias.data.synth_camera import draw_camera, margin

    T, unit = 48, 1.0
    M = margin("measured", T, unit, True)
    rng = np.random.default_rng(0)
    pans, zooms = [], []
    for _ in range(200):
        views, speed = draw_camera(rng, "measured", T, unit, M)
        assert speed <= MEASURED_PAN * unit + 1e-12
        z = [v[2] for v in views]
        zooms.append(abs(math.log(z[-1])) / (T - 1))
        assert zooms[-1] <= MEASURED_ZOOM + 1e-12
        offset = np.array([[v[0], v[1]] for v in views]) - M  # pan + shake, px
        assert np.abs(offset).max() <= MEASURED_PAN * (T - 1) + math.sqrt(3) * MEASURED_SHAKE + 1e-9
        pans.append(speed)
    assert max(pans) > 0.8 * MEASURED_PAN and max(zooms) > 0.8 * MEASURED_ZOOM  # the range is used
    # every view lies inside the plate (no sample is clamped at its edge), at the extremes too
    for S in (32, 64):
        u = S / 64.0
        M = margin("measured", T, u, True)
        P = S + 2 * M
        c = (S - 1) / 2.0
        extreme = np.random.default_rng(1)
        for _ in range(200):
            for y0, x0, z in draw_camera(extreme, "measured", T, u, M)[0]:
                for o in (y0, x0):
                    assert o + c - c / z >= 0.0 and o + c + c / z <= P - 1.0
        reach = (MEASURED_PAN * (T - 1) + math.sqrt(3) * MEASURED_SHAKE) * u  # the farthest a view can go
        z = math.exp(-MEASURED_ZOOM * (T - 1))  # the widest view
        assert M - reach + c - c / z >= 0.0 and M + reach + c + c / z <= P - 1.0


def test_camera_off_leaves_the_background_still():
    cfg = replace(V2, camera=False)
    v = render_video(cfg, split_specs(cfg, "train")[0])
    fg = v.masks.any(axis=0)
    for _ in range(2):  # dilate by 2 px: anti-aliased object edges are not background
        fg = fg | np.roll(fg, 1, 0) | np.roll(fg, -1, 0) | np.roll(fg, 1, 1) | np.roll(fg, -1, 1)
    assert (np.abs(v.frames[0].astype(int) - v.frames[-1].astype(int)).sum(-1)[~fg] == 0).all()
    on = render_video(V2, split_specs(V2, "train")[0])
    assert not np.array_equal(on.background, v.background) or on.meta["camera_speed"] > 0


def test_long_videos_leave_every_start_an_intra_negative_sharing_at_most_half():
    from bebias.data import sampling

    cfg = SynthConfig(version="v2")
    T, s = 8, 2
    span = sampling.clip_span(T, s)
    gap = -(-span // 2)  # the protocol's --intra-min-gap: half the clip span
    for start in range(cfg.frames - span + 1):
        pos = set(sampling.clip_at(cfg.frames, start, T, s).tolist())
        for seed in range(5):
            neg = sampling.shifted_clip(cfg.frames, T, s, start, np.random.default_rng(seed), min_gap=gap)
            assert len(pos & set(neg.tolist())) <= T // 2
    shared = [len(set(sampling.clip_at(32, start, T, s).tolist())
                  & set(sampling.shifted_clip(32, T, s, start, np.random.default_rng(seed)).tolist()))
              for start in range(32 - span + 1) for seed in range(5)]
    assert max(shared) > T // 2  # v1's 32 frames at the default gap of 2: some negatives share most frames


def test_conflict_split_is_larger_and_never_matches():
    cfg = SynthConfig(version="v2")
    sp = split_specs(cfg, "conflict")
    assert len(sp) == 256 * 8 and all(s.family != s.label for s in sp)
    assert len(split_specs(cfg, "iid")) == 64 * 8


def test_actor_swap_oracle_puts_the_actor_on_another_videos_scene():
    bench = SynthBenchmark(V2)
    specs = bench.specs("train")
    for i in (0, 7):
        other = oracle_partner(V2, specs, i)
        assert other.index != i and other.family != specs[i].family
        swap = render_frames(V2, specs[i], range(V2.frames), scene_of=other)
        own, theirs = bench.video("train", i), bench.video("train", other.index)
        assert np.array_equal(swap.masks, own.masks)  # the same actor, moving the same way
        assert np.array_equal(swap.background, theirs.background)  # on the other video's scene
        bg = ~(swap.masks[0] | theirs.masks[0])
        d = np.abs(swap.frames[0].astype(int) - theirs.frames[0].astype(int)).sum(-1)
        assert d[bg].mean() < 12  # background pixels: the other's (the outline colour may differ)
        assert np.array_equal(bench.actor_swap("train", i, [2, 5]), swap.frames[[2, 5]])


def test_synthetic_options_parse_v2(tmp_path):
    from bebias.data.open import open_data, parse_synth_spec

    cfg = parse_synth_spec("synthetic:version=v2,camera=off,min_motion=2.5,camera_model=pan-jitter")
    assert cfg.version == "v2" and not cfg.camera and cfg.min_motion == 2.5 and cfg.camera_model == "pan-jitter"
    with pytest.raises(BebiasError, match="bad value"):
        parse_synth_spec("synthetic:reversal_twins=maybe")
    d = open_data("synthetic:version=v2,videos_per_class=2,test_videos_per_class=1,conflict_videos_per_class=1",
                  split=PRETRAIN)
    assert len(d.videos) == 2 * 2 * 8
    with pytest.raises(BebiasError, match="pretrain"):
        open_data("synthetic", split=PRETRAIN)


def test_v2_writes_to_disk_with_its_pretrain_split(tmp_path):
    from bebias.data.open import open_data
    from bebias.data.synth_disk import write_benchmark

    cfg = SynthConfig(version="v2", classes=2, videos_per_class=2, test_videos_per_class=1,
                      conflict_videos_per_class=1, frames=12, size=32)
    out = str(tmp_path / "b")
    meta = write_benchmark(cfg, out)
    assert meta["splits"][PRETRAIN] == 8
    disk = open_data(out, split=PRETRAIN)
    mem = open_data("synthetic", split=PRETRAIN, benchmark=SynthBenchmark(cfg))
    rd, rm = disk.videos.records[5], mem.videos.records[5]
    assert np.array_equal(disk.decoder.read(rd, range(12)), mem.decoder.read(rm, range(12)))
    write_benchmark(cfg, out)  # resumes: the recorded config reads back equal
