"""User-supplied foreground masks (issue 12, item 4): a manifest's ``mask`` column and
``--masks DIR``; the probe prefers them over motion masks and records which it used.

The oracle: the embedded benchmark written to disk, read back as a plain CSV dataset with
its ground-truth mask files given as user masks, must give every video exactly its
ground-truth mask."""

import csv
import json
import os

import cv2
import numpy as np
import pytest

from bebias.data.masks import attach_masks, find_mask, mask_frames, read_mask
from bebias.data.open import open_data, parse_synth_spec
from bebias.data.records import LabeledVideos, VideoRecord
from bebias.data.sources import csv_manifest
from bebias.errors import BebiasError
from bebias.probing.source import ProbeSource, new_video_log, video_variants
from bebias.probing.suite import ProbeSuite
from tests.inproc import bebias

DATA = "synthetic:classes=3,videos_per_class=4,test_videos_per_class=3,frames=12,size=32"
N_TEST = 9


class Spec:
    frames, stride = 8, 1


# --------------------------------------------------------------------------------------
# the pure core: a whole-video mask -> the clip's masks
# --------------------------------------------------------------------------------------

def test_mask_frames_indexes_broadcasts_and_resizes():
    m = np.zeros((10, 4, 6), bool)
    for t in range(10):
        m[t, :, t % 6] = True
    got = mask_frames(m, [2, 3, 9], (4, 6))
    assert got.shape == (3, 4, 6) and np.array_equal(got, m[[2, 3, 9]])
    static = np.zeros((4, 6), bool)
    static[1:3, 2:4] = True
    got = mask_frames(static, [0, 5, 7], (4, 6))
    assert got.shape == (3, 4, 6) and all(np.array_equal(f, static) for f in got)
    assert np.array_equal(mask_frames(static[None], [1, 2], (4, 6))[1], static)  # (1, H, W) is static too
    up = mask_frames(static, [0], (8, 12))  # the mask at half the video's size: nearest neighbour
    assert up.shape == (1, 8, 12) and np.array_equal(up[0], np.kron(static, np.ones((2, 2), bool)))


def test_mask_frames_refuses_what_does_not_fit():
    with pytest.raises(BebiasError, match="has 4 frames but the clip needs frame 6"):
        mask_frames(np.zeros((4, 4, 6), bool), [3, 6], (4, 6), "m.npz")
    with pytest.raises(BebiasError, match="another aspect ratio"):
        mask_frames(np.zeros((4, 4, 4), bool), [0], (4, 6), "m.npz")


# --------------------------------------------------------------------------------------
# the files a mask may come in
# --------------------------------------------------------------------------------------

def test_read_mask_formats(tmp_path):
    m = np.random.default_rng(0).random((5, 6, 8)) > 0.5
    np.savez(tmp_path / "a.npz", masks=m, other=np.zeros(3))
    np.savez(tmp_path / "b.npz", m.astype(np.uint8))  # its only array, integers: non-zero is foreground
    np.save(tmp_path / "c.npy", m.astype(np.float32))  # floats: > 0.5
    for name in ("a.npz", "b.npz", "c.npy"):
        got = read_mask(str(tmp_path / name))
        assert got.dtype == bool and np.array_equal(got, m), name
    frames = tmp_path / "frames"
    frames.mkdir()
    for t in range(5):  # natural order: 2.png before 10.png
        cv2.imwrite(str(frames / f"{[1, 2, 10, 11, 100][t]}.png"), m[t].astype(np.uint8) * 255)
    assert np.array_equal(read_mask(str(frames)), m)
    cv2.imwrite(str(tmp_path / "static.png"), m[0].astype(np.uint8))  # 0/1 values
    assert np.array_equal(read_mask(str(tmp_path / "static.png")), m[0])


@pytest.mark.parametrize("case,needle", [
    ("missing", "no such mask"),
    ("garbage.npz", "cannot read this mask file"),
    ("pickle.npy", "cannot read this mask file"),
    ("two.npz", "none is named 'masks'"),
    ("rank.npy", "expected (T, H, W) or (H, W)"),
    ("empty", "has no images"),
    ("mask.txt", "unknown mask format"),
])
def test_bad_mask_files_are_one_line_errors(tmp_path, case, needle):
    p = tmp_path / case
    if case == "garbage.npz":
        p.write_bytes(b"not a zip")
    elif case == "pickle.npy":  # an object array needs pickle: refused, never loaded
        np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif case == "two.npz":
        np.savez(p, a=np.zeros((2, 2)), b=np.zeros((2, 2)))
    elif case == "rank.npy":
        np.save(p, np.zeros((2, 2, 2, 2)))
    elif case == "empty":
        p.mkdir()
    elif case == "mask.txt":
        p.write_text("1")
    with pytest.raises(BebiasError, match=needle.replace("(", r"\(").replace(")", r"\)")) as e:
        read_mask(str(p))
    assert str(p) in str(e.value) and "\n" not in str(e.value)


