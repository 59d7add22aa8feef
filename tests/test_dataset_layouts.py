"""UCF101, HMDB51 and Diving48 in the layouts people have them: the official archives as
extracted and mmaction2's ``videos/`` + ``rawframes/`` + ``annotations/``; ``--data`` at the
parent or at the video folder; ``--annotations`` overriding; one-line errors naming flags.

Fixture trees hold empty files where only parsing is tested; the end-to-end tests at the
bottom write real (tiny) videos and frame folders and decode them through ``open_data``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from bebias.data.open import open_data
from bebias.data.sources import load_source
from bebias.data.sources.layout import rank_roots, sample
from bebias.errors import BebiasError, DatasetFormatError


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def rawframes(path: Path, n: int = 2) -> Path:
    """A frame folder as mmaction2's denseflow writes it: RGB and flow images together."""
    path.mkdir(parents=True, exist_ok=True)
    for i in range(1, n + 1):
        for prefix in ("img_", "flow_x_", "flow_y_"):
            (path / f"{prefix}{i:05d}.jpg").write_bytes(b"")
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


# --------------------------------------------------------------------------------------
# UCF101
# --------------------------------------------------------------------------------------

UCF = {"ApplyEyeMakeup": ["v_ApplyEyeMakeup_g01_c01", "v_ApplyEyeMakeup_g08_c01"],
       "YoYo": ["v_YoYo_g01_c01", "v_YoYo_g25_c05"]}


def ucf_lists(folder: Path) -> Path:
    write(folder / "classInd.txt", "1 ApplyEyeMakeup\r\n2 YoYo\r\n")
    write(folder / "trainlist01.txt",
          "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\nYoYo/v_YoYo_g25_c05.avi 2\r\n")
    write(folder / "testlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\r\nYoYo/v_YoYo_g01_c01.avi\r\n")
    return folder


def ucf_videos(folder: Path, frames: bool = False) -> Path:
    for cls, vids in UCF.items():
        for v in vids:
            rawframes(folder / cls / v) if frames else touch(folder / cls / f"{v}.avi")
    return folder


@pytest.fixture
def ucf_official(tmp_path: Path) -> Path:
    """``unrar x UCF101.rar`` + the RecognitionTask zip, both extracted into UCF101/."""
    root = tmp_path / "UCF101"
    ucf_videos(root / "UCF-101")
    ucf_lists(root / "ucfTrainTestlist")
    return root


