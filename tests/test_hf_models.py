"""Hugging Face video transformers (bebias.models.hf): tiny random models of each family
written with ``save_pretrained`` into temporary folders and read back offline.

What is tested: the adapter gives transformers' own logits; the input spec is the processor's
own preprocessing; nothing is downloaded (a socket guard fails any attempt); the token ->
grid reshape follows each model's token layout; Grad-CAM equals pytorch-grad-cam's with the
same reshape; ``bebias probe / cam / eval`` run on a directory with no input flags; the
refusals are one line, exit 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")  # bebias[hf]; `make test` installs it

from bebias.errors import BebiasError  # noqa: E402
from bebias.models.cam import GradCam, find_layer  # noqa: E402
from bebias.models.open import open_model  # noqa: E402
from tests.hf_tiny import FAMILIES, FRAMES, SIZE, tiny_hf_dir, tiny_processor  # noqa: E402

DATA = "synthetic:classes=3,videos_per_class=2,test_videos_per_class=2,frames=12,size=32"
ARCH = {"videomae": "VideoMAEForVideoClassification", "timesformer": "TimesformerForVideoClassification",
        "vivit": "VivitForVideoClassification", "vjepa2": "VJEPA2ForVideoClassification"}


@pytest.fixture(scope="module")
def dirs(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("hf")
    return {f: tiny_hf_dir(root / f, f, seed=i) for i, f in enumerate(FAMILIES)}


def _clip(seed: int = 0, b: int = 2) -> torch.Tensor:
    return torch.randn(b, 3, FRAMES, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def bebias(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bebias", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


# --------------------------------------------------------------------------------------
# the adapter
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_the_adapter_gives_transformers_own_logits(dirs, family):
    from transformers import AutoModelForVideoClassification

    m = open_model(dirs[family])
    assert m.kind == "classifier" and m.meta.arch == ARCH[family] and m.meta.num_classes == 3
    assert m.meta.classes is None  # LABEL_0, LABEL_1, ...: transformers' placeholders are no names
    assert m.meta.foreign["layout"] == "huggingface" and m.meta.foreign["weights"] == "model.safetensors"
    assert m.meta.input["frames"] == FRAMES and m.meta.input["size"] == SIZE
    x = _clip()
    ref = AutoModelForVideoClassification.from_pretrained(dirs[family], local_files_only=True).eval()
    key = "pixel_values_videos" if family == "vjepa2" else "pixel_values"
    with torch.no_grad():
        want = ref(**{key: x.transpose(1, 2).contiguous()}).logits
        got = m.classifier()(x)
        feats = m.backbone(x)
    assert got.shape == (2, 3) and feats.shape == (2, m.backbone.dim)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_input_spec_is_the_processors_own_preprocessing(dirs, family):
    """bebias's eval transform with the announced spec gives the pixels the family's processor
    gives (ViViT's [-1, 1] rescaling included): frames whose short side is already the
    processor's resize, so that only the crop and the normalisation are compared."""
    from bebias.data.transforms import ClipSpec, eval_transform

    m = open_model(dirs[family])
    spec = ClipSpec.from_dict(m.meta.input)
    frames = np.random.default_rng(0).integers(0, 256, (FRAMES, spec.resize, spec.resize + 12, 3), dtype=np.uint8)
    proc = tiny_processor(family)
    out = proc([list(frames)], return_tensors="pt")  # positional: videos (or images, for an image processor)
    want = (out.get("pixel_values") if "pixel_values" in out else out["pixel_values_videos"])[0]  # (T, 3, H, W)
    got = eval_transform(spec)(frames)  # (3, T, H, W)
    torch.testing.assert_close(got.transpose(0, 1), want.float(), rtol=0, atol=2e-5)


def test_the_spec_is_announced_in_one_line(dirs):
    m = open_model(dirs["vivit"])
    assert m.meta.input_preset == (
        f"Hugging Face VivitForVideoClassification ({m.meta.foreign['processor']}; its rescaling p / 127.5 - 1 "
        "folded into mean/std): 4 frames at stride 1, short side 36 -> 32 px centre crop, mean (0.75, 0.75, 0.75), "
        "std (0.25, 0.25, 0.25)")


def test_the_models_fixed_clip_shape_is_enforced(dirs):
    m = open_model(dirs["videomae"])
    with pytest.raises(BebiasError, match=r"takes \(B, 3, 4, 32, 32\) clips \(num_frames 4, image_size 32 in "
                                          r"config.json\), got \(1, 3, 8, 32, 32\)"):
        m.classifier()(torch.zeros(1, 3, 8, SIZE, SIZE))


def test_class_names_come_from_id2label(tmp_path):
    d = tiny_hf_dir(tmp_path / "named", "videomae", labels=["up", "left", "right"])
    assert open_model(d).meta.classes == ("up", "left", "right")


# --------------------------------------------------------------------------------------
# nothing is downloaded
# --------------------------------------------------------------------------------------

_GUARD = textwrap.dedent("""
    import socket, sys
    def _refuse(*a, **k):
        sys.stderr.write("NETWORK ATTEMPT %r\\n" % (a[1:2] or a[:1],))
        raise OSError("network disabled by the test")
    socket.socket.connect = socket.socket.connect_ex = _refuse
    socket.create_connection = socket.getaddrinfo = _refuse
""")


def test_the_guard_itself_catches_a_download(tmp_path):
    """The guard below can fail: a plain urllib request under it is caught."""
    code = _GUARD + "import urllib.request\ntry:\n    urllib.request.urlopen('http://example.com', timeout=5)\n" \
                    "except OSError:\n    pass\n"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "NETWORK ATTEMPT" in r.stderr


def test_no_download_is_ever_attempted(dirs, tmp_path):
    """Every family opened and run, and `bebias eval DIR`, in a process whose sockets refuse
    to connect (installed before transformers is imported) and without HF_HUB_OFFLINE set by
    the caller: no attempt is made."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    code = _GUARD + textwrap.dedent(f"""
        import torch
        from bebias.models.open import open_model
        for d in {list(dirs.values())!r}:
            m = open_model(d)
            m.classifier()(torch.zeros(1, 3, {FRAMES}, {SIZE}, {SIZE}))
        from bebias.cli import main
        sys.argv = ["bebias", "eval", {dirs['vjepa2']!r}, "--data", {DATA!r}, "--out", {str(tmp_path / 'e.json')!r}]
        main()
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "NETWORK ATTEMPT" not in r.stderr
    assert json.loads((tmp_path / "e.json").read_text())["arch"] == ARCH["vjepa2"]


# --------------------------------------------------------------------------------------
# Grad-CAM: the token layouts and the reference
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_the_token_grid_follows_the_models_layout(dirs, family):
    """One bright tubelet at grid cell (t, h, w) of a black clip, position embeddings zeroed:
    after the embedding layer, the one token that differs from the rest lands at (t, h, w)."""
    m = open_model(dirs[family])
    bb = m.backbone
    emb_name = {"videomae": "hf.videomae.embeddings", "timesformer": "hf.timesformer.embeddings",
                "vivit": "hf.vivit.embeddings", "vjepa2": "hf.vjepa2.encoder.embeddings"}[family]
    for mod in bb.modules():  # parameters, buffers or plain tensors (VideoMAE's sinusoids)
        for attr in ("position_embeddings", "time_embeddings"):
            if isinstance(getattr(mod, attr, None), torch.Tensor):
                getattr(mod, attr).data.zero_()
    T, H, W = bb.grid
    ft, fh = FRAMES // T, SIZE // H
    seen = []
    h = find_layer(bb, emb_name).register_forward_hook(lambda _m, _i, out: seen.append(out))
    try:
        for cell in [(T - 1, 0, W - 1), (0, H - 1, 0)]:
            x = torch.zeros(1, 3, FRAMES, SIZE, SIZE)
            t, y, w = cell
            x[:, :, t * ft:(t + 1) * ft, y * fh:(y + 1) * fh, w * fh:(w + 1) * fh] = 3.0
            seen.clear()
            with torch.no_grad():
                bb(x)
            g = bb.cam_reshape(seen[0], 1)[0]  # (D, T', H', W')
            dev = (g - g.flatten(1).median(dim=1).values[:, None, None, None]).norm(dim=0)
            assert tuple(np.unravel_index(int(dev.argmax()), dev.shape)) == cell
            assert (dev > 1e-6).sum() == 1
    finally:
        h.remove()


def test_timesformers_per_frame_layout_is_its_spatial_major_one(dirs):
    """Inside a divided-attention block the spatial LayerNorm sees (B T', 1 + H'W', D): with the
    block's temporal update switched off, its input is the block's input re-laid out, and both
    map onto the same grid."""
    m = open_model(dirs["timesformer"])
    bb = m.backbone
    last = bb.hf.timesformer.encoder.layer[-1]
    last.temporal_dense.weight.data.zero_()
    last.temporal_dense.bias.data.zero_()
    ins: dict[str, torch.Tensor] = {}
    h1 = last.register_forward_pre_hook(lambda _m, a: ins.__setitem__("block", a[0]))
    h2 = last.layernorm_before.register_forward_pre_hook(lambda _m, a: ins.__setitem__("ln", a[0]))
    try:
        with torch.no_grad():
            bb(_clip(b=2))
    finally:
        h1.remove()
        h2.remove()
    assert ins["ln"].shape == (2 * FRAMES, 1 + 4, 32) and ins["block"].shape == (2, 1 + 4 * FRAMES, 32)
    torch.testing.assert_close(bb.cam_reshape(ins["ln"], 2), bb.cam_reshape(ins["block"], 2), rtol=0, atol=1e-6)


def _corr(a, b) -> float:
    return float(np.corrcoef(np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel())[0, 1])


@pytest.mark.parametrize("family", FAMILIES)
def test_grad_cam_matches_pytorch_grad_cam(dirs, family):
    """Our maps at the default layer equal pytorch-grad-cam's GradCAM with the same layer
    and ``reshape_transform`` (at the layer's resolution: T' x H' x W')."""
    from pytorch_grad_cam import GradCAM

    m = open_model(dirs[family])
    net, B = m.classifier(), 3
    x = _clip(seed=1, b=B)
    ours = GradCam(m.backbone, m.head)(x)
    layer = find_layer(m.backbone, m.backbone.cam_layer)
    ref = GradCAM(net, [layer], reshape_transform=lambda t: m.backbone.cam_reshape(t, B))
    ref(x, None)
    acts = ref.activations_and_grads.activations[0].numpy()
    grads = ref.activations_and_grads.gradients[0].numpy()
    theirs = np.maximum(ref.get_cam_image(x, layer, None, acts, grads), 0)  # (B, T', H', W')
    ref.activations_and_grads.release()
    assert ours.raw.shape == theirs.shape == (B, *m.backbone.grid)
    for b in range(B):
        assert theirs[b].max() > 0
        assert _corr(ours.raw[b], theirs[b]) >= 0.99
        np.testing.assert_allclose(ours.raw[b].numpy(), theirs[b], rtol=1e-3, atol=1e-5 * theirs[b].max())
    assert ours.cams.shape == (B, FRAMES, SIZE, SIZE)


def test_a_block_output_layer_and_a_wrong_layer(dirs):
    m = open_model(dirs["timesformer"])
    x = _clip()
    # a whole block returns a tuple (hidden_states,): its spatial-major tokens are explained
    out = GradCam(m.backbone, m.head, "hf.timesformer.encoder.layer.0")(x)
    assert out.raw.shape == (2, *m.backbone.grid) and float(out.raw.sum()) > 0
    with pytest.raises(BebiasError, match="not a token sequence"):
        GradCam(m.backbone, m.head, "hf.timesformer.encoder.layer.1.temporal_layernorm")(x)  # (B H'W', T', D)


# --------------------------------------------------------------------------------------
# refusals
# --------------------------------------------------------------------------------------

def _edit_json(path: str, **kw) -> None:
    d = json.loads(open(path).read())
    d.update(kw)
    with open(path, "w") as f:
        json.dump(d, f)


def test_refusals_are_one_line(tmp_path, monkeypatch):
    # a processor config that disagrees with config.json
    d = tiny_hf_dir(tmp_path / "crop", "videomae")
    _edit_json(os.path.join(d, "video_preprocessor_config.json"), crop_size={"height": 48, "width": 48},
               size={"shortest_edge": 56})
    with pytest.raises(BebiasError, match="crops frames to 48 px, but the model config's image_size is 32: the "
                                          "processor config and config.json disagree"):
        open_model(d)
    d = tiny_hf_dir(tmp_path / "frames", "vjepa2")
    _edit_json(os.path.join(d, "video_preprocessor_config.json"), num_frames=16)
    with pytest.raises(BebiasError, match="num_frames is 16, but the model takes 4 frames"):
        open_model(d)
    # an unsupported family, or another class of a supported one
    d = tiny_hf_dir(tmp_path / "other", "videomae")
    _edit_json(os.path.join(d, "config.json"), model_type="x3d", architectures=["X3DForVideoClassification"])
    with pytest.raises(BebiasError, match="is a Hugging Face X3DForVideoClassification model; bebias reads "
                                          "VideoMAEForVideoClassification, TimesformerForVideoClassification, "
                                          "VivitForVideoClassification, VJEPA2ForVideoClassification"):
        open_model(d)
    _edit_json(os.path.join(d, "config.json"), model_type="videomae", architectures=["VideoMAEForPreTraining"])
    with pytest.raises(BebiasError, match="is a Hugging Face VideoMAEForPreTraining model"):
        open_model(d)
    # no processor config; --arch given
    d = tiny_hf_dir(tmp_path / "noproc", "vivit", processor=False)
    with pytest.raises(BebiasError, match="has no processor config"):
        open_model(d)
    with pytest.raises(BebiasError, match="--arch 'r3d_18' is for state_dicts"):
        open_model(d, "r3d_18")
    # weights that do not fill the model: never a random-init head
    from safetensors.torch import load_file, save_file

    d = tiny_hf_dir(tmp_path / "partial", "timesformer")
    sd = load_file(os.path.join(d, "model.safetensors"))
    del sd["classifier.weight"]
    save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(BebiasError, match="weights do not match config.json \\(1 missing: classifier.weight\\)"):
        open_model(d)
    # transformers missing
    d = tiny_hf_dir(tmp_path / "ok", "videomae")
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(BebiasError, match=r"reading it needs transformers: pip install bebias\[hf\]"):
        open_model(d)


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo PWNED",))


def test_a_pickle_with_code_is_refused_unexecuted(tmp_path, capfd):
    d = tiny_hf_dir(tmp_path / "bin", "videomae")
    from safetensors.torch import load_file

    sd = load_file(os.path.join(d, "model.safetensors"))
    os.remove(os.path.join(d, "model.safetensors"))
    torch.save({**sd, "evil": _Payload()}, os.path.join(d, "pytorch_model.bin"))
    with pytest.raises(BebiasError, match="transformers cannot load it"):
        open_model(d)
    assert "PWNED" not in capfd.readouterr().out
    # the same weights without the payload load (torch.load with weights_only=True)
    torch.save(sd, os.path.join(d, "pytorch_model.bin"))
    assert open_model(d).meta.foreign["weights"] == "pytorch_model.bin"


def test_a_directory_has_a_content_hash(dirs, tmp_path):
    import shutil

    from bebias.checkpoint import file_sha256

    a = file_sha256(dirs["vivit"])
    shutil.copytree(dirs["vivit"], tmp_path / "copy")
    assert file_sha256(tmp_path / "copy") == a and len(a) == 64
    _edit_json(str(tmp_path / "copy" / "config.json"), id2label={"0": "a", "1": "b", "2": "c"})
    assert file_sha256(tmp_path / "copy") != a


# --------------------------------------------------------------------------------------
# the CLI, no input flags
# --------------------------------------------------------------------------------------

def test_probe_cli_with_swapped_backgrounds(dirs, tmp_path):
    out = tmp_path / "probe"
    r = bebias("probe", dirs["videomae"], "--swap-backgrounds", "--data", DATA, "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "input spec: the Hugging Face VideoMAEForVideoClassification (video_preprocessor_config.json)" in r.stderr
    res = json.loads((out / "metrics.json").read_text())
    assert res["provenance"]["arch"] == ARCH["videomae"] and res["provenance"]["input"]["size"] == SIZE
    assert "swap-background" in json.dumps(res)
    assert "Warning" not in r.stderr and "Loading weights" not in r.stderr


def test_cam_cli_on_a_video(dirs, tmp_path):
    from bebias.data.synth import SynthBenchmark, SynthConfig
    from bebias.data.video_io import write_video

    bench = SynthBenchmark(SynthConfig(classes=3, videos_per_class=1, test_videos_per_class=1, frames=12, size=32))
    video = tmp_path / "clip.mkv"
    write_video(video, bench.video("iid", 0).frames)
    out = tmp_path / "cam"
    r = bebias("cam", dirs["timesformer"], str(video), "--format", "none", "--out", str(out), "--n-boot", "100")
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((out / "cam.json").read_text())
    assert res["layer"] == "hf.timesformer.encoder.layer.1.layernorm_before"
    assert res["checkpoints"][0]["arch"] == ARCH["timesformer"]
    assert (out / res["videos"][0]["strip"]).is_file()
    assert "input spec: the Hugging Face TimesformerForVideoClassification" in r.stderr


def test_eval_cli_matches_names_and_cli_refusals(tmp_path):
    d = tiny_hf_dir(tmp_path / "named", "vjepa2", labels=["up", "left", "right"])
    r = bebias("eval", d, "--data", DATA, "--out", str(tmp_path / "e.json"))
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / "e.json").read_text())
    assert res["splits"]["iid"]["class_match"] == {"by": "name", "reordered": True}
    assert "class order" in r.stderr and "input spec: the Hugging Face VJEPA2ForVideoClassification" in r.stderr
    _edit_json(os.path.join(d, "video_preprocessor_config.json"), crop_size=64)
    r = bebias("eval", d, "--data", DATA)
    assert r.returncode == 2 and "disagree" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("mode", ["--full", "--linear"])