# --------------------------------------------------------------------------------------
# where masks are found: a manifest's column, --masks DIR
# --------------------------------------------------------------------------------------

def test_manifest_mask_column_is_relative_to_the_csv(tmp_path):
    (tmp_path / "v").mkdir()
    for n in ("a.mp4", "b.mp4"):
        (tmp_path / "v" / n).write_bytes(b"")
    (tmp_path / "list.csv").write_text("path,label,mask\nv/a.mp4,0,m/a.npz\nv/b.mp4,1,\n")
    recs = csv_manifest(str(tmp_path / "list.csv")).records
    assert recs[0].meta["mask"] == str(tmp_path / "m" / "a.npz") and recs[1].meta["mask"] is None


def test_masks_dir_mirrors_the_root_or_a_tail_of_it(tmp_path):
    root, masks = tmp_path / "UCF101", tmp_path / "masks"
    videos = [root / "UCF-101" / c / f"v_{c}_g01_c01.avi" for c in ("Diving", "Surfing", "Biking")]
    (masks / "UCF-101" / "Diving").mkdir(parents=True)
    np.savez(masks / "UCF-101" / "Diving" / "v_Diving_g01_c01.npz", masks=np.zeros((2, 2, 2), bool))
    (masks / "Surfing" / "v_Surfing_g01_c01").mkdir(parents=True)  # a folder of PNG frames, tail of the path
    found = [find_mask(str(masks), str(v), str(root)) for v in videos]
    assert found == [str(masks / "UCF-101" / "Diving" / "v_Diving_g01_c01.npz"),
                     str(masks / "Surfing" / "v_Surfing_g01_c01"), None]

    given = LabeledVideos([VideoRecord(str(videos[2]), 2, meta={"mask": "/elsewhere.npz"}),
                           *[VideoRecord(str(v), i) for i, v in enumerate(videos[:2])]], ["a", "b", "c"])
    out = attach_masks(given, str(masks), str(root))
    assert [r.meta.get("mask") for r in out.records] == ["/elsewhere.npz", *found[:2]]  # the manifest's wins
    with pytest.raises(BebiasError, match="no mask for any of the 1 videos"):
        attach_masks(LabeledVideos([VideoRecord(str(videos[2]), 0)], ["a"]), str(masks), str(root))
    with pytest.raises(BebiasError, match="must be a folder"):
        attach_masks(given, str(tmp_path / "nope"), str(root))
    with pytest.raises(BebiasError, match="records its own ground-truth masks"):
        open_data(DATA, split="conflict", masks=str(masks))


