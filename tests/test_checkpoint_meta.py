"""The one path from a checkpoint to inference: :class:`bebias.checkpoint.CheckpointMeta`
(written by pre-training and fine-tuning, read by open_model, provenance and the CLI) and
:class:`bebias.models.open.OpenedModel`'s input spec, data and default split.

What is tested: a checkpoint written in the writers' old literal form (before the class)
opens, with the same metadata; the writers still write exactly those entries in that order;
to_dict/from_dict round-trip; a bad field is one line naming the file and the field; the
overrides and the default-split rule."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bebias.checkpoint import CheckpointMeta, load_checkpoint, read_meta, save_checkpoint
from bebias.data.open import default_split
from bebias.data.transforms import ClipSpec
from bebias.errors import BebiasError
from bebias.models.backbones import build_backbone
from bebias.models.open import open_model

SPEC = {"frames": 4, "stride": 2, "size": 32, "mean": [0.45, 0.45, 0.45], "std": [0.225, 0.225, 0.225]}
CONFIG = {"data": "synthetic:train=6,test=3", "dataset": None, "annotations": None, "arch": "small3d"}


def _old_classifier(path, **over) -> None:
    """A classifier checkpoint as finetune's writer built it before CheckpointMeta: a literal dict."""
    torch.manual_seed(0)
    save_checkpoint(path, {"kind": "classifier", "arch": "small3d", "method": "supervised", "config": CONFIG,
                           "input": SPEC, "classes": ["a", "b", "c"], "num_classes": 3,
                           "backbone": build_backbone("small3d").state_dict(), "head": nn.Linear(256, 3).state_dict(),
                           "step": 7, **over})


def test_an_old_checkpoint_opens_with_its_metadata(tmp_path):
    path = tmp_path / "old.pth"
    _old_classifier(path)
    m = open_model(path)
    assert m.meta == CheckpointMeta("classifier", "small3d", "supervised", CONFIG, SPEC, ("a", "b", "c"), 3,
                                    extra={"format": "bebias-checkpoint", "format_version": 1,
                                           "bebias_version": m.meta.extra["bebias_version"], "step": 7})
    assert m.input_spec() == ClipSpec(4, 2, 32, (0.45,) * 3, (0.225,) * 3)
    assert read_meta(path) == m.meta
    # its own data by default (with its dataset settings), and the benchmark's default split
    assert m.resolve_data(None) == ("synthetic:train=6,test=3", None, None, "conflict")
    assert m.resolve_data(None, evaluate=True)[3] == "iid,conflict"
    assert m.resolve_data("some/dir", split="val") == ("some/dir", None, None, "val")


def test_the_writers_write_the_old_entries_in_the_old_order(tmp_path):
    from bebias.models.classifier import VideoClassifier
    from bebias.training.finetune import FinetuneConfig, classifier_payload

    cfg = FinetuneConfig(frames=4, stride=2, size=32, out=str(tmp_path / "r"))
    net = VideoClassifier(build_backbone("small3d"), 3)
    got = classifier_payload(net, cfg, ["a", "b", "c"], step=1)
    old = {"kind": "classifier", "arch": cfg.arch, "method": "supervised", "config": cfg.to_dict(),
           "input": cfg.clip_spec.to_dict(), "classes": ["a", "b", "c"], "num_classes": 3,
           "backbone": net.backbone.state_dict(), "head": net.fc.state_dict(), "step": 1}
    assert list(got) == list(old)
    assert {k: v for k, v in got.items() if k not in ("backbone", "head")} == \
        {k: v for k, v in old.items() if k not in ("backbone", "head")}
    save_checkpoint(tmp_path / "new.pth", got)
    assert CheckpointMeta.from_dict(load_checkpoint(tmp_path / "new.pth")).to_dict() == \
        {**{k: v for k, v in old.items() if k not in ("backbone", "head")},
         "format": "bebias-checkpoint", "format_version": 1,
         "bebias_version": read_meta(tmp_path / "new.pth").extra["bebias_version"]}


