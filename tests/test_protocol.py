"""The protocol's dates and roles, and the one-line errors for unusable snapshots."""

from __future__ import annotations

import math
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


def test_a_sampled_training_set_keeps_every_buyer_and_a_weighted_share_of_the_rest(
    monkeypatch: pytest.MonkeyPatch, small_tables
) -> None:
    """With sampling on (thresholds lowered to this small shop), the training set holds
    every buyer and about ``rate`` of the non-buyers, weighted 1 / rate; the rows kept do
    not depend on the customers' names, and another seed keeps other rows."""
    import olist_fast.models as M
    from olist_fast.protocol import Protocol, build_protocol_snapshots, training_set

    monkeypatch.setattr(M, "SAMPLE_ABOVE_ROWS", 10)
    monkeypatch.setattr(M, "MAX_NEGATIVES", 300)
    tables = {k: v.lazy() for k, v in small_tables.items()}
    snaps = build_protocol_snapshots(tables, Protocol(as_of=datetime(2018, 6, 1), folds=0))
    ts = training_set(snaps, 0, seed=0)
    y_all = np.concatenate([snaps.labels(j) for j in (1, 2)])
    pos, neg = int(y_all.sum()), int(len(y_all) - y_all.sum())
    rate = ts.imbalance.negative_rate
    assert rate == pytest.approx(min(M.NEG_PER_POS * pos, 300) / neg) and rate < 0.5
    assert int(ts.y.sum()) == pos  # every buyer
    kept_neg = int((ts.y == 0).sum())
    assert abs(kept_neg - rate * neg) < 4 * math.sqrt(rate * neg)  # binomial
    assert np.all(ts.weight[ts.y == 0] == 1 / rate) and np.all(ts.weight[ts.y == 1] == 1)
    assert ts.X.shape[0] == len(ts.y) == len(ts.spend) == len(ts.groups)
    renamed = Snapshots(
        snaps.protocol,
        [f.with_columns(("x" + pl.col("customer_unique_id")).alias("customer_unique_id"))
         for f in snaps.frames],
    )  # fmt: skip
    again = training_set(renamed, 0, seed=0)
    assert np.array_equal(again.X, ts.X, equal_nan=True) and np.array_equal(again.y, ts.y)
    other = training_set(snaps, 0, seed=1)
    assert int(other.y.sum()) == pos and not np.array_equal(other.X, ts.X, equal_nan=True)


def test_a_fold_tests_on_every_buyer_and_a_sample_of_the_rest_above_the_cap(
    monkeypatch: pytest.MonkeyPatch, small_tables
) -> None:
    import olist_fast.selection as S
    from olist_fast.features import build_snapshots
    from olist_fast.protocol import Protocol, Snapshots, labels_of

    (snap,) = build_snapshots({k: v.lazy() for k, v in small_tables.items()}, ["2018-03-01"])

    def one(frame: pl.DataFrame) -> Snapshots:  # the snapshot as fold 2 of a protocol
        return Snapshots(Protocol(as_of=datetime(2018, 8, 29)), [frame.clear(), frame, frame])

    assert S.fold_test_rows(one(snap), 2, seed=0) is snap  # below the cap: every row
    y = labels_of(snap)
    monkeypatch.setattr(S, "FOLD_MAX_NEGATIVES", 200)
    sample = S.fold_test_rows(one(snap), 2, seed=0)
    ys = labels_of(sample)
    neg = int(len(y) - y.sum())
    assert int(ys.sum()) == int(y.sum()) and abs(int(len(ys) - ys.sum()) - 200) < 4 * math.sqrt(200)
    renamed = snap.with_columns(("x" + pl.col("customer_unique_id")).alias("customer_unique_id"))
    again = S.fold_test_rows(one(renamed), 2, seed=0)
    assert again["customer_unique_id"].to_list() == ["x" + c for c in sample["customer_unique_id"]]
    assert neg > 200


def test_the_rows_a_compact_snapshot_keeps_hold_only_their_own_ids(monkeypatch) -> None:
    """A filtered text column still references the whole input's text (string views):
    the kept rows of each bucket must not hold every bucket's ids."""
    import olist_fast.sampling as SA
    from olist_fast.sampling import Compactor

    monkeypatch.setattr(SA, "DRIFT_ROWS", 1_000)

    def held(frame: pl.DataFrame) -> int:  # bytes of the id column's buffers
        ids = frame["customer_unique_id"].to_arrow(compat_level=pl.CompatLevel.newest())
        return sum(b.size for b in ids.buffers() if b is not None)

    n = 60_000
    frame = pl.DataFrame(
        {
            "customer_unique_id": [f"{i:032x}" for i in range(n)],
            "recency_days": np.arange(n),  # distinct rows: distinct hashes
            "bought_again": (np.arange(n) % 500 == 0).astype(np.int64),
        }
    )
    c = Compactor(None, 0, train=False, fold=False)  # keeps the buyers and a drift sample
    c.add(frame)
    kept = c.finish(frame.clear())
    assert 0 < kept.frame.height < n / 20
    assert held(kept.frame) < 2 * held(frame) * kept.frame.height / n


def test_a_compact_snapshots_numbers_are_the_samplers_numbers(small_tables) -> None:
    """The uniforms a compact snapshot keeps are those the training and fold samples
    compute from the rows (sampling_uniforms), so both draw the same rows."""
    from olist_fast.features import build_snapshot
    from olist_fast.sampling import FOLD_SEED_OFFSET, Compactor, sampling_uniforms

    tables = {k: v.lazy() for k, v in small_tables.items()}
    frame = build_snapshot(tables, as_of="2018-03-01").collect()
    c = Compactor(None, 3)
    c.add(frame)
    kept = c.finish(frame.clear())
    assert kept.frame.height == frame.height > 100
    assert np.array_equal(kept.uniforms["train"], sampling_uniforms(frame, 3))
    assert np.array_equal(kept.uniforms["fold"], sampling_uniforms(frame, 3 + FOLD_SEED_OFFSET))
