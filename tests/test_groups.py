"""join_groups: rows sharing a key or linked by an edge end up in one group."""

from __future__ import annotations

import math

from cleaning.groups import join_groups


def test_keys_and_edges_join_transitively() -> None:
    sha = ["a", "b", "a", None, "", "c"]
    phash = ["x", "y", None, "y", math.nan, None]
    ids = join_groups(6, [sha, phash], edges=[(4, 5)])
    assert ids[0] == ids[2]  # same sha
    assert ids[1] == ids[3]  # same phash
    assert ids[4] == ids[5]  # an edge
    assert len({ids[0], ids[1], ids[4]}) == 3  # None / "" / NaN join nothing
    assert sorted(set(ids.tolist())) == [0, 1, 2]


def test_no_keys_means_one_group_per_row() -> None:
    assert join_groups(4).tolist() == [0, 1, 2, 3]
    assert join_groups(0).tolist() == []
