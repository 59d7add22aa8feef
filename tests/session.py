"""Things built once per pytest session and shared by every test file, and by xdist's workers.

With ``pytest -n auto --dist loadfile`` each worker is its own process: a ``scope="session"``
fixture would still be built once per worker. :func:`once` builds into a folder the workers
share (under the session's root temporary folder) behind a file lock, so the first worker to ask
builds it and the others wait, then read it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path


def once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """A folder ``name`` that ``build(folder)`` fills once per pytest session: with xdist the
    workers share one (the session's root temporary folder) and the first to ask builds it
    while the others wait on a lock (``done`` marks a build that returned: one that raised is
    retried by the next caller). Returns the folder; its contents are read-only by convention."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # pytest-N/, shared by this session's workers (each has pytest-N/popen-gwK)
    folder = root / f"shared-{name}"
    with open(root / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (folder / "done").exists():
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir()
                build(folder)
                (folder / "done").touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return folder
