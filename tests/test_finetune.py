"""Supervised training: exact resume, safe init loading, metrics on hand-computed cases."""

import numpy as np
import pytest
import torch

from bebias.errors import BebiasError
from bebias.models.open import load_classifier
from bebias.training.evaluate import background_follow, classification_metrics, retrieval_recall
from bebias.training.finetune import FinetuneConfig, finetune

TINY = "synthetic:classes=3,videos_per_class=4,test_videos_per_class=2,frames=12,size=32"

def _cfg(tmp_path, name, **kw):
    return FinetuneConfig(data=TINY, arch="small3d", frames=4, stride=2, size=32, batch_size=4, max_steps=6,
                          workers=0, out=str(tmp_path / name), **kw)

def test_resume_after_interrupt_equals_uninterrupted(tmp_path):
    full = finetune(_cfg(tmp_path, "a"))

    def interrupt(p):
        if p.done == 4:  # mid-epoch (3 batches per epoch)
            raise KeyboardInterrupt

    cfg = _cfg(tmp_path, "b")
    with pytest.raises(BebiasError, match="interrupted at step 4"):
        finetune(cfg, progress=interrupt)
    resumed = finetune(cfg, resume=True)
    assert resumed.steps == full.steps == 6
    a, _ = load_classifier(full.model_path)
    b, _ = load_classifier(resumed.model_path)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    # the training time is the run's own, summed over the interruption
    last = tmp_path / "b" / "last.pth"
    from bebias.checkpoint import load_checkpoint, save_checkpoint
    from bebias.training.calibrate import _train_seconds, to_markdown

    st = load_checkpoint(last)
    assert 0 < full.train_seconds and 0 < resumed.train_seconds == st["train_seconds"] == _train_seconds(str(tmp_path / "b"))
    save_checkpoint(last, {**st, "step": 4, "train_seconds": 1.5})  # a part already timed, then resumed
    again = finetune(cfg, resume=True)
    assert again.train_seconds > 1.5 and load_checkpoint(last)["train_seconds"] == again.train_seconds
    save_checkpoint(last, {k: v for k, v in st.items() if k != "train_seconds"} | {"step": 4})  # an older bebias's state
    assert finetune(cfg, resume=True).train_seconds is None and _train_seconds(str(tmp_path / "b")) is None
    row = {"run": "r", "seed": 0, "iid_top1": 0.5, "conflict_top1": 0.25, "conflict_background_follow": None}
    res = {"rows": [{**row, "train_minutes": None}, {**row, "train_minutes": 2.0}], "torch": "x", "machine": "m",
           "config": _cfg(tmp_path, "c").to_dict()}
    md = to_markdown(res)
    assert "| r | 0 | 50.0 | 25.0 | - | - |" in md and "| r | 0 | 50.0 | 25.0 | - | 2.0 |" in md

def test_resume_with_another_number_of_workers_equals_uninterrupted(tmp_path):
    """Workers change speed, never results: interrupted in-process, resumed with a worker process."""
    full = finetune(_cfg(tmp_path, "a"))

    def interrupt(p):
        if p.done == 2:
            raise KeyboardInterrupt

    with pytest.raises(BebiasError, match="interrupted at step 2"):
        finetune(_cfg(tmp_path, "b"), progress=interrupt)
    cfg = _cfg(tmp_path, "b")
    cfg.workers = 1
    resumed = finetune(cfg, resume=True)
    a, _ = load_classifier(full.model_path)
    b, _ = load_classifier(resumed.model_path)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k

def test_default_workers_leave_the_cores_to_torch_on_cpu(monkeypatch):
    from bebias.data.loader import resolve_workers

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_workers(3, cpu) == 3
    with pytest.raises(BebiasError, match="--workers"):
        resolve_workers(-1, cpu)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setattr("os.getloadavg", lambda: (0.0, 0.0, 0.0))  # an idle machine
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    assert resolve_workers(None, cpu) == 0  # torch's threads use every core
    monkeypatch.setattr(torch, "get_num_threads", lambda: 6)
    assert resolve_workers(None, cpu) == 2  # only the spare cores
    assert resolve_workers(None, cuda) == 4 and resolve_workers(None, cuda, world=4) == 1
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert resolve_workers(None, cpu) == 4
    monkeypatch.setattr("os.getloadavg", lambda: (5.0, 0.0, 0.0))  # other processes keep 5 cores busy
    assert resolve_workers(None, cpu) == 1  # 3 free cores, 2 of them torch's

def test_resume_refuses_a_different_config(tmp_path):
    finetune(_cfg(tmp_path, "a"))
    with pytest.raises(BebiasError, match="different config"):
        finetune(_cfg(tmp_path, "a", lr=1e-4), resume=True)

def test_init_from_checkpoint_of_another_arch_is_an_error(tmp_path):
    res = finetune(_cfg(tmp_path, "a"))
    cfg = _cfg(tmp_path, "b", init=res.model_path)
    cfg.arch = "c3d"
    with pytest.raises(BebiasError, match="architecture"):
        finetune(cfg)

def test_linear_probe_keeps_backbone_frozen(tmp_path):
    res = finetune(_cfg(tmp_path, "a"))
    lin = finetune(_cfg(tmp_path, "b", init=res.model_path, linear=True))
    a, _ = load_classifier(res.model_path)
    b, _ = load_classifier(lin.model_path)
    for (k, va), vb in zip(a.backbone.state_dict().items(), b.backbone.state_dict().values()):
        assert torch.equal(va, vb), k  # weights and BN statistics untouched
    assert not torch.equal(a.fc.weight, b.fc.weight)

def test_classification_metrics_hand_computed():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3], [0.5, 0.1, 0.4]])
    labels = np.array([0, 1, 1, 2])
    m = classification_metrics(probs, labels, 3)
    assert m["top1"] == 0.5  # right on videos 0 and 2
    assert m["per_class"] == {0: 1.0, 1: 0.5, 2: 0.0}
    assert m["mean_class"] == pytest.approx(0.5)
    assert m["top5"] == 1.0  # K = 3 < 5: top-3 always contains the label
    assert background_follow(np.array([0, 2, 1, 1]), np.array([0, 2, 2, 1])) == 0.75

def test_retrieval_recall_hand_computed():
    gallery = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    g_labels = np.array([0, 1, 2])
    query = np.array([[0.9, 0.1], [0.1, 0.9]])
    q_labels = np.array([2, 1])
    r = retrieval_recall(query, q_labels, gallery, g_labels, ks=(1, 2, 3))
    # query 0: nearest [0 (cos .99), 2 (.78), 1] -> label 2 found at rank 2; query 1: label 1 at rank 1
    assert r == {"R@1": 0.5, "R@2": 1.0, "R@3": 1.0}
