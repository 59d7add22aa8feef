"""The embedded benchmark: determinism, split composition, ground truth, disk round trip."""

import hashlib
import os

import numpy as np
import pytest

from bebias.data.synth import (FAMILIES, MOTIONS, SPLITS, SynthBenchmark, SynthConfig, measured_bias,
                               render_video, split_specs)
from bebias.errors import BebiasError

SMALL = SynthConfig(classes=4, videos_per_class=8, test_videos_per_class=4, frames=12, size=32, seed=3)


def test_same_seed_same_arrays_and_different_seed_differs():
    spec = split_specs(SMALL, "train")[5]
    a, b = render_video(SMALL, spec), render_video(SMALL, spec)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.masks, b.masks)
    other = SynthConfig(**{**SMALL.to_dict(), "seed": 4})
    c = render_video(other, split_specs(other, "train")[5])
    assert not np.array_equal(a.frames, c.frames)


def test_golden_checksum():
    """Pins the exact pixels: a change to rendering (or a platform-dependent op) shows up here."""
    cfg = SynthConfig(classes=8, videos_per_class=8, test_videos_per_class=8, frames=8, size=32, seed=0)
    h = hashlib.sha256()
    for split in SPLITS:
        for spec in split_specs(cfg, split)[:3]:
            v = render_video(cfg, spec)
            h.update(v.frames.tobytes())
            h.update(v.masks.tobytes())
    assert h.hexdigest()[:16] == GOLDEN


GOLDEN = "4966a8bcd1f51792"


@pytest.mark.parametrize("bias", [0.5, 0.7, 0.9, 0.99])
def test_training_split_measured_bias(bias):
    cfg = SynthConfig(bias=bias)
    sp = split_specs(cfg, "train")
    n = cfg.videos_per_class
    assert abs(measured_bias(sp) - round(bias * n) / n) < 1e-12
    assert abs(measured_bias(sp) - bias) <= 0.5 / n


