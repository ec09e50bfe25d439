"""The retraining benchmark acts on the scan's flags as the product does (``bench/bench_photos_run.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from cleaning.detect import issues_frame

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from bench_photos_run import acting_on_flags  # noqa: E402


def test_drop_and_relabel_keep_one_copy_of_a_pair_and_move_label_errors_to_the_suggestion() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    issues = issues_frame([
        {"item_id": "1", "issue": "near_duplicate", "severity": 0.5, "related_item_id": "0"},  # 0 is kept
        {"item_id": "2", "issue": "label", "severity": 0.9, "suggested_label": "c"},
        {"item_id": "3", "issue": "label", "severity": 0.9, "suggested_label": "a"},
        {"item_id": "3", "issue": "low_quality", "severity": 0.5},
        {"item_id": "5", "issue": "outlier", "severity": 0.8},
    ])
    v = acting_on_flags(issues, y, ["a", "b", "c"])
    keep, labels = v["drop"]
    assert keep.tolist() == [True, False, False, False, True, False] and labels.tolist() == y.tolist()
    keep, labels = v["relabel"]
    assert keep.tolist() == [True, False, True, False, True, False]  # 3 has another row: dropped
    assert labels[2] == 2 and labels[0] == 0 and labels[4] == 2
