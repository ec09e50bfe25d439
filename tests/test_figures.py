"""Figure builders: what they draw follows the data they are given."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cleaning.review.figures import class_counts_frame, loss_figure, matrix_figure


def test_class_counts_split_kept_relabelled_deleted() -> None:
    items = pd.DataFrame({"label": ["cat", "cat", "dog", "dog"], "orig_label": ["cat", "dog", "dog", "dog"],
                          "deleted": [False, False, True, False]})
    df = class_counts_frame(items).set_index("class")
    assert list(df.index) == ["cat", "dog"]
    assert df["images"].to_dict() == {"cat": 2, "dog": 1}  # in the class now: kept and relabelled into it
    assert df["relabelled into"].to_dict() == {"cat": 1, "dog": 0}
    assert df["deleted"].to_dict() == {"cat": 0, "dog": 1}


def test_loss_and_matrix_figures() -> None:
    fig = loss_figure([2.0, 1.5, 1.0, 0.8], [{"epoch": 0, "valid_loss": 1.2}, {"epoch": 1, "valid_loss": 0.9}])
    assert [t.name for t in fig.data] == ["train loss (batch)", "train loss (smoothed)", "validation loss"]
    assert list(fig.data[2].x) == [2.0, 4.0]
    diff = matrix_figure(np.array([[1, -2], [0, 3]]), ["a", "b"], diverging=True)
    assert list(diff.data[0].text[0]) == ["+1", "-2"]
    assert diff.data[0].zmin == -3 and diff.data[0].zmax == 3
