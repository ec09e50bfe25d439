"""CLI progress: one line per stage when not a terminal, a bar with time left on a terminal."""

from __future__ import annotations

import io

from cleaning.cli.progress import StageProgress, counting, fmt_seconds


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_one_line_per_stage_when_piped() -> None:
    out = io.StringIO()
    p = StageProgress(out)
    step = counting(p, "embedding", 0.0, 0.5)
    for d in range(0, 101, 10):
        step(d, 100)
    p("looking for duplicates", 0.7)
    p.close()
    lines = [ln for ln in out.getvalue().splitlines() if ln.startswith("[")]
    assert lines == ["[  0%] embedding 0/100", "[ 70%] looking for duplicates"]


def test_a_long_stage_reports_every_heartbeat_when_piped(monkeypatch) -> None:  # noqa: ANN001
    clock = iter([0.0, 0.0, 10.0, 31.0, 40.0, 62.0])  # (the first read is the constructor's)
    monkeypatch.setattr("cleaning.cli.progress.time.monotonic", lambda: next(clock))
    out = io.StringIO()
    p = StageProgress(out, heartbeat=30.0)
    for d in (0, 10, 25, 30, 50):  # the embedding is the first half of the job
        p(f"embedding {d}/100", d / 200)
    lines = out.getvalue().splitlines()
    # the start, then one line per 30 s with the stage's pace so far: 25 of 100 in 31 s → 93 s left; 50 in 62 s → 62 s
    assert lines == ["[  0%] embedding 0/100", "[ 12%] embedding 25/100 — 1 min 33 s left",
                     "[ 25%] embedding 50/100 — 1 min 2 s left"]


def test_bar_with_eta_on_a_terminal(monkeypatch) -> None:  # noqa: ANN001
    clock = iter([0.0, 0.0, 10.0, 10.0, 20.0, 20.0])
    monkeypatch.setattr("cleaning.cli.progress.time.monotonic", lambda: next(clock))
    out = _Tty()
    p = StageProgress(out, min_interval=0.0)
    p("embedding 0/100", 0.0)
    p("embedding 25/100", 0.25)  # 25 % in 10 s: 30 s left
    assert "30 s left" in out.getvalue() and "█████" in out.getvalue()
    assert fmt_seconds(125) == "2 min 5 s" and fmt_seconds(7300) == "2 h 1 min"


def test_eta_of_a_stage() -> None:
    from cleaning.progress import Eta

    e = Eta()
    assert e.update("embedding 0/100 new images", 0.0, now=0.0)
    assert not e.update("embedding 40/100 new images", 0.2, now=8.0)
    # the stage's own count: 40 of 100 in 8 s → 12 s left (not 32 s: the whole job's rest at this pace)
    assert e.text("embedding 40/100 new images", 0.2, now=8.0) == "embedding 40/100 new images — 12 s left"
    assert e.update("looking for duplicates", 0.7, now=9.0) and e.seconds_left(0.7, now=9.0) is None
    # a stage without a count falls back to the overall fraction
    assert not e.update("looking for duplicates", 0.8, now=19.0) and abs(e.seconds_left(0.8, now=19.0) - 20.0) < 1e-9


def test_time_left_of_a_stage_that_is_a_small_share_of_the_job() -> None:
    """The pixel pass is 0.55 → 0.70 of a scan: at 97 % of its files it has seconds, not minutes, left."""
    from cleaning.progress import Eta

    e = Eta()
    e.update("checking pixels 0/99393", 0.55, now=0.0)
    e.update("checking pixels 96400/99393", 0.55 + 0.15 * 0.97, now=97.0)
    left = e.seconds_left(0.55 + 0.15 * 0.97, now=97.0)
    assert left is not None and 2.5 < left < 3.5


def test_a_bar_redraws_at_a_new_stage_at_once_and_otherwise_at_most_every_quarter_second() -> None:
    from cleaning.progress import Eta

    e = Eta()
    assert e.due("embedding 8/100 new images", 0.01, now=0.0)  # the first report is drawn
    assert not e.due("embedding 16/100 new images", 0.02, now=0.1)
    assert e.due("embedding 24/100 new images", 0.03, now=0.3)
    assert not e.due("embedding 32/100 new images", 0.04, now=0.4)
    assert e.due("looking for duplicates", 0.7, now=0.45)  # a new stage: at once
    assert e.text("looking for duplicates", 0.7, now=0.45) == "looking for duplicates"
