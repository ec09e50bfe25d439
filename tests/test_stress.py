"""Stress: decisions, undo/redo, apply, export, rescan (+ open → recover) and a snapshot scan from several
processes at once on generated images, then every invariant checked (see :mod:`tests.stress`).

Bounded: ~1,200 images, 12 s of concurrent work, well under 60 s in all. ``bench/bench_concurrency.py``
runs the long version and writes ``bench/results/concurrency.md``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stress import run_stress


@pytest.mark.stress
@pytest.mark.timeout(300)
def test_many_processes_at_once_lose_and_corrupt_nothing(tmp_path: Path) -> None:
    res = run_stress(tmp_path, n_images=1200, seconds=12)
    print(res.summary())
    assert not res.problems, res.problems
    assert res.files_checked == 1200
    # every kind of work really ran, more than once
    for kind in ("decide", "apply", "export", "rescan", "scan"):
        assert res.operations[kind] >= 2, res.operations
    assert res.exports_checked >= 2 and res.decisions > 20