def test_finetune_from_a_hf_dir_is_one_line_exit_2(dirs, tmp_path, mode):
    """Fine-tuning starts from a bebias checkpoint or --arch: a Hugging Face directory is refused
    before any work, saying so (not read_meta's generic "is a directory"), with or without --arch."""
    from tests.inproc import bebias, message_lines  # in-process: these refusals need no interpreter each

    out = tmp_path / "ft"
    for extra in ([], ["--arch", "r3d_18"]):
        r = bebias("finetune", dirs["videomae"], mode, *extra, "--data", DATA, "--batch-size", "2", "--max-steps", "1",
                   "--workers", "0", "--out", str(out))
        assert r.returncode == 2, r.stderr[-3000:]
        assert message_lines(r.stderr) == [f"error: {dirs['videomae']}: a Hugging Face model directory: bebias probe, "
                                           "cam and eval read it, but fine-tuning starts from a bebias checkpoint "
                                           "(bebias train / finetune) or from --arch [--pretrained] (torchvision's "
                                           "video models included)"]
        assert not out.exists()  # refused before the run directory is made
    r = bebias("finetune", str(tmp_path), mode, "--data", DATA, "--out", str(out))
    assert r.returncode == 2 and message_lines(r.stderr) == [
        f"error: {tmp_path}: is a directory; fine-tuning starts from a bebias checkpoint file (bebias train / "
        "finetune), e.g. its model.pth"]
