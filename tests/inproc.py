"""``bebias ARGS`` run inside the test's process: what ``python -m bebias ARGS`` prints and exits with,
without starting an interpreter and importing torch again for every call (seconds each).

:func:`bebias` returns a :class:`subprocess.CompletedProcess` (``returncode``, ``stdout``,
``stderr``) as ``subprocess.run([sys.executable, "-m", "bebias", *args], capture_output=True,
text=True)`` would: it calls the real entry point (:func:`bebias.cli.main`, the one the console
script and ``python -m bebias`` call) with ``sys.argv`` set, captures both streams and the exit
code, and turns an exception that escapes the entry point (a bug, not a user error) into exit code
1 with its traceback on stderr, as the interpreter does. Python warnings raised during the call are
appended to stderr the way the interpreter prints them, so a test that wants a clean stderr still
sees them. What only a real process shows (output written by C code straight to the file
descriptors, ``os._exit``, signals, torchrun) stays with the subprocess tests.

Global state a command changes is put back afterwards: the working folder, environment variables
given with ``env``, torch's thread count and the random generators.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import re
import subprocess
import sys
import traceback
import warnings

import numpy as np
import torch


#: a progress line as bebias.cli.progress's plain renderer writes it off a terminal ("HH:MM:SS stage ...")
PROGRESS_LINE = re.compile(r"^\d\d:\d\d:\d\d \S")


def message_lines(stderr: str) -> list[str]:
    """stderr's non-empty lines that are not progress lines: a user error must leave exactly one."""
    return [s for s in stderr.splitlines() if s.strip() and not PROGRESS_LINE.match(s)]


class _Stream(io.StringIO):
    """A text stream that says it is not a terminal and has no file descriptor, as a pipe
    would look to rich (no colour, no live redraw)."""

    def isatty(self) -> bool:
        return False


def _consoles() -> list:
    from rich.console import Console

    import bebias.cli.common as common

    return [v for v in vars(common).values() if isinstance(v, Console)]


def bebias(*args: str, cwd: str | os.PathLike | None = None, env: dict[str, str] | None = None,
           timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run ``bebias *args`` in this process; ``env`` sets (not replaces) environment variables,
    ``cwd`` the working folder; ``timeout`` is accepted for the subprocess call's signature
    and not enforced. Returns the run's ``CompletedProcess``."""
    from bebias.cli import main

    out, err = _Stream(), _Stream()
    saved_env = {k: os.environ.get(k) for k in (env or {})}
    here = os.getcwd()
    threads = torch.get_num_threads()
    rng = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    consoles = [(c, c._width, c._height, c._color_system) for c in _consoles()]
    argv = sys.argv
    code: int = 0
    try:
        os.environ.update(env or {})
        if cwd is not None:
            os.chdir(cwd)
        for c, *_ in consoles:
            cols = os.environ.get("COLUMNS", "")
            c.size = (int(cols) if cols.isdigit() else 80, 25)
            c._color_system = None
        sys.argv = ["bebias", *map(str, args)]
        with warnings.catch_warnings(record=True) as caught, \
                contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            warnings.simplefilter("default")
            try:
                main()
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
                if isinstance(e.code, str):
                    print(e.code, file=sys.stderr)
            except BaseException:  # noqa: BLE001 — a bug: the interpreter would print it and exit 1
                traceback.print_exc()
                code = 1
        for w in caught:
            if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning)):
                err.write(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line))
    finally:
        sys.argv = argv
        for c, width, height, color in consoles:
            c._width, c._height, c._color_system = width, height, color
        os.chdir(here)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        random.setstate(rng[0])
        np.random.set_state(rng[1])
        torch.set_rng_state(rng[2])
    return subprocess.CompletedProcess(["bebias", *map(str, args)], code, out.getvalue(), err.getvalue())
