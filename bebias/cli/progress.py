"""Drawing :class:`~bebias.progress.Progress` events: rich bars on a terminal, and short
timestamped lines when stderr is a file or a pipe (``make demo > log`` stays alive).

:func:`progress_display` picks one. Neither draws anything before the first event, so a user
error found before any progress stays one line on stderr.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress

from bebias.cli.common import err_console
from bebias.progress import Progress, ProgressFn

#: seconds between two plain lines of one stage (its first and last event always print)
PLAIN_INTERVAL = 5.0


def format_info(info: Mapping[str, float | str]) -> str:
    """``key=value`` pairs, numbers short: ``loss=0.3124 clips_per_s=412``."""
    def f(v: float | str) -> str:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return str(v)
        if isinstance(v, int) or abs(v) >= 100:
            return f"{v:.0f}"
        return f"{v:.4g}"

    return " ".join(f"{k}={f(v)}" for k, v in info.items())


def plain_line(p: Progress, now: float) -> str:
    """``HH:MM:SS stage done/total (pct) key=value ...`` (local time ``now``, seconds since the epoch)."""
    count = f"{p.done}/{p.total} ({100 * p.done / p.total:.0f}%)" if p.total else f"{p.done}"
    info = format_info(p.info)
    return f"{time.strftime('%H:%M:%S', time.localtime(now))} {p.stage} {count}" + (f" {info}" if info else "")


class PlainRenderer:
    """Progress as lines: per stage its first event, then at most one every ``interval``
    seconds, and its last (``done == total``, or at :meth:`close` the latest one not yet
    written). ``write`` gets each line; ``clock`` gives seconds since the epoch."""

    def __init__(self, write: Callable[[str], None], *, clock: Callable[[], float] = time.time,
                 interval: float = PLAIN_INTERVAL) -> None:
        self.write, self.clock, self.interval = write, clock, interval
        self._last: dict[str, float] = {}  # stage -> when its last line was written
        self._pending: dict[str, Progress] = {}  # stage -> its latest event not written yet

    def __call__(self, p: Progress) -> None:
        now = self.clock()
        last = self._last.get(p.stage)
        final = p.total is not None and p.done >= p.total
        if last is None or final or now - last >= self.interval:
            self._pending.pop(p.stage, None)
            self._last[p.stage] = now
            self.write(plain_line(p, now))
        else:
            self._pending[p.stage] = p

    def close(self) -> None:
        """Write each stage's latest event that was held back (where the stage stopped)."""
        now = self.clock()
        for p in self._pending.values():
            self.write(plain_line(p, now))
        self._pending.clear()


class BarRenderer:
    """Progress as rich bars on ``console``, one per stage, started with the first event.
    ``transient``: the bars go away at the end (a table follows)."""

    def __init__(self, console: Console, *, transient: bool = False) -> None:
        self.console, self.transient = console, transient
        self._bars: RichProgress | None = None
        self._tasks: dict[str, int] = {}

    def __call__(self, p: Progress) -> None:
        if self._bars is None:
            self._bars = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                                      console=self.console, transient=self.transient)
            self._bars.start()
        if p.stage not in self._tasks:
            self._tasks[p.stage] = self._bars.add_task(p.stage, total=p.total, info="")
        self._bars.update(self._tasks[p.stage], completed=p.done, total=p.total, info=format_info(p.info))

    def close(self, finished: bool = True) -> None:
        """Stop drawing; with ``finished``, stages of no known total are shown done."""
        if self._bars is None:
            return
        if finished:
            for t in self._bars.tasks:
                if t.total is None:
                    self._bars.update(t.id, total=t.completed)
        self._bars.stop()


@contextlib.contextmanager
def progress_display(console: Console | None = None, *, transient: bool = False) -> Iterator[ProgressFn]:
    """A :data:`~bebias.progress.ProgressFn` drawing on ``console`` (default: stderr's): bars
    when it is a terminal, :class:`PlainRenderer` lines otherwise."""
    console = console or err_console
    if console.is_terminal:
        bars = BarRenderer(console, transient=transient)
        try:
            yield bars
        except BaseException:
            bars.close(finished=False)
            raise
        bars.close()
    else:
        plain = PlainRenderer(lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True))
        try:
            yield plain
        finally:
            plain.close()