def test_conflict_never_matches_and_unbiased_is_independent():
    cfg = SynthConfig()
    assert all(s.family != s.label for s in split_specs(cfg, "conflict"))
    cells = np.zeros((cfg.classes, cfg.classes), int)
    for s in split_specs(cfg, "train-unbiased"):
        cells[s.label, s.family] += 1
    assert (cells == cfg.videos_per_class // cfg.classes).all()  # exactly balanced


def test_splits_are_balanced_per_class_and_distinct():
    cfg = SMALL
    for split in SPLITS:
        sp = split_specs(cfg, split)
        assert len(sp) == cfg.split_size(split)
        assert np.bincount([s.label for s in sp], minlength=cfg.classes).tolist() == \
            [cfg.split_size(split) // cfg.classes] * cfg.classes
    a = render_video(cfg, split_specs(cfg, "train")[0])
    b = render_video(cfg, split_specs(cfg, "iid")[0])
    assert not np.array_equal(a.frames, b.frames)


def test_video_content_shapes_and_masks():
    cfg = SynthConfig(frames=16, size=64)
    bench = SynthBenchmark(cfg)
    for spec in bench.specs("train")[:16]:
        v = bench.video("train", spec.index)
        assert v.frames.shape == (16, 64, 64, 3) and v.frames.dtype == np.uint8
        assert v.masks.shape == (16, 64, 64) and v.masks.dtype == bool
        cover = v.masks.mean(axis=(1, 2))
        assert (cover > 0.01).all() and (cover < 0.45).all()  # a visible object, fully in frame
        # the mask is where the object is: inside it the frame differs from the clean background plate
        diff = np.abs(v.frames[0].astype(int) - v.background.astype(int)).sum(-1)
        assert diff[v.masks[0]].mean() > 5 * max(diff[~v.masks[0]].mean(), 1e-3)


def test_motion_is_the_class():
    """The mask centroid moves as the class says (translations) and stays put (rotations)."""
    cfg = SynthConfig(frames=16, camera=False)
    expect = {"right": (1, 0), "left": (-1, 0), "up": (0, -1), "down": (0, 1)}
    rotations = {"rotate-cw", "rotate-ccw"}
    # the names are the benchmark's: a class renamed or dropped fails here, not silently below
    assert set(expect) | rotations <= set(MOTIONS[:cfg.classes]), MOTIONS[:cfg.classes]
    checked = []
    for spec in split_specs(cfg, "train")[:80]:
        v = render_video(cfg, spec)
        ys, xs = [], []
        for m in v.masks:
            yy, xx = np.nonzero(m)
            ys.append(yy.mean())
            xs.append(xx.mean())
        dx, dy = xs[-1] - xs[0], ys[-1] - ys[0]
        name = MOTIONS[spec.label]
        if name in expect:
            ex, ey = expect[name]
            assert dx * ex + dy * ey > 8 and abs(dx * ey - dy * ex) < 3, (name, dx, dy)
            checked.append(name)
        if name in rotations:  # spins in place: the centroid only wobbles around the pivot
            assert np.ptp(xs) < 8 and np.ptp(ys) < 8
            checked.append(name)
    assert set(checked) == set(expect) | rotations, sorted(set(checked))  # every class checked, on videos


def test_camera_moves_background_only_when_on():
    on = SynthConfig(frames=16)
    off = SynthConfig(frames=16, camera=False)
    moved = 0
    for cfg, want in ((on, True), (off, False)):
        for spec in split_specs(cfg, "train")[:12]:
            v = render_video(cfg, spec)
            fg = v.masks[0] | v.masks[-1]
            near = np.zeros_like(fg)  # dilate by 2 px: anti-aliased object edges are not background
            for dy in range(-2, 3):
                for dx in range(-2, 3):
                    near |= np.roll(fg, (dy, dx), axis=(0, 1))
            bg = ~near
            changed = np.abs(v.frames[0].astype(int) - v.frames[-1].astype(int)).sum(-1)[bg].mean() > 1
            if want:
                moved += changed
            else:
                assert not changed
    assert moved >= 10


def test_families_include_real_photographs():
    from bebias.data.synth_backgrounds import load_photo

    img = load_photo("astronaut")
    assert img.shape == (512, 512, 3) and img.std() > 30


def test_bad_config_is_a_user_error():
    with pytest.raises(BebiasError):
        SynthConfig(classes=len(MOTIONS) + 1)
    with pytest.raises(BebiasError):
        SynthConfig(bias=1.5)
    with pytest.raises(BebiasError):
        SynthConfig(size=33)
    assert len(FAMILIES) == len(MOTIONS)


def test_write_read_roundtrip_lossless(tmp_path):
    from bebias.data.open import open_data
    from bebias.data.synth_disk import load_masks, write_benchmark

    out = str(tmp_path / "bench")
    write_benchmark(SMALL, out)
    bench = SynthBenchmark(SMALL)
    for split in SPLITS:
        disk = open_data(out, split=split)
        mem = open_data("synthetic", split=split, benchmark=bench)
        assert len(disk.videos) == len(mem.videos) and not disk.hflip_safe
        assert [r.label for r in disk.videos.records] == [r.label for r in mem.videos.records]
        for rd, rm in list(zip(disk.videos.records, mem.videos.records))[:3]:
            n = disk.decoder.num_frames(rd)
            assert n == SMALL.frames
            assert np.array_equal(disk.decoder.read(rd, range(n)), mem.decoder.read(rm, range(n)))
            assert np.array_equal(load_masks(os.path.join(out, rd.meta["mask_path"])),
                                  mem.decoder.masks(rm, range(n)))
            assert int(rd.meta["family"]) == rm.meta["family"]


def test_write_resumes_and_refuses_other_config(tmp_path):
    from bebias.data.synth_disk import MANIFEST, write_benchmark

    out = tmp_path / "bench"
    write_benchmark(SMALL, str(out))
    victim = next((out / "videos" / "train").iterdir())
    stamp = {p: p.stat().st_mtime_ns for p in (out / "videos" / "iid").iterdir()}
    victim.unlink()
    (out / MANIFEST).unlink()
    write_benchmark(SMALL, str(out))  # resume: re-renders only what is missing
    assert victim.exists() and (out / MANIFEST).exists()
    assert stamp == {p: p.stat().st_mtime_ns for p in (out / "videos" / "iid").iterdir()}
    with pytest.raises(BebiasError, match="different configuration"):
        write_benchmark(SynthConfig(**{**SMALL.to_dict(), "bias": 0.5}), str(out))
