"""What ``hdbench run`` shows while it works (on stderr; the leaderboard alone goes to stdout).

On a terminal: a bar with the items done, the elapsed time, an estimate of the time left and the
items now running. Elsewhere (CI logs, ``nohup``, a pipe): one plain line per finished item, so
that a log shows progress as it happens rather than nothing until the end.
"""
from __future__ import annotations

import time


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class RunProgress:
    """``start(suite, total)``, then ``advance(item, status, running)`` once per finished item
    (``running``: the items computing now, first first), then ``stop()``."""

    def __init__(self, console):
        self.console = console
        self.bar = None
        self.done = self.total = 0
        self.started = 0.0

    def start(self, suite: str, total: int) -> None:
        self.total, self.started = total, time.perf_counter()
        if self.console.is_terminal:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)
            self.bar = Progress(TextColumn(f"{suite}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.description}"),
                                console=self.console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task("", total=total)
        else:
            self.console.print(f"{suite}: {total} items to compute", highlight=False)

    def advance(self, item: str, status: str, running: list[str]) -> None:
        self.done += 1
        if self.bar is not None:
            now = running[0] if running else ""
            more = f" (+{len(running) - 1})" if len(running) > 1 else ""
            self.bar.update(self.task, advance=1, description=f"{now[:60]}{more}")
            return
        elapsed = time.perf_counter() - self.started
        left = elapsed / self.done * (self.total - self.done)
        width = len(str(self.total))
        self.console.print(f"[{self.done:>{width}}/{self.total} {_clock(elapsed)}, eta {_clock(left)}] "
                           f"{item}: {status}", highlight=False, markup=False, soft_wrap=True)

    def stop(self) -> None:
        if self.bar is not None and self.bar.live.is_started:
            self.bar.stop()
