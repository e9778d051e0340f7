"""The protocol's dates and roles, and the one-line errors for unusable snapshots."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest

from olist_fast.io import OlistDataError
from olist_fast.protocol import MIN_BUYERS, Protocol, Snapshots, require, shortage

A = datetime(2018, 6, 1)


def test_dates_and_roles() -> None:
    p = Protocol(as_of=A, horizon_days=90, folds=3, train_snapshots=2)
    assert p.date(0) == A and p.date(1) == datetime(2018, 3, 3)
    assert p.train_indices(0) == [1, 2] and p.train_indices(1) == [2, 3]
    assert p.fold_tests() == [2, 3, 4]  # the backtest's test snapshot 1 is in no fold
    assert max(p.train_indices(p.fold_tests()[-1])) == p.depth == 6
    assert p.drift_indices(0) == [3, 4, 5] and p.drift_indices(1) == [4, 5, 6]
    # fewer folds never shorten the drift windows: the backtest and the final model see
    # the same number of them
    assert Protocol(as_of=A, folds=0).depth == 6
    with pytest.raises(ValueError, match="train_snapshots"):
        Protocol(as_of=A, train_snapshots=0)


@pytest.mark.parametrize(
    ("buyers", "rows", "why"),
    [
        (0, 1000, "only 0 of 1,000 customers bought again"),
        (MIN_BUYERS - 1, 1000, f"need at least {MIN_BUYERS})"),
        (1000, 1000, "need at least 10 who did not"),  # only buyers
        (995, 1000, "who did not"),
        (MIN_BUYERS, 1000, None),
    ],
)
def test_shortage_names_what_is_missing(buyers: int, rows: int, why: str | None) -> None:
    y = np.zeros(rows, dtype=np.int64)
    y[:buyers] = 1
    got = shortage(y)
    assert got is None if why is None else why in (got or "")


def test_require_is_one_line_naming_the_snapshot_and_what_to_change() -> None:
    p = Protocol(as_of=A)
    frames = [pl.DataFrame({"bought_again": np.zeros(50, dtype=np.int64)})] * (p.depth + 1)
    with pytest.raises(OlistDataError) as err:
        require(Snapshots(p, frames), "backtest test", [1])
    msg = str(err.value)
    assert "\n" not in msg and "2018-03-03" in msg and "--as-of" in msg
