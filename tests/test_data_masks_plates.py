"""What the data records beside the frames -- ground-truth masks and background plates --
comes from the decoder (``has_masks``, ``masks(rec, idx)``, ``plate(rec)``; None where the
data has none), and the probe's data side (:class:`bebias.probing.source.ProbeSource`) uses
whatever the decoder gives without asking what kind of data it is."""

import numpy as np
import pytest

from bebias.data.decoders import FileDecoder
from bebias.data.open import Data, open_data
from bebias.data.records import LabeledVideos, VideoRecord
from bebias.data.synth import SynthConfig
from bebias.data.synth_disk import DiskDecoder, write_benchmark
from bebias.data.transforms import ClipSpec
from bebias.probing.source import ProbeSource
from bebias.probing.suite import ProbeSuite

SPEC = "synthetic:classes=2,videos_per_class=1,test_videos_per_class=2,frames=6,size=32"


@pytest.fixture(scope="module")
def on_disk(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("bench") / "b")
    write_benchmark(SynthConfig(classes=2, videos_per_class=1, test_videos_per_class=2, frames=6, size=32), out,
                    video_format="png")
    return out


def test_the_benchmark_in_memory_and_on_disk_record_the_same_masks_and_plates(on_disk):
    mem, disk = open_data(SPEC, split="conflict"), open_data(on_disk, split="conflict")
    assert (mem.data_kind, disk.data_kind) == ("synthetic", "benchmark") and isinstance(disk.decoder, DiskDecoder)
    assert mem.decoder.has_masks and disk.decoder.has_masks
    assert [r.label for r in mem.videos.records] == [r.label for r in disk.videos.records]
    for a, b in zip(mem.videos.records, disk.videos.records):
        v = mem.synth.video(*a.path.removeprefix("synthetic:").rsplit("/", 1)[:1], int(a.path.rsplit("/", 1)[1]))
        ma, mb = mem.decoder.masks(a, [1, 3]), disk.decoder.masks(b, [1, 3])
        assert ma.dtype == mb.dtype == bool and ma.shape == (2, 32, 32)
        np.testing.assert_array_equal(ma, v.masks[[1, 3]])
        np.testing.assert_array_equal(ma, mb)
        np.testing.assert_array_equal(mem.decoder.plate(a), v.background)
        np.testing.assert_array_equal(disk.decoder.plate(b), v.background)  # PNG: lossless
    scene, where = disk.scenes()
    assert where == "benchmark families" and scene.tolist() == [int(r.meta["family"]) for r in disk.videos.records]


def test_files_record_nothing_and_their_scenes_come_from_bg_label(tmp_path):
    d = Data(LabeledVideos([VideoRecord("a.mkv", 0, meta={"bg_label": "1"}), VideoRecord("b.mkv", 1)], ["x", "y"]),
             FileDecoder(), "files")
    rec = d.videos.records[0]
    assert d.data_kind == "dataset" and not d.decoder.has_masks
    assert d.decoder.masks(rec, [0]) is None and d.decoder.plate(rec) is None
    scene, where = d.scenes()
    assert scene.tolist() == [1, -1] and where == "manifest bg_label"


class _Recorded(FileDecoder):
    """Another source that records masks and plates: frames rendered here, a box as the mask."""

    has_masks = True

    def num_frames(self, rec):
        return 4

    def read(self, rec, indices, out=None, short=None):
        return np.full((len(indices), 24, 24, 3), 40 * (rec.label + 1), np.uint8)

    def masks(self, rec, indices):
        m = np.zeros((len(indices), 24, 24), bool)
        m[:, 6:18, 8:16] = True
        return m

    def plate(self, rec):
        return np.full((24, 24, 3), 7 + rec.label, np.uint8)


def test_the_probe_takes_masks_and_plates_from_any_decoder_that_records_them():
    recs = [VideoRecord(f"v{k}", k % 2, meta={"family": str(1 - k % 2)}) for k in range(4)]
    src = ProbeSource(Data(LabeledVideos(recs, ["x", "y"]), _Recorded(), "mine"), ClipSpec(frames=4, size=24),
                      ProbeSuite())
    v = src.video(1)
    assert v.source == "ground-truth" and v.usable and src.has_gt
    np.testing.assert_array_equal(v.mask, _Recorded().masks(recs[1], range(4)))
    np.testing.assert_array_equal(src.plate(1, 12, 12), np.full((12, 12, 3), 8, np.uint8))  # resized
    assert src.scene_labels == "benchmark families" and src.own_bg(1) == 0
    # the same videos where the decoder records nothing: motion masks, the clip's own median as plate
    plain = ProbeSource(Data(LabeledVideos(recs, ["x", "y"]), _Plain(), "mine"), ClipSpec(frames=4, size=24),
                        ProbeSuite())
    assert not plain.has_gt and plain.video(1).source.startswith("motion:") and plain.data_kind == "dataset"
    np.testing.assert_array_equal(plain.plate(1, 24, 24), np.full((24, 24, 3), 80, np.uint8))


class _Plain(_Recorded):
    has_masks = False

    def masks(self, rec, indices):
        return None

    def plate(self, rec):
        return None