# --------------------------------------------------------------------------------------
# the probe's source: given masks beat motion masks, bad ones skip the video
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """The benchmark on disk, and its conflict split as a plain CSV dataset whose ``mask``
    column names each video's ground-truth mask file."""
    from bebias.data.synth_disk import write_benchmark

    d = tmp_path_factory.mktemp("given") / "bench"
    write_benchmark(parse_synth_spec(DATA), str(d))  # FFV1: lossless
    with open(d / "manifest.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "conflict"]
    with open(d / "given.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "class_name", "mask"])
        for r in rows:
            w.writerow([r["path"], r["label"], r["class_name"], r["mask_path"]])
    with open(d / "plain.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "class_name"])
        for r in rows:
            w.writerow([r["path"], r["label"], r["class_name"]])
    return d


def test_given_masks_are_the_ground_truth_they_name(bench):
    truth = ProbeSource(open_data(str(bench), split="conflict"), Spec, ProbeSuite())
    for data in (open_data(str(bench / "given.csv")), open_data(str(bench / "plain.csv"), masks=str(bench / "masks"))):
        src = ProbeSource(data, Spec, ProbeSuite())
        assert src.data_kind == "dataset" and src.given_masks == N_TEST and src.has_gt
        for i in range(N_TEST):
            v, t = src.video(i), truth.video(i)
            assert v.source == "given" and t.source == "ground-truth"
            assert np.array_equal(v.clip, t.clip) and np.array_equal(v.mask, t.mask)
            assert v.usable == t.usable and v.quality == t.quality
    # without them: motion masks
    plain = ProbeSource(open_data(str(bench / "plain.csv")), Spec, ProbeSuite())
    assert plain.given_masks == 0 and not plain.has_gt and plain.video(0).source.startswith("motion:")
    # a motion method asked by name wins over given masks
    forced = ProbeSource(open_data(str(bench / "given.csv")), Spec, ProbeSuite(mask="diff"))
    assert forced.video(0).source == "motion:diff"


def test_a_bad_given_mask_skips_and_lists_its_video(bench, tmp_path):
    rows = list(csv.reader(open(bench / "given.csv")))
    rows[1][3] = str(tmp_path / "missing.npz")  # video 0: a mask file that is not there
    rows[2][3] = str(tmp_path / "short.npz")  # video 1: too few frames
    rows[3][3] = ""  # video 2: none given -> no mask under "ground-truth"
    np.savez(tmp_path / "short.npz", masks=np.zeros((2, 32, 32), bool))
    for r in rows[1:]:
        r[0] = str(bench / r[0])
        if r[3] and not os.path.isabs(r[3]):
            r[3] = str(bench / r[3])
    with open(tmp_path / "bad.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    src = ProbeSource(open_data(str(tmp_path / "bad.csv")), Spec, ProbeSuite(mask="ground-truth"))
    vids, state = new_video_log()
    for i in range(4):
        list(video_variants(i, src, list(range(N_TEST)), ["swap-background"], src.suite, 0, vids, state))
    assert vids["failed_index"] == [0, 1]
    assert "no such mask file" in vids["failed_error"][0] and "missing.npz" in vids["failed_error"][0]
    assert "has 2 frames" in vids["failed_error"][1]
    assert vids["index"] == [2, 3] and vids["usable"] == [False, True]
    assert state["excluded"] == {"swap-background": {"mask_unusable": 1}}


def test_hostile_given_masks_skip_and_list_their_video(bench, tmp_path):
    """Memory bombs, an empty dimension and a FIFO as masks (issue 23, item 8): each video
    is skipped and listed, never read whole (MemoryError), divided by zero or blocked on."""
    from tests.test_hostile_data import declared_npy, declared_npz

    rows = list(csv.reader(open(bench / "given.csv")))
    bad = [declared_npy(tmp_path / "bomb.npy", (10**6, 10**4, 10**4)),
           declared_npz(tmp_path / "bomb.npz", (10**6, 10**4, 10**4)),
           str(tmp_path / "flat.npz")]
    np.savez(bad[2], masks=np.zeros((12, 0, 32), bool))
    os.mkfifo(tmp_path / "fifo.npy")
    bad.append(str(tmp_path / "fifo.npy"))
    for r, m in zip(rows[1:], bad):
        r[3] = m
    for r in rows[1:]:
        r[0] = str(bench / r[0])
        r[3] = r[3] if os.path.isabs(r[3]) else str(bench / r[3])
    with open(tmp_path / "bad.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    src = ProbeSource(open_data(str(tmp_path / "bad.csv")), Spec, ProbeSuite(mask="ground-truth"))
    vids, state = new_video_log()
    for i in range(5):
        list(video_variants(i, src, list(range(N_TEST)), ["swap-background"], src.suite, 0, vids, state))
    assert vids["failed_index"] == [0, 1, 2, 3] and vids["index"] == [4]
    errs = vids["failed_error"]
    assert "more than 4x the video's 32x32" in errs[0] and "bomb.npy" in errs[0]
    assert "more than 4x" in errs[1] and "empty dimension" in errs[2] and "not a regular file" in errs[3]


def test_probe_cli_records_the_given_masks(bench, tmp_path, tiny_classifier_ckpt, tiny_data):
    assert tiny_data == DATA
    ckpt = tiny_classifier_ckpt
    out = tmp_path / "probe"
    r = bebias("probe", ckpt, "--data", str(bench / "plain.csv"), "--masks", str(bench / "masks"),
               "--swap-backgrounds", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert f"masks: given for {N_TEST} of {N_TEST} videos (--masks {bench / 'masks'})" in r.stderr
    m = json.loads((out / "metrics.json").read_text())
    assert m["videos"]["masks"]["sources"] == {"given": N_TEST}
    assert m["provenance"]["given_masks"] == {"dir": str(bench / "masks"), "videos": N_TEST}
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    assert {r["mask_source"] for r in rows if r["variant"] == "swap-background"} == {"given"}
    r = bebias("probe", ckpt, "--data", str(bench / "plain.csv"), "--masks", str(tmp_path / "nope"), "--out",
               str(tmp_path / "p2"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--masks must be a folder" in r.stderr
