"""User-facing errors.

A :class:`BebiasError` is a problem with the user's input (a missing file, a malformed
split file, a video that cannot be decoded, ...). Its message is ONE readable line that
names the file and what is wrong; the CLI prints it and exits with code 2, without a
traceback. Anything else that escapes is a bug in bebias and keeps its traceback.
"""

from __future__ import annotations

import os


class BebiasError(Exception):
    """A user error: one line naming the offending file/value and what is wrong."""

    exit_code = 2

    def __init__(self, message: str, path: str | os.PathLike | None = None) -> None:
        self.path = None if path is None else os.fspath(path)
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)


class VideoReadError(BebiasError):
    """A video file or frame folder that cannot be read (missing, corrupt, empty, gaps)."""


class DatasetFormatError(BebiasError):
    """A split file / manifest / annotation file that is empty or malformed."""
