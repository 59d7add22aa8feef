"""bebias testset: a probe variant materialised to disk (bebias.probing.materialize).

Tiny on purpose (a 3-class benchmark, 9 conflict videos of 4 x 32 x 32): what is tested is
that the files hold exactly the probe's frames, read back through bebias's own loaders, and
that runs are deterministic, resumable and fail with one line on user errors.
"""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from bebias.data import video_io
from bebias.data.open import open_data
from bebias.data.synth_disk import load_masks
from bebias.errors import BebiasError
from bebias.probing.masks import DEFAULT_METHOD
from bebias.probing.materialize import TestsetConfig, materialize
from bebias.probing.suite import ProbeSuite, select_videos
from bebias.probing.source import ProbeSource, new_video_log, video_variants
from tests.inproc import bebias

DATA = "synthetic:classes=3,videos_per_class=4,test_videos_per_class=3,frames=12,size=32"
N = 9  # 3 classes x 3 conflict videos
FRAMES = 4
SEED = 3


class _Clip:
    frames, stride = FRAMES, 1


def reference(data: str, kind: str, split: str, seed: int = SEED, suite: ProbeSuite | None = None) -> dict:
    """The probe machinery run directly: video index -> (frames, meta) of ``kind``."""
    suite = suite or ProbeSuite(variants=(kind,))
    src = ProbeSource(open_data(data, split=split), _Clip(), suite, need_mask=True)
    selected = select_videos(src.labels, suite.max_videos)
    vids, state = new_video_log()
    out = {}
    for i in selected:
        for frames, meta in video_variants(i, src, selected, [kind], suite, seed, vids, state, pass_masks=True):
            out[i] = (frames, meta)
    return out


def tree(root) -> dict[str, bytes]:
    """Every file under root (relative path -> bytes)."""
    files = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            with open(p, "rb") as f:
                files[os.path.relpath(p, root)] = f.read()
    return files


def make(out, kind="swap-background", **kw) -> object:
    return materialize(TestsetConfig(variant=kind, out=str(out), data=DATA, frames=FRAMES, seed=SEED, **kw))


@pytest.fixture(scope="module")
def swap_set(tmp_path_factory):
    return make(tmp_path_factory.mktemp("ts") / "swap")


def test_frames_masks_manifest_equal_the_probe_machinery(swap_set):
    out = swap_set.out
    ref = reference(DATA, "swap-background", "conflict")
    assert swap_set.videos == N == len(ref) and swap_set.generated == N and swap_set.resumed == 0
    # the manifest goes through bebias's own CSV loader: --data DIR (any split: it has no split column)
    d = open_data(out, split="test")
    src = open_data(DATA, split="conflict").videos
    assert d.videos.classes == src.classes and len(d.videos) == N
    for rec in d.videos.records:
        i = int(rec.meta["source_index"])
        frames, meta = ref[i]
        assert rec.label == src.records[i].label and rec.meta["source_path"] == src.records[i].path
        got = video_io.read_video(rec.path)
        assert got.dtype == np.uint8 and got.shape == (FRAMES, 32, 32, 3)
        assert np.array_equal(got, frames)  # PNG: bit-identical
        assert int(rec.meta["bg_label"]) == meta["bg"] and int(rec.meta["donor"]) == meta["donor"] >= 0
        assert rec.meta["mask_source"] == "ground-truth"
        assert np.array_equal(load_masks(os.path.join(out, rec.meta["mask_path"])), meta["mask"])
    pv = json.loads(open(os.path.join(out, "provenance.json")).read())
    assert pv["seed"] == SEED and pv["kind"] == "swap-background" and pv["split"] == "conflict"
    assert pv["clip"]["frames"] == FRAMES and pv["bit_identical_to_probe"] is True
    assert pv["videos"]["written"] == N and pv["videos"]["skipped"] == {"unreadable": 0, "mask_unusable": 0,
                                                                         "no_donor": 0}
    assert pv["bebias_version"]


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit's deprecation notices
def test_frames_equal_what_run_probe_feeds_the_model(swap_set, tmp_path, monkeypatch):
    """End to end: the uint8 frames run_probe hands its eval transform (captured) = the files."""
    import torch

    from bebias.probing import onepass, run

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x.mean(dim=(2, 3, 4)))

    model = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.script(Tiny()), str(model))
    seen: dict[int, np.ndarray] = {}
    inner = onepass.video_variants  # the one pass that feeds every model (bebias.probing.onepass)

    def spy(i, *args, **kw):
        for frames, meta in inner(i, *args, **kw):
            if meta["variant"] == "swap-background":
                seen[i] = frames.copy()
            yield frames, meta

    monkeypatch.setattr(onepass, "video_variants", spy)
    run.run_probe(run.ProbeConfig(checkpoint=str(model), data=DATA, variants=("swap-background",), seed=SEED,
                                  suite=ProbeSuite(n_boot=10), out=str(tmp_path / "probe"), device="cpu",
                                  input={"frames": FRAMES, "size": 32}, trust_code=True))
    assert len(seen) == N
    for rec in open_data(swap_set.out, split="test").videos.records:
        assert np.array_equal(video_io.read_video(rec.path), seen[int(rec.meta["source_index"])])


