"""Progress on standard error for long CLI steps: one line per stage, a bar with an ETA on a terminal.

``StageProgress(stream)`` is called with ``(what, fraction)`` (the analysis' callback shape); a stage
is ``what`` without its numbers. When the stream is not a terminal each stage gets one line when
it starts and one when it ends, with its duration, and a long stage one more line every ``heartbeat``
seconds (30) with its progress and time left, so a log of a 30-minute embedding is not silent; on a terminal the current stage is one rewritten
line ``[ 42%] embedding 840/2000 new images |████      | 12 s left``. The ETA is the time since the
stage started scaled by the work left within it (:func:`cleaning.progress.time_left`: the stage's own
count when the message carries one).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from ..progress import count_of, fmt_seconds, stage_of, time_left

__all__ = ["BAR", "StageProgress", "counting", "fmt_seconds"]

BAR = 20


class StageProgress:
    """Callable ``(what, fraction in [0, 1])`` that reports stages with elapsed time and an ETA."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False, min_interval: float = 0.2,
                 heartbeat: float = 30.0) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.heartbeat = heartbeat
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval = min_interval
        self.stage = ""
        self.t_stage = self.t_draw = time.monotonic()
        self.f_stage = 0.0
        self.c_stage: int | None = None
        self.last = ""

    def eta(self, frac: float, now: float) -> float | None:
        """Seconds left in the current stage, from its pace so far (None before any progress)."""
        return time_left(self.t_stage, self.f_stage, self.c_stage, self.last, frac, now)

    def __call__(self, what: str, frac: float) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        stage = stage_of(what)
        if stage != self.stage:
            self._end(now)
            self.stage, self.t_stage, self.f_stage = stage, now, frac
            count = count_of(what)
            self.c_stage = count[0] if count else None
            if not self.tty:
                print(f"[{frac:4.0%}] {what}", file=self.stream, flush=True)
                self.t_draw = now
        elif not self.tty and now - self.t_draw >= self.heartbeat:
            self.t_draw, self.last = now, what
            eta = self.eta(frac, now)
            left = f" — {fmt_seconds(eta)} left" if eta is not None else ""
            print(f"[{frac:4.0%}] {what}{left}", file=self.stream, flush=True)
        self.last = what
        if self.tty and (now - self.t_draw >= self.min_interval or frac >= 1):
            self.t_draw = now
            eta = self.eta(frac, now)
            fill = int(round(BAR * frac))
            left = f" | {fmt_seconds(eta)} left" if eta is not None else ""
            print(f"\r[{frac:4.0%}] {what} |{'█' * fill}{' ' * (BAR - fill)}|{left}\033[K", end="",
                  file=self.stream, flush=True)

    def _end(self, now: float) -> None:
        if not self.stage:
            return
        took = f"{self.stage}: {fmt_seconds(now - self.t_stage)}"
        if self.tty:
            print(f"\r{self.last} — done in {fmt_seconds(now - self.t_stage)}\033[K", file=self.stream, flush=True)
        elif now - self.t_stage >= 1.0:
            print(f"       {took}", file=self.stream, flush=True)

    def close(self) -> None:
        """End the last stage's line."""
        if not self.quiet:
            self._end(time.monotonic())
            self.stage = ""


def counting(progress: StageProgress, what: str, start: float = 0.0, span: float = 1.0):  # noqa: ANN201
    """Adapt a ``(done, total)`` callback to ``progress``: ``what done/total`` over [start, start+span]."""
    def call(done: int, total: int) -> None:
        progress(f"{what} {done}/{total}", start + span * done / max(total, 1))
    return call
