"""What the test files share, built once per session (across xdist's workers too:
:func:`tests.session.once`): the tiny data spec and the tiny trained models most files probe,
explain or report on. Read-only: a test that changes a model copies it first.

- ``tiny_data``: the 3-class benchmark spec (4-frame 32-px clips are trained on it);
- ``tiny_classifier_ckpt``: a 2-step small3d classifier on ``tiny_data`` (model.pth);
- ``tiny_linear_ckpt``: the same recipe with a linear-probe head on a frozen backbone (seed 1).
"""

from __future__ import annotations

import pytest

from tests.session import once
from tests.tiny import tiny_classifier

#: 3 classes, 4 training / 3 test videos per class, 12 frames of 32 px
TINY_DATA = "synthetic:classes=3,videos_per_class=4,test_videos_per_class=3,frames=12,size=32"


@pytest.fixture(scope="session")
def tiny_data() -> str:
    return TINY_DATA


@pytest.fixture(scope="session")
def tiny_classifier_ckpt(tmp_path_factory) -> str:
    """model.pth of a 2-step classifier trained on :data:`TINY_DATA` (tests/tiny.py's recipe)."""
    folder = once(tmp_path_factory, "classifier", lambda d: tiny_classifier(d / "ft", TINY_DATA))
    return str(folder / "ft" / "model.pth")


@pytest.fixture(scope="session")
def tiny_linear_ckpt(tmp_path_factory) -> str:
    """model.pth of the linear-probe recipe (frozen backbone, trained head, seed 1) on :data:`TINY_DATA`."""
    folder = once(tmp_path_factory, "linear", lambda d: tiny_classifier(d / "lin", TINY_DATA, linear=True, seed=1))
    return str(folder / "lin" / "model.pth")