@pytest.mark.parametrize("fmt", ["png", "mp4"])
def test_same_seed_same_bytes(swap_set, tmp_path, fmt):
    if fmt == "png":
        a = swap_set.out
    else:
        a = make(tmp_path / "a", "static-frame", video_format=fmt).out
    b = make(tmp_path / "b", "swap-background" if fmt == "png" else "static-frame", video_format=fmt).out
    ta, tb = tree(a), tree(b)
    assert sorted(ta) == sorted(tb) and ta == tb
    assert sum(p.startswith("videos") for p in ta) == (N * FRAMES if fmt == "png" else N)


def test_resume_regenerates_only_what_is_missing(swap_set, tmp_path):
    out = tmp_path / "resume"
    shutil.copytree(swap_set.out, out)
    before = tree(out)
    shutil.rmtree(out / "videos" / "000004")
    res = make(out)
    assert (res.generated, res.resumed, res.videos) == (1, N - 1, N)
    assert tree(out) == before
    # an interrupted run (Ctrl-C after 3 videos) keeps its finished videos and resumes
    out2 = tmp_path / "interrupted"

    def stop(p):
        if p.done == 3:
            raise KeyboardInterrupt

    with pytest.raises(BebiasError, match="interrupted after 3 of 9"):
        materialize(TestsetConfig(variant="swap-background", out=str(out2), data=DATA, frames=FRAMES, seed=SEED),
                    progress=stop)
    assert not (out2 / "manifest.csv").exists()
    res = make(out2)
    assert (res.generated, res.resumed) == (N - 3, 3)
    assert tree(out2) == before
    # the same folder with other settings is refused, not mixed
    with pytest.raises(BebiasError, match="other settings .*kind"):
        make(out2, "reverse")


def test_dataset_skips_unreadable_and_unusable_masks(tmp_path):
    """A CSV dataset (motion masks): a corrupt file and a static video are skipped, counted, listed."""
    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    bg = rng.integers(0, 120, (32, 32, 3), dtype=np.uint8)
    rows = ["path,label"]
    for k, (label, step) in enumerate([("a", 3), ("b", -3), ("a", 0)]):  # step 0: no motion -> empty mask
        frames = np.repeat(bg[None], 6, axis=0)
        for t in range(6):
            x = 12 + step * (t - 3)
            frames[t, 10:20, x:x + 10] = 255
        video_io.write_frame_folder(str(root / f"v{k}"), frames)
        rows.append(f"v{k},{label}")
    (root / "bad.mp4").write_bytes(b"not a video")
    rows.append("bad.mp4,b")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "fg"
    res = materialize(TestsetConfig(variant="foreground-only", out=str(out), data=str(root), frames=FRAMES,
                                    video_format="mkv"))
    assert res.videos == 2 and res.skipped == {"unreadable": 1, "mask_unusable": 1, "no_donor": 0}
    pv = res.provenance
    assert pv["data_kind"] == "dataset" and pv["split"] == "test" and pv["videos"]["unreadable"][0]["index"] == 3
    assert pv["videos"]["unreadable"][0]["path"].endswith("bad.mp4")
    ref = reference(str(root), "foreground-only", "test", seed=0)
    d = open_data(str(out / "manifest.csv"), split="test")
    assert [r.meta["class_name"] for r in d.videos.records] == ["a", "b"]
    for rec in d.videos.records:
        frames, meta = ref[int(rec.meta["source_index"])]
        assert np.array_equal(video_io.read_video(rec.path), frames)  # FFV1: lossless
        assert rec.meta["mask_source"] == f"motion:{DEFAULT_METHOD}" and rec.meta["bg_label"] == ""


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return bebias("testset", *args)


@pytest.mark.parametrize("args, words", [
    (["--kind", "no-such-variant"], "unknown --kind"),
    (["--kind", "shuffle", "--data", "no/such/dir"], "does not exist"),
])
def test_cli_user_errors_are_one_line(tmp_path, args, words):
    res = run_cli(*args, "--out", str(tmp_path / "o"))
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in res.stderr
    assert not (tmp_path / "o").exists()
