"""The ``bebias`` command line: a thin typer layer over the library, one module per group
of commands. User errors (:class:`~bebias.errors.BebiasError`) print one line and exit with
code 2; anything else is a bug and keeps its traceback.
"""

from bebias.cli import demo, train, probe, data, report, cam  # noqa: F401, I001  (each registers its commands; this order is --help's)
from bebias.cli.common import app, main

__all__ = ["app", "main"]
