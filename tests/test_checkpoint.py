"""Checkpoints: self-describing, atomic, and safe with untrusted files."""

import os
import pickle

import pytest
import torch

from bebias.checkpoint import load_checkpoint, load_file, save_checkpoint
from bebias.errors import BebiasError


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED_MARKER",))


def test_pickled_code_is_refused_and_never_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    torch.save({"format": "bebias-checkpoint", "state_dict": {"w": torch.zeros(2)}, "x": _Evil()}, path)
    with pytest.raises(BebiasError, match="refused") as e:
        load_checkpoint(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "PWNED_MARKER").exists()


def test_raw_pickle_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(BebiasError):
        load_file(path)
    assert not (tmp_path / "PWNED_MARKER").exists()


def test_roundtrip_and_stamps(tmp_path):
    path = tmp_path / "c.pth"
    save_checkpoint(path, {"kind": "classifier", "arch": "small3d", "backbone": {"w": torch.ones(3)}})
    ck = load_checkpoint(path)
    assert ck["format"] == "bebias-checkpoint" and ck["arch"] == "small3d" and "bebias_version" in ck
    assert torch.equal(ck["backbone"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pth"]  # no temporary files left


@pytest.mark.parametrize("content, needle", [(None, "does not exist"), (b"hello", "not a readable"),
                                             ("plain", "not a bebias checkpoint")])
def test_bad_files(tmp_path, content, needle):
    path = tmp_path / "x.pth"
    if content == "plain":
        torch.save({"w": torch.zeros(1)}, path)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(BebiasError, match=needle):
        load_checkpoint(path)