def test_round_trip_and_none_fields_left_out():
    meta = CheckpointMeta("pretrain", "small3d", "moco", config={"data": "synthetic"}, input=SPEC, classes=("x",))
    d = meta.to_dict()
    assert list(d) == ["kind", "arch", "method", "config", "input", "classes"] and d["classes"] == ["x"]
    assert CheckpointMeta.from_dict(d) == meta


@pytest.mark.parametrize("change,named", [
    ({"num_classes": 4}, "num_classes"), ({"classes": ["a", "b"]}, "classes"), ({"input": {"frames": 0}}, "input.frames"),
    ({"input": {"fps": 3}}, "input key"), ({"method": 3}, "method"), ({"config": [1]}, "config"),
    ({"kind": "detector"}, "'detector' checkpoint"), ({"arch": "nonesuch"}, "arch"),
])
def test_a_bad_field_is_one_line_naming_file_and_field(tmp_path, change, named):
    path = tmp_path / "bad.pth"
    _old_classifier(path, **change)
    with pytest.raises(BebiasError) as info:
        open_model(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg and named in msg, msg


def test_input_spec_overrides_and_no_recorded_spec(tmp_path):
    path = tmp_path / "old.pth"
    _old_classifier(path)
    m = open_model(path)
    assert m.input_spec({"size": 24, "frames": None}) == ClipSpec(4, 2, 24, (0.45,) * 3, (0.225,) * 3)
    with pytest.raises(BebiasError, match="bad input spec"):
        m.input_spec({"frames": 0})
    assert m.announce_spec({"size": 24}) is None  # the file records its own spec: nothing to announce
    from dataclasses import replace

    m.meta = replace(m.meta, input=None)
    with pytest.raises(BebiasError, match="records no input spec.*--frames and --size"):
        m.input_spec({"frames": 4})
    assert m.input_spec({"frames": 4, "size": 16}) == ClipSpec(4, 1, 16)
    m.meta = replace(m.meta, input=SPEC, input_preset="preset X")
    assert m.announce_spec({"size": 24, "frames": None}, "A") == (
        "A: input spec: the preset X; overridden: size (override with --frames, --stride, --size, --mean, --std)")


def test_default_split_rule(tmp_path):
    assert default_split("synthetic") == "conflict" and default_split("synthetic:train=4") == "conflict"
    assert default_split("synthetic", evaluate=True) == "iid,conflict"
    assert default_split(str(tmp_path)) == "test" and default_split(str(tmp_path), evaluate=True) == "test"


def test_the_run_config_nests_its_clip_and_keeps_resize():
    from dataclasses import replace

    from bebias.training.finetune import FinetuneConfig, classifier_meta

    cfg = FinetuneConfig.from_dict({"frames": 4, "stride": 1, "size": 32, "resize": 40, "mean": [0.5] * 3})
    assert cfg.clip == ClipSpec(4, 1, 32, (0.5,) * 3, cfg.clip.std, resize=40)
    assert classifier_meta(cfg, ["a"]).input == {**cfg.clip.to_dict(), "resize": 40}  # recorded, not dropped
    d = cfg.to_dict()  # flat, in the old place, as TOML files and flags name them
    assert list(d)[6:14] == ["arch", "pretrained", "frames", "stride", "size", "mean", "std", "resize"]
    assert FinetuneConfig.from_dict(d) == cfg and "resize" not in FinetuneConfig().to_dict()
    assert FinetuneConfig(frames=4, size=32).clip == ClipSpec(4, 2, 32) and replace(cfg, seed=1).clip is cfg.clip
    with pytest.raises(BebiasError, match=r"--size \(config key 'size'\) must be an integer"):
        FinetuneConfig(size="big")
    with pytest.raises(BebiasError, match="unknown config keys: clip"):
        FinetuneConfig.from_dict({"clip": {"frames": 4}})