def test_ucf101_official_from_the_parent(ucf_official: Path) -> None:
    lv = load_source(ucf_official, "ucf101", "test")
    assert lv.missing == []
    assert [r.path for r in lv.records] == [
        str(ucf_official / "UCF-101" / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g01_c01.avi"),
        str(ucf_official / "UCF-101" / "YoYo" / "v_YoYo_g01_c01.avi"),
    ]
    assert [r.label for r in lv.records] == [0, 1]


def test_ucf101_official_from_the_video_folder(ucf_official: Path) -> None:
    """--data at UCF-101/: the lists are found beside it (one level up)."""
    lv = load_source(ucf_official / "UCF-101", "ucf101", "train")
    assert [r.label for r in lv.records] == [0, 1] and lv.missing == []
    assert lv.records[1].path == str(ucf_official / "UCF-101" / "YoYo" / "v_YoYo_g25_c05.avi")


def test_ucf101_from_a_folder_of_datasets(ucf_official: Path) -> None:
    """--data at the folder holding UCF101/: two levels down is still searched."""
    assert load_source(ucf_official.parent, "ucf101", "test").missing == []


def test_ucf101_mmaction2_videos_preferred_then_rawframes(tmp_path: Path) -> None:
    root = tmp_path / "data" / "ucf101"
    ucf_lists(root / "annotations")
    ucf_videos(root / "videos")
    ucf_videos(root / "rawframes", frames=True)
    lv = load_source(root, "ucf101", "test")
    # both complete: video files win the tie
    assert all(r.path.startswith(str(root / "videos")) and r.path.endswith(".avi") for r in lv.records)
    # a video missing from videos/ is taken from rawframes/
    os.remove(root / "videos" / "YoYo" / "v_YoYo_g01_c01.avi")
    lv = load_source(root, "ucf101", "test")
    assert lv.records[1].path == str(root / "rawframes" / "YoYo" / "v_YoYo_g01_c01") and lv.missing == []
    # frames only: every video is a frame folder
    import shutil
    shutil.rmtree(root / "videos")
    lv = load_source(tmp_path / "data", "ucf101", "train")
    assert [r.path for r in lv.records] == [
        str(root / "rawframes" / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c01"),
        str(root / "rawframes" / "YoYo" / "v_YoYo_g25_c05"),
    ]


def test_ucf101_flat_frame_release(tmp_path: Path) -> None:
    """Frame releases such as jpegs_256/<video>/frame000001.jpg drop the class folder."""
    root = tmp_path / "ucf101"
    ucf_lists(root / "ucfTrainTestlist")
    for vids in UCF.values():
        for v in vids:
            (root / "jpegs_256" / v).mkdir(parents=True)
            touch(root / "jpegs_256" / v / "frame000001.jpg")
    lv = load_source(root, "ucf101", "test")
    assert lv.missing == [] and lv.records[1].path == str(root / "jpegs_256" / "v_YoYo_g01_c01")


def test_ucf101_mp4_conversion_is_found(tmp_path: Path) -> None:
    """Videos re-encoded to another container keep their names: still found."""
    root = tmp_path / "ucf"
    ucf_lists(root / "ucfTrainTestlist")
    for cls, vids in UCF.items():
        for v in vids:
            touch(root / "UCF-101" / cls / f"{v}.mp4")
    lv = load_source(root, "ucf101", "test")
    assert lv.missing == [] and lv.records[0].path.endswith("v_ApplyEyeMakeup_g01_c01.mp4")


def test_ucf101_annotations_flag_overrides(ucf_official: Path, tmp_path: Path) -> None:
    other = ucf_lists(tmp_path / "elsewhere" / "my_lists")
    write(other / "testlist01.txt", "YoYo/v_YoYo_g01_c01.avi\n")  # differs from the found one
    lv = load_source(ucf_official, "ucf101", "test", annotations=other)
    assert [os.path.basename(r.path) for r in lv.records] == ["v_YoYo_g01_c01.avi"]
    lv = load_source(ucf_official, "ucf101", "test", annotations=other / "classInd.txt")
    assert len(lv) == 1


def test_ucf101_no_split_files_names_the_flag(tmp_path: Path) -> None:
    root = ucf_videos(tmp_path / "isolated" / "UCF-101")
    with pytest.raises(DatasetFormatError) as e:
        load_source(root, "ucf101", "test")
    msg = one_line(e)
    assert "classInd.txt" in msg and "--annotations DIR" in msg and str(root) in msg
    assert "annotations=" not in msg  # a flag, not a Python keyword


def test_ucf101_missing_list_file_names_it(ucf_official: Path) -> None:
    os.remove(ucf_official / "ucfTrainTestlist" / "testlist01.txt")
    with pytest.raises(DatasetFormatError) as e:
        load_source(ucf_official, "ucf101", "test")
    assert "testlist01.txt" in one_line(e) and "does not exist" in str(e.value)


def test_ucf101_two_candidate_list_folders_is_an_error(ucf_official: Path) -> None:
    ucf_lists(ucf_official / "annotations")  # a second copy on the same level
    with pytest.raises(DatasetFormatError) as e:
        load_source(ucf_official, "ucf101", "test")
    msg = one_line(e)
    assert "2 folders" in msg and "--annotations DIR" in msg
    assert len(load_source(ucf_official, "ucf101", "test", annotations=ucf_official / "annotations")) == 2


def test_ucf101_no_video_found_says_where_and_which_flag(ucf_official: Path, tmp_path: Path) -> None:
    empty = tmp_path / "not_here"
    (empty / "sub").mkdir(parents=True)
    with pytest.raises(BebiasError) as e:
        load_source(empty, "ucf101", "test", annotations=ucf_official / "ucfTrainTestlist")
    msg = one_line(e)
    assert "none of the 2 videos" in msg and str(empty) in msg and "--data" in msg
    assert "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi" in msg


def test_ucf101_some_missing_are_counted(ucf_official: Path) -> None:
    gone = ucf_official / "UCF-101" / "YoYo" / "v_YoYo_g01_c01.avi"
    os.remove(gone)
    lv = load_source(ucf_official, "ucf101", "test")
    assert len(lv) == 2 and lv.missing == [str(gone)]


def test_ucf101_a_few_videos_outside_the_probed_sample_are_found(tmp_path: Path) -> None:
    """Ranking probes a sample of the list; a folder holding only unprobed videos still counts."""
    root = tmp_path / "UCF101"
    names = [f"v_YoYo_g{i:03d}_c01" for i in range(200)]
    write(root / "ucfTrainTestlist" / "classInd.txt", "1 YoYo\n")
    write(root / "ucfTrainTestlist" / "testlist01.txt", "".join(f"YoYo/{n}.avi\n" for n in names))
    assert "YoYo/v_YoYo_g001_c01.avi" not in sample([f"YoYo/{n}.avi" for n in names])
    touch(root / "UCF-101" / "YoYo" / "v_YoYo_g001_c01.avi")
    lv = load_source(root, "ucf101", "test")
    assert len(lv) == 200 and len(lv.missing) == 199
    assert lv.records[1].path == str(root / "UCF-101" / "YoYo" / "v_YoYo_g001_c01.avi")


def test_ucf101_split_and_fold_errors_name_flags(ucf_official: Path) -> None:
    with pytest.raises(DatasetFormatError) as e:
        load_source(ucf_official, "ucf101", "val")
    assert "--split" in one_line(e) and "train, test" in str(e.value)
    with pytest.raises(DatasetFormatError) as e:
        load_source(ucf_official, "ucf101", "test", fold=4)
    assert "--fold" in one_line(e)


# --------------------------------------------------------------------------------------
# HMDB51
# --------------------------------------------------------------------------------------

HMDB = {"brush_hair": ["April_09_brush_hair_u_nm_np1_ba_goo_0", "Brushing_hair_brush_hair_h_cm_np2_le_goo_1"],
        "wave": ["20060723sfjffbartsinger_wave_f_cm_np1_ba_med_0", "winKen_wave_u_cm_np1_ri_bad_1"]}


def hmdb_splits(folder: Path) -> Path:
    for cls, (a, b) in HMDB.items():
        # the official lines end with a space
        write(folder / f"{cls}_test_split1.txt", f"{a}.avi 1 \n{b}.avi 2 \n")
    return folder


def hmdb_videos(folder: Path, frames: bool = False) -> Path:
    for cls, vids in HMDB.items():
        for v in vids:
            rawframes(folder / cls / v) if frames else touch(folder / cls / f"{v}.avi")
    return folder


@pytest.fixture
def hmdb_official(tmp_path: Path) -> Path:
    """hmdb51_org.rar extracted into hmdb51_org/, each <class>.rar in it extracted (and
    left there), next to the extracted test_train_splits.rar."""
    root = tmp_path / "HMDB51"
    hmdb_videos(root / "hmdb51_org")
    for cls in HMDB:
        touch(root / "hmdb51_org" / f"{cls}.rar")
    hmdb_splits(root / "testTrainMulti_7030_splits")
    return root


def test_hmdb51_official_from_the_parent_and_the_video_folder(hmdb_official: Path) -> None:
    for data in (hmdb_official, hmdb_official / "hmdb51_org"):
        lv = load_source(data, "hmdb51", "test")
        assert lv.classes == ["brush_hair", "wave"] and lv.missing == []
        assert lv.records[1].path == str(
            hmdb_official / "hmdb51_org" / "wave" / "winKen_wave_u_cm_np1_ri_bad_1.avi")


def test_hmdb51_archives_beside_do_not_hide_the_videos(tmp_path: Path) -> None:
    """<class>.rar files in --data are not videos: the class folders below are found."""
    root = tmp_path / "HMDB51"
    for cls in HMDB:
        touch(root / f"{cls}.rar")
    hmdb_videos(root / "extracted")
    hmdb_splits(root / "testTrainMulti_7030_splits")
    assert load_source(root, "hmdb51", "test").missing == []


def test_hmdb51_unextracted_class_archives_get_a_hint(tmp_path: Path) -> None:
    root = tmp_path / "HMDB51"
    for cls in HMDB:
        touch(root / "hmdb51_org" / f"{cls}.rar")
    hmdb_splits(root / "testTrainMulti_7030_splits")
    with pytest.raises(BebiasError) as e:
        load_source(root, "hmdb51", "train")
    msg = one_line(e)
    assert "none of the 2 videos" in msg and "brush_hair.rar" in msg and "unrar" in msg


def test_hmdb51_mmaction2_videos_and_rawframes(tmp_path: Path) -> None:
    root = tmp_path / "hmdb51"
    hmdb_splits(root / "annotations")
    write(root / "annotations" / "classInd.txt", "1 brush_hair\n2 wave\n")  # mmaction2 adds it
    hmdb_videos(root / "rawframes", frames=True)
    lv = load_source(root, "hmdb51", "train")
    assert [r.path for r in lv.records] == [
        str(root / "rawframes" / "brush_hair" / "April_09_brush_hair_u_nm_np1_ba_goo_0"),
        str(root / "rawframes" / "wave" / "20060723sfjffbartsinger_wave_f_cm_np1_ba_med_0"),
    ]
    hmdb_videos(root / "videos")
    assert all(r.path.endswith(".avi") for r in load_source(root, "hmdb51", "train").records)


def test_hmdb51_no_split_files_names_the_flag(tmp_path: Path) -> None:
    root = hmdb_videos(tmp_path / "isolated" / "videos")
    with pytest.raises(DatasetFormatError) as e:
        load_source(root, "hmdb51", "train", fold=2)
    msg = one_line(e)
    assert "_test_split2.txt" in msg and "--annotations DIR" in msg


# --------------------------------------------------------------------------------------
# Diving48
# --------------------------------------------------------------------------------------

DIVING_TRAIN = [{"vid_name": "-mmq0PT-u8k_00155", "label": 1, "start_frame": 0, "end_frame": 48},
                {"vid_name": "2x00lRzlTVQ_00000", "label": 0, "start_frame": 0, "end_frame": 60}]
DIVING_TEST = [{"vid_name": "_8Vy3dlHg2w_00000", "label": 1, "start_frame": 0, "end_frame": 52}]
VOCAB = [["Back", "15som", "05Twis", "FREE"], ["Forward", "25som", "NoTwis", "PIKE"]]


def diving_annotations(folder: Path, v1: bool = False) -> Path:
    tag = "" if v1 else "V2_"
    write(folder / f"Diving48_{tag}train.json", json.dumps(DIVING_TRAIN))
    write(folder / f"Diving48_{tag}test.json", json.dumps(DIVING_TEST))
    write(folder / "Diving48_vocab.json", json.dumps(VOCAB))
    return folder


def diving_videos(folder: Path, frames: bool = False) -> Path:
    for e in DIVING_TRAIN + DIVING_TEST:
        rawframes(folder / e["vid_name"]) if frames else touch(folder / f"{e['vid_name']}.mp4")
    return folder


def test_diving48_official(tmp_path: Path) -> None:
    root = tmp_path / "Diving48"
    diving_videos(root / "rgb")  # Diving48_rgb.tar.gz extracted
    diving_annotations(root)
    for data in (root, root / "rgb"):
        lv = load_source(data, "diving48", "train")
        assert lv.missing == [] and lv.records[0].path == str(root / "rgb" / "-mmq0PT-u8k_00155.mp4")
        assert lv.classes == ["Back/15som/05Twis/FREE", "Forward/25som/NoTwis/PIKE"]
        assert [(r.start, r.end) for r in lv.records] == [(0, 48), (0, 60)]


def test_diving48_v1_names(tmp_path: Path) -> None:
    root = tmp_path / "Diving48"
    diving_videos(root / "rgb")
    diving_annotations(root / "annotations", v1=True)
    assert load_source(root, "diving48", "test").records[0].meta["vid_name"] == "_8Vy3dlHg2w_00000"


def test_diving48_mmaction2(tmp_path: Path) -> None:
    root = tmp_path / "diving48"
    diving_annotations(root / "annotations")
    diving_videos(root / "rawframes", frames=True)
    lv = load_source(root, "diving48", "test")
    assert lv.records[0].path == str(root / "rawframes" / "_8Vy3dlHg2w_00000")
    diving_videos(root / "videos")
    assert load_source(root, "diving48", "test").records[0].path == str(root / "videos" / "_8Vy3dlHg2w_00000.mp4")


def test_diving48_no_split_file_names_the_flag(tmp_path: Path) -> None:
    root = diving_videos(tmp_path / "isolated" / "rgb")
    with pytest.raises(DatasetFormatError) as e:
        load_source(root, "diving48", "test")
    msg = one_line(e)
    assert "Diving48_V2_test.json" in msg and "--annotations DIR" in msg


# --------------------------------------------------------------------------------------
# the ranking core and the flags of load_source / open_data
# --------------------------------------------------------------------------------------


def test_rank_roots() -> None:
    assert rank_roots([("a", 0, 0), ("frames", 5, 0), ("videos", 5, 5), ("half", 3, 3)]) == [
        "videos", "frames", "half"]
    assert rank_roots([("x", 2, 2), ("y", 2, 2)]) == ["x", "y"]  # ties keep search order
    assert rank_roots([("a", 0, 0)]) == []


def test_sample_spreads_over_the_list() -> None:
    items = [str(i) for i in range(1000)]
    s = sample(items, 10)
    assert len(s) == 10 and s[0] == "0" and s[-1] == "900"
    assert sample(items[:5], 10) == items[:5]


def test_flags_that_do_not_apply(ucf_official: Path) -> None:
    with pytest.raises(BebiasError) as e:
        load_source(ucf_official / "ucfTrainTestlist" / "classInd.txt", "ucf101")
    assert "--annotations DIR" in one_line(e)
    with pytest.raises(BebiasError) as e:
        open_data("synthetic", annotations=str(ucf_official))
    assert "--annotations" in one_line(e) and "--dataset" in str(e.value)
    with pytest.raises(BebiasError) as e:
        load_source(ucf_official, "diving48", fold=2)
    assert "--fold" in one_line(e)


# --------------------------------------------------------------------------------------
# end to end: real videos and frame folders, decoded through open_data
# --------------------------------------------------------------------------------------


def test_open_data_decodes_official_videos_and_mmaction2_rawframes(tmp_path: Path) -> None:
    import cv2

    from bebias.data.video_io import write_video

    rng = np.random.default_rng(0)
    clip = rng.integers(0, 255, (6, 16, 16, 3), dtype=np.uint8)
    root = tmp_path / "UCF101"
    ucf_lists(root / "ucfTrainTestlist")
    for cls, vids in UCF.items():
        for v in vids:
            write_video(root / "UCF-101" / cls / f"{v}.avi", clip)
    d = open_data(str(root), split="test", dataset="ucf101")
    assert d.hflip_safe and d.videos.missing == []
    rec = d.videos.records[0]
    assert d.decoder.num_frames(rec) == 6
    assert d.decoder.read(rec, range(3)).shape[0] == 3

    # mmaction2 rawframes: RGB frames with flow images beside them; only img_ is read
    clip = np.zeros((5, 16, 16, 3), np.uint8)
    clip[..., 0] = np.arange(5)[:, None, None] * 50  # flat colours survive JPEG
    clip[..., 2] = 200
    mm = tmp_path / "data" / "ucf101"
    ucf_lists(mm / "annotations")
    for cls, vids in UCF.items():
        for v in vids:
            folder = mm / "rawframes" / cls / v
            folder.mkdir(parents=True)
            for i in range(1, 5):
                cv2.imwrite(str(folder / f"img_{i:05d}.jpg"), clip[i])
                for f in ("flow_x_", "flow_y_"):
                    cv2.imwrite(str(folder / f"{f}{i:05d}.jpg"), clip[i, :, :, 0])
    d = open_data(str(mm), split="train", dataset="ucf101")
    rec = d.videos.records[0]
    assert os.path.isdir(rec.path) and d.decoder.num_frames(rec) == 4
    got = d.decoder.read(rec, [0, 3]).astype(int)
    assert got.shape == (2, 16, 16, 3)
    # frame 0 is img_00001.jpg (clip[1] written by cv2 as BGR, so read back channel-reversed),
    # frame 3 is img_00004.jpg; the flow images (grey) are not what is read
    assert np.abs(got[0] - clip[1, :, :, ::-1]).max() < 8 and np.abs(got[1] - clip[4, :, :, ::-1]).max() < 8
