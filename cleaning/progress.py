"""Time left of a running stage, for every progress display (CLI lines and bars, the app's bars).

A progress callback reports ``(what, fraction)``; a *stage* is ``what`` without its numbers
("embedding 840/2000 new images" → "embedding new images"). :class:`Eta` turns the calls into
seconds left in the current stage: the time since the stage started scaled by the work left in it.
"""

from __future__ import annotations

import time


def stage_of(what: str) -> str:
    """``what`` without digits and slashes, spaces collapsed."""
    return " ".join("".join(c for c in what if not (c.isdigit() or c == "/")).split())


def fmt_seconds(s: float) -> str:
    """``"42 s"``, ``"3 min 5 s"``, ``"2 h 4 min"``."""
    s = max(0.0, s)
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60)} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"


class Eta:
    """Feed it ``update(what, fraction)``; it knows the stage, when it began and the time left in it."""

    def __init__(self) -> None:
        self.stage = ""
        self.t_stage = time.monotonic()
        self.f_stage = 0.0

    def update(self, what: str, frac: float, now: float | None = None) -> bool:
        """Record a report; True when it starts a new stage."""
        now = time.monotonic() if now is None else now
        stage = stage_of(what)
        if stage == self.stage:
            return False
        self.stage, self.t_stage, self.f_stage = stage, now, frac
        return True

    def seconds_left(self, frac: float, now: float | None = None) -> float | None:
        """Seconds left in the current stage from its pace so far (None before any measurable progress)."""
        now = time.monotonic() if now is None else now
        done = frac - self.f_stage
        if done <= 1e-9 or now - self.t_stage < 0.5:
            return None
        return (now - self.t_stage) / done * max(0.0, 1.0 - frac) if frac < 1 else 0.0

    def text(self, what: str, frac: float, now: float | None = None) -> str:
        """``"embedding 840/2000 new images — 12 s left"`` (no estimate yet: just ``what``)."""
        left = self.seconds_left(frac, now)
        return what if left is None else f"{what} — {fmt_seconds(left)} left"
