"""Tests for bebias.data.sources on tiny fixture split files (no real datasets)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bebias.data.records import LabeledVideos
from bebias.data.sources import (
    class_folders,
    csv_manifest,
    diving48,
    hmdb51,
    load_source,
    ucf101,
)
from bebias.errors import BebiasError, DatasetFormatError


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def frames(path: Path, n: int = 2) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (path / f"img_{i:05d}.jpg").write_bytes(b"")
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


def one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


# --------------------------------------------------------------------------------------
# UCF101
# --------------------------------------------------------------------------------------

UCF_VIDEOS = {
    "ApplyEyeMakeup": ["v_ApplyEyeMakeup_g01_c01", "v_ApplyEyeMakeup_g08_c01"],
    "Basketball": ["v_Basketball_g01_c01", "v_Basketball_g08_c01"],
}


@pytest.fixture
def ucf(tmp_path: Path) -> Path:
    root = tmp_path / "UCF-101"
    for cls, vids in UCF_VIDEOS.items():
        touch(root / cls / f"{vids[0]}.avi")
        frames(root / cls / vids[1])  # the second video of each class is a frame folder
    ann = root / "ucfTrainTestlist"
    # Windows line endings, trailing whitespace and blank lines are tolerated
    write(ann / "classInd.txt", "1 ApplyEyeMakeup\r\n2 Basketball  \r\n\r\n")
    write(
        ann / "trainlist01.txt",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\n"
        "Basketball/v_Basketball_g08_c01.avi 2 \r\n\n",
    )
    write(
        ann / "testlist01.txt",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\n\nBasketball/v_Basketball_g01_c01.avi\n",
    )
    write(ann / "trainlist02.txt", "Basketball/v_Basketball_g01_c01.avi 2\n")
    write(ann / "testlist02.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi\n")
    return root


def test_ucf101_train_labels_are_zero_based(ucf: Path) -> None:
    lv = ucf101(ucf, "train", 1)
    assert isinstance(lv, LabeledVideos)
    assert lv.classes == ["ApplyEyeMakeup", "Basketball"]
    assert [r.label for r in lv.records] == [0, 1]
    # listed as .avi, present as a frame folder -> the folder is used
    assert lv.records[0].path == str(ucf / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c01")
    assert lv.records[0].meta == {"split": "train", "fold": 1, "class_name": "ApplyEyeMakeup"}
    assert lv.missing == []
    assert lv.name == "ucf101/train/fold1"


def test_ucf101_test_labels_come_from_classind(ucf: Path) -> None:
    lv = ucf101(ucf, "test", 1)
    assert [r.label for r in lv.records] == [0, 1]
    assert [r.meta["class_name"] for r in lv.records] == ["ApplyEyeMakeup", "Basketball"]
    assert lv.records[1].path == str(ucf / "Basketball" / "v_Basketball_g01_c01.avi")
    assert all(r.meta["split"] == "test" for r in lv.records)


def test_ucf101_fold_selection(ucf: Path) -> None:
    tr, te = ucf101(ucf, "train", 2), ucf101(ucf, "test", 2)
    assert [(os.path.basename(r.path), r.label) for r in tr.records] == [
        ("v_Basketball_g01_c01.avi", 1)
    ]
    assert [r.label for r in te.records] == [0]
    assert tr.records[0].meta["fold"] == 2


def test_ucf101_test_label_case_insensitive_folder(tmp_path: Path) -> None:
    # the real UCF101 quirk: classInd says HandstandPushups, files say HandStandPushups
    root = tmp_path / "ucf"
    touch(root / "HandStandPushups" / "v_x.avi")
    write(root / "classInd.txt", "1 Archery\n2 HandstandPushups\n")
    write(root / "testlist01.txt", "HandStandPushups/v_x.avi\n")
    lv = ucf101(root, "test")
    assert lv.records[0].label == 1


def test_ucf101_explicit_annotations_and_shallow_search(ucf: Path, tmp_path: Path) -> None:
    ann = ucf / "ucfTrainTestlist"
    moved = tmp_path / "elsewhere" / "lists"
    moved.parent.mkdir()
    ann.rename(moved)
    with pytest.raises(DatasetFormatError) as e:
        ucf101(ucf)
    assert "classInd.txt" in one_line(e) and str(ucf) in str(e.value)
    assert len(ucf101(ucf, annotations=moved)) == 2
    assert len(ucf101(ucf, annotations=moved / "classInd.txt")) == 2  # a file in it works too
    # a shallow search (depth 2) finds it under another name
    (ucf / "meta").mkdir()
    moved.rename(ucf / "meta" / "splits")
    assert len(ucf101(ucf, "test")) == 2


def test_ucf101_missing_videos_kept_and_counted(ucf: Path) -> None:
    os.remove(ucf / "Basketball" / "v_Basketball_g01_c01.avi")
    lv = ucf101(ucf, "test")
    assert len(lv) == 2
    assert lv.missing == [str(ucf / "Basketball" / "v_Basketball_g01_c01.avi")]


def test_ucf101_none_exist_names_root(ucf: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty_root"
    empty.mkdir()
    with pytest.raises(BebiasError) as e:
        ucf101(empty, "test", annotations=ucf / "ucfTrainTestlist")
    msg = one_line(e)
    assert "none of the 2 videos" in msg and "testlist01.txt" in msg and str(empty) in msg


@pytest.mark.parametrize(
    ("fname", "content", "needle"),
    [
        ("trainlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi one\n", "line 1"),
        ("trainlist01.txt", "\nApplyEyeMakeup/a.avi 1\nBasketball/b.avi 9\n", "line 3"),
        ("trainlist01.txt", "ApplyEyeMakeup/a.avi 1 extra\n", "line 1"),
        ("testlist01.txt", "ApplyEyeMakeup/a.avi\nDiving/b.avi\n", "line 2"),
        ("testlist01.txt", "no_class_folder.avi\n", "line 1"),
        ("testlist01.txt", " \r\n\r\n", "empty"),
        ("classInd.txt", "1 ApplyEyeMakeup\nx Basketball\n", "line 2"),
        ("classInd.txt", "1 ApplyEyeMakeup\n3 Basketball\n", "1..2"),
        ("classInd.txt", "1 ApplyEyeMakeup\n2 ApplyEyeMakeup\n", "repeated"),
    ],
)
def test_ucf101_malformed_files(ucf: Path, fname: str, content: str, needle: str) -> None:
    f = write(ucf / "ucfTrainTestlist" / fname, content)
    split = "test" if fname.startswith("test") else "train"
    with pytest.raises(DatasetFormatError) as e:
        ucf101(ucf, split)
    msg = one_line(e)
    assert str(f) in msg and needle in msg


def test_ucf101_bad_split_fold_and_missing_paths(ucf: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetFormatError, match="fold must be 1, 2 or 3") as e:
        ucf101(ucf, fold=4)
    assert str(ucf) in one_line(e)
    with pytest.raises(DatasetFormatError, match="split must be"):
        ucf101(ucf, split="val")
    with pytest.raises(DatasetFormatError) as e:
        ucf101(ucf, "train", 3)  # trainlist03.txt is absent
    assert "trainlist03.txt" in one_line(e) and "does not exist" in str(e.value)
    with pytest.raises(DatasetFormatError) as e:
        ucf101(tmp_path / "nope")
    assert str(tmp_path / "nope") in one_line(e) and "does not exist" in str(e.value)
    with pytest.raises(DatasetFormatError) as e:
        ucf101(ucf, annotations=tmp_path / "no_ann")
    assert str(tmp_path / "no_ann") in one_line(e)


# --------------------------------------------------------------------------------------
# HMDB51
# --------------------------------------------------------------------------------------


@pytest.fixture
def hmdb(tmp_path: Path) -> Path:
    root = tmp_path / "hmdb51"
    for cls in ("brush_hair", "wave", "a_b"):
        for i in range(3):
            touch(root / cls / f"{cls}_{i}.avi")
    frames(root / "wave" / "wave_3")  # frame-folder video
    ann = root / "testTrainMulti_7030_splits"
    # the official files end lines with a space; CRLF and blank lines are tolerated too
    write(
        ann / "brush_hair_test_split1.txt",
        "brush_hair_0.avi 1 \r\nbrush_hair_1.avi 2 \r\nbrush_hair_2.avi 0 \r\n",
    )
    write(
        ann / "wave_test_split1.txt",
        "wave_0.avi 1\nwave_1.avi 0\nwave_2.avi 2\n\nwave_3.avi 1\n",
    )
    write(ann / "a_b_test_split1.txt", "a_b_0.avi 2\na_b_1.avi 2\na_b_2.avi 1\n")
    write(ann / "brush_hair_test_split2.txt", "brush_hair_0.avi 2\n")
    write(ann / "wave_test_split2.txt", "wave_0.avi 1\nwave_2.avi 1\n")
    return root


def test_hmdb51_flags_and_sorted_classes(hmdb: Path) -> None:
    tr = hmdb51(hmdb, "train", 1)
    # sorted by class name (not by split-file name: "a_b" < "brush_hair" < "wave")
    assert tr.classes == ["a_b", "brush_hair", "wave"]
    got = [(os.path.basename(r.path), r.label) for r in tr.records]
    assert got == [("a_b_2.avi", 0), ("brush_hair_0.avi", 1), ("wave_0.avi", 2), ("wave_3", 2)]
    assert tr.records[-1].path == str(hmdb / "wave" / "wave_3")
    assert tr.records[0].meta == {"split": "train", "fold": 1, "class_name": "a_b"}
    te = hmdb51(hmdb, "test", 1)
    assert sorted(os.path.basename(r.path) for r in te.records) == [
        "a_b_0.avi", "a_b_1.avi", "brush_hair_1.avi", "wave_2.avi"
    ]
    # flag 0 (unused) appears in neither split
    names = {os.path.basename(r.path) for r in tr.records + te.records}
    assert "brush_hair_2.avi" not in names and "wave_1.avi" not in names


def test_hmdb51_fold2_and_missing(hmdb: Path) -> None:
    os.remove(hmdb / "wave" / "wave_0.avi")
    tr = hmdb51(hmdb, "train", 2)
    assert tr.classes == ["brush_hair", "wave"]
    assert [r.label for r in tr.records] == [1, 1]
    assert tr.missing == [str(hmdb / "wave" / "wave_0.avi")]
    assert tr.records[0].path == str(hmdb / "wave" / "wave_0.avi")  # kept, not dropped


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("wave_0.avi 1\nwave_1.avi 3\n", "line 2"),
        ("wave_0.avi 1\nwave_1.avi\n", "line 2"),
        ("wave_0.avi x\n", "line 1"),
        ("\r\n  \r\n", "empty"),
    ],
)
def test_hmdb51_malformed(hmdb: Path, content: str, needle: str) -> None:
    f = write(hmdb / "testTrainMulti_7030_splits" / "wave_test_split1.txt", content)
    with pytest.raises(DatasetFormatError) as e:
        hmdb51(hmdb)
    msg = one_line(e)
    assert str(f) in msg and needle in msg


def test_hmdb51_errors(hmdb: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetFormatError, match="fold must be"):
        hmdb51(hmdb, fold=0)
    with pytest.raises(DatasetFormatError) as e:
        hmdb51(hmdb, fold=3)  # no *_test_split3.txt anywhere
    assert "_test_split3.txt" in one_line(e) and str(hmdb) in str(e.value)
    # a fold whose files mark nothing for the split
    write(hmdb / "testTrainMulti_7030_splits" / "wave_test_split2.txt", "wave_0.avi 0\n")
    write(
        hmdb / "testTrainMulti_7030_splits" / "brush_hair_test_split2.txt", "brush_hair_0.avi 0\n"
    )
    with pytest.raises(DatasetFormatError) as e:
        hmdb51(hmdb, "test", 2)
    assert "_test_split2.txt" in one_line(e) and "flag 2" in str(e.value)
    empty = tmp_path / "other_root"
    empty.mkdir()
    with pytest.raises(BebiasError) as e:
        hmdb51(empty, annotations=hmdb / "testTrainMulti_7030_splits")
    assert "none of the 4 videos" in one_line(e) and str(empty) in str(e.value)


# --------------------------------------------------------------------------------------
# Diving48
# --------------------------------------------------------------------------------------


@pytest.fixture
def dv(tmp_path: Path) -> Path:
    root = tmp_path / "diving48"
    touch(root / "rgb" / "vidA.mp4")
    touch(root / "rgb" / "vidB.mp4")
    frames(root / "rgb" / "vidC")  # a frame folder beside the videos
    frames(root / "rgb" / "vidD")
    write(
        root / "Diving48_V2_train.json",
        json.dumps(
            [
                {"vid_name": "vidA", "label": 0, "start_frame": 0, "end_frame": 52},
                {"vid_name": "vidB", "label": 2, "start_frame": 3, "end_frame": 10},
                {"vid_name": "vidC", "label": 1},
            ]
        ),
    )
    write(
        root / "Diving48_V2_test.json",
        json.dumps([{"vid_name": "vidD", "label": 4, "start_frame": 0, "end_frame": 7}]),
    )
    return root


def test_diving48_paths_start_end_and_default_names(dv: Path) -> None:
    lv = diving48(dv, "train")
    assert [r.path for r in lv.records] == [
        str(dv / "rgb" / "vidA.mp4"), str(dv / "rgb" / "vidB.mp4"), str(dv / "rgb" / "vidC")
    ]
    assert [(r.start, r.end) for r in lv.records] == [(0, 52), (3, 10), (None, None)]
    assert [r.label for r in lv.records] == [0, 2, 1]
    # no vocab: class_NN up to the max label of train AND test
    assert lv.classes == [f"class_{i:02d}" for i in range(5)]
    assert lv.records[1].meta == {"split": "train", "class_name": "class_02", "vid_name": "vidB"}
    te = diving48(dv, "test")
    assert te.records[0].path == str(dv / "rgb" / "vidD")
    assert te.classes == lv.classes


def test_diving48_vocab_and_v1_names(dv: Path, tmp_path: Path) -> None:
    ann = tmp_path / "annotations"
    vocab = [[f"a{i}", "b", "c", "d"] for i in range(5)]
    write(ann / "Diving48_vocab.json", json.dumps(vocab))
    os.rename(dv / "Diving48_V2_test.json", ann / "Diving48_test.json")  # V1 file name
    lv = diving48(dv, "test", annotations=ann)
    assert lv.classes[4] == "a4/b/c/d"
    assert lv.records[0].meta["class_name"] == "a4/b/c/d"


def test_diving48_missing_and_none_exist(dv: Path, tmp_path: Path) -> None:
    os.remove(dv / "rgb" / "vidB.mp4")
    lv = diving48(dv)
    assert lv.missing == [str(dv / "rgb" / "vidB.mp4")]  # expected where the others are
    empty = tmp_path / "vids"
    empty.mkdir()
    with pytest.raises(BebiasError) as e:
        diving48(empty, annotations=dv)
    msg = one_line(e)
    assert "none of the 3 videos" in msg and "Diving48_V2_train.json" in msg and str(empty) in msg


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('[{"vid_name": "vidA", "label": 0},', "not valid JSON"),
        ("", "empty"),
        ("[]", "empty"),
        ('{"vid_name": "vidA"}', "JSON list"),
        ('[{"vid_name": "vidA", "label": "zero"}]', "item [0]"),
        ('[{"vid_name": "vidA", "label": 0}, {"label": 1}]', "item [1]"),
        ('[{"vid_name": "vidA", "label": 0, "start_frame": 9, "end_frame": 3}]', "end_frame"),
    ],
)
def test_diving48_malformed(dv: Path, content: str, needle: str) -> None:
    f = write(dv / "Diving48_V2_train.json", content)
    with pytest.raises(DatasetFormatError) as e:
        diving48(dv)
    msg = one_line(e)
    assert str(f) in msg and needle in msg


def test_diving48_errors(dv: Path, tmp_path: Path) -> None:
    write(dv / "Diving48_vocab.json", json.dumps([["a", "b", "c", "d"]]))
    with pytest.raises(DatasetFormatError) as e:
        diving48(dv)  # label 2 with a 1-class vocabulary
    assert "Diving48_V2_train.json" in one_line(e) and "vocab" in str(e.value)
    write(dv / "Diving48_vocab.json", '[["a", "b"], 3]')
    with pytest.raises(DatasetFormatError) as e:
        diving48(dv)
    assert "Diving48_vocab.json" in one_line(e)
    with pytest.raises(DatasetFormatError, match="split must be"):
        diving48(dv, "val")
    nothing = tmp_path / "isolated" / "nothing"  # no split files here, above or beside
    nothing.mkdir(parents=True)
    with pytest.raises(DatasetFormatError) as e:
        diving48(nothing)
    assert "Diving48_V2_train.json" in one_line(e) and str(nothing) in str(e.value)


# --------------------------------------------------------------------------------------
# CSV manifest
# --------------------------------------------------------------------------------------


@pytest.fixture
def vids(tmp_path: Path) -> Path:
    d = tmp_path / "ds"
    for n in ("a.mp4", "b.mp4", "c.mp4", "sub/d.avi"):
        touch(d / "videos" / n)
    return d


def test_csv_int_labels_with_class_names_extra_columns(vids: Path) -> None:
    m = write(
        vids / "m.csv",
        "path,label,start,end,class_name,family\r\n"
        "videos/a.mp4,1,0,16,walk,x\r\n"
        "videos/b.mp4,0,,,run,y\r\n"
        "\r\n"
        "videos/sub/d.avi, 3 ,2,,,z\r\n",
    )
    lv = csv_manifest(m)
    assert lv.classes == ["run", "walk", "2", "3"]
    assert [r.label for r in lv.records] == [1, 0, 3]
    assert lv.records[0].path == str(vids / "videos" / "a.mp4")  # relative to the CSV
    assert [(r.start, r.end) for r in lv.records] == [(0, 16), (None, None), (2, None)]
    assert lv.records[0].meta == {"family": "x", "class_name": "walk"}
    assert lv.name == "m"


def test_csv_int_labels_default_names_and_absolute_paths(vids: Path, tmp_path: Path) -> None:
    m = write(tmp_path / "elsewhere" / "m.csv", f"path,label\n{vids / 'videos' / 'a.mp4'},2\n")
    lv = csv_manifest(m)
    assert lv.classes == ["0", "1", "2"]
    assert lv.records[0].path == str(vids / "videos" / "a.mp4")
    assert lv.records[0].meta == {"class_name": "2"}


def test_csv_string_labels_and_split_column(vids: Path) -> None:
    m = write(
        vids / "m.csv",
        "PATH,Label,split\n"
        "videos/a.mp4,walk,train\nvideos/b.mp4,run,test\nvideos/c.mp4,jump,train\n",
    )
    full = csv_manifest(m)
    assert full.classes == ["jump", "run", "walk"]
    assert [r.label for r in full.records] == [2, 1, 0]
    tr = csv_manifest(m, "train")
    assert [os.path.basename(r.path) for r in tr.records] == ["a.mp4", "c.mp4"]
    assert tr.classes == ["jump", "run", "walk"]  # classes from all rows, not just train
    assert tr.records[0].meta == {"split": "train", "class_name": "walk"}
    assert tr.name == "m/train"
    with pytest.raises(DatasetFormatError) as e:
        csv_manifest(m, "val")
    msg = one_line(e)
    assert str(m) in msg and "available splits: test, train" in msg


def test_csv_split_without_column(vids: Path) -> None:
    m = write(vids / "m.csv", "path,label\nvideos/a.mp4,0\n")
    with pytest.raises(DatasetFormatError) as e:
        csv_manifest(m, "train")
    assert str(m) in one_line(e) and "available splits: none" in str(e.value)


def test_csv_missing_videos(vids: Path) -> None:
    m = write(vids / "m.csv", "path,label\nvideos/a.mp4,0\nvideos/gone.mp4,1\n")
    assert csv_manifest(m).missing == [str(vids / "videos" / "gone.mp4")]
    m2 = write(vids / "m2.csv", "path,label\ngone1.mp4,0\ngone2.mp4,1\n")
    with pytest.raises(BebiasError) as e:
        csv_manifest(m2)
    assert "none of the 2 videos" in one_line(e) and str(m2) in str(e.value)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("", "empty"),
        ("path,label\n", "no rows"),
        ("videos/a.mp4,0\n", "header"),
        ("path,label\nvideos/a.mp4,0\nvideos/b.mp4\n", "line 3"),
        ("path,label\nvideos/a.mp4,0,7\n", "line 2"),
        ("path,label,start\nvideos/a.mp4,0,x\n", "line 2"),
        ("path,label,start,end\nvideos/a.mp4,0,5,5\n", "line 2"),
        ("path,label\nvideos/a.mp4,-1\n", "line 2"),
        ("path,label\n,0\n", "line 2"),
        ("path,label,class_name\nvideos/a.mp4,0,x\nvideos/b.mp4,0,y\n", "line 3"),
        ("path,label,label\nvideos/a.mp4,0,0\n", "repeated"),
        ('path,label\n"videos/a.mp4,0\n', "malformed CSV"),
    ],
)
def test_csv_malformed(vids: Path, content: str, needle: str) -> None:
    m = write(vids / "bad.csv", content)
    with pytest.raises(DatasetFormatError) as e:
        csv_manifest(m)
    msg = one_line(e)
    assert str(m) in msg and needle in msg


def test_csv_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(DatasetFormatError) as e:
        csv_manifest(tmp_path / "nope.csv")
    assert str(tmp_path / "nope.csv") in one_line(e) and "does not exist" in str(e.value)


# --------------------------------------------------------------------------------------
# class folders
# --------------------------------------------------------------------------------------


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    root = tmp_path / "clips"
    touch(root / "walk" / "w1.MP4")
    touch(root / "walk" / "w0.webm")
    touch(root / "walk" / "notes.txt")  # ignored
    touch(root / "walk" / ".hidden.mp4")  # ignored
    (root / "walk" / "empty_dir").mkdir()  # no images -> not a video
    frames(root / "run" / "r0")  # frame-folder video
    touch(root / "run" / "r1.mkv")
    (root / "zzz_empty_class").mkdir()
    return root


def test_class_folders(folders: Path) -> None:
    lv = class_folders(folders)
    assert lv.classes == ["run", "walk", "zzz_empty_class"]
    got = [(os.path.basename(r.path), r.label) for r in lv.records]
    assert got == [("r0", 0), ("r1.mkv", 0), ("w0.webm", 1), ("w1.MP4", 1)]
    assert lv.records[0].meta == {"class_name": "run"}
    assert lv.name == "clips"


def test_class_folders_split_subfolder(folders: Path) -> None:
    touch(folders / "test" / "walk" / "t.mp4")
    lv = class_folders(folders, "test")
    assert lv.classes == ["walk"]
    assert lv.records[0].meta == {"class_name": "walk", "split": "test"}
    # no such split folder: the root itself is the (single) split
    assert class_folders(folders, "train").classes[0] == "run"


def test_class_folders_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetFormatError) as e:
        class_folders(tmp_path / "nope")
    assert str(tmp_path / "nope") in one_line(e)
    touch(tmp_path / "flat" / "x.mp4")
    with pytest.raises(DatasetFormatError) as e:
        class_folders(tmp_path / "flat")
    assert "no class folders" in one_line(e) and str(tmp_path / "flat") in str(e.value)
    touch(tmp_path / "novid" / "a" / "readme.txt")
    with pytest.raises(DatasetFormatError) as e:
        class_folders(tmp_path / "novid")
    assert "no videos" in one_line(e) and str(tmp_path / "novid") in str(e.value)


# --------------------------------------------------------------------------------------
# load_source
# --------------------------------------------------------------------------------------


def test_load_source_named_datasets(ucf: Path, hmdb: Path, dv: Path) -> None:
    assert load_source(str(ucf), "ucf101", "test").name == "ucf101/test/fold1"
    assert load_source(str(ucf), "UCF-101", "train", 2).name == "ucf101/train/fold2"
    assert load_source(str(hmdb), "hmdb51", "test").name == "hmdb51/test/fold1"
    assert load_source(str(dv), "diving48", "test").name == "diving48/test"
    with pytest.raises(BebiasError, match="fold"):
        load_source(str(dv), "diving48", fold=2)


def test_load_source_unknown_dataset(tmp_path: Path) -> None:
    with pytest.raises(BebiasError) as e:
        load_source(str(tmp_path), "kinetics")
    msg = one_line(e)
    assert "kinetics" in msg and "ucf101, hmdb51, diving48" in msg


def test_load_source_csv_and_folders(vids: Path, folders: Path) -> None:
    m = write(vids / "list.csv", "path,label\nvideos/a.mp4,x\nvideos/b.mp4,y\n")
    # a manifest without a split column is one split: the default split="train" is fine
    assert len(load_source(str(m))) == 2
    write(vids / "manifest.csv", "path,label,split\nvideos/a.mp4,x,train\nvideos/b.mp4,y,test\n")
    lv = load_source(str(vids), split="test")
    assert [os.path.basename(r.path) for r in lv.records] == ["b.mp4"]
    with pytest.raises(DatasetFormatError, match="available splits: test, train"):
        load_source(str(vids), split="val")
    assert load_source(str(folders)).classes == ["run", "walk", "zzz_empty_class"]
    with pytest.raises(BebiasError, match="fold"):
        load_source(str(folders), fold=2)
    with pytest.raises(BebiasError, match="annotations"):
        load_source(str(folders), annotations=str(folders))


def test_load_source_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(DatasetFormatError) as e:
        load_source(str(tmp_path / "nope"))
    assert str(tmp_path / "nope") in one_line(e)
    f = touch(tmp_path / "video.mp4")
    with pytest.raises(BebiasError) as e:
        load_source(str(f))
    assert str(f) in one_line(e)
