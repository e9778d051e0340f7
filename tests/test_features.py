from __future__ import annotations

import math
from datetime import datetime

import polars as pl
import pytest

from olist_fast.features import FEATURES, LABELS, build_snapshot, build_snapshots
from tests.golden import contract_case as case

INT_COLUMNS = {"n_orders", "n_purchase_days", "n_items", "n_categories", "n_sellers",
               "n_reviews", "min_review_score", "uses_voucher", "n_delivered", "bought_again"}  # fmt: skip
STR_COLUMNS = {"customer_unique_id", "preferred_payment_type", "customer_state"}


def assert_close(got: list, want: list, column: str) -> None:
    assert len(got) == len(want), column
    for g, w in zip(got, want, strict=True):
        if w is None or g is None:
            assert g == w, (column, got, want)
        elif isinstance(w, float):
            assert math.isclose(g, w, rel_tol=1e-12, abs_tol=1e-12), (column, got, want)
        else:
            assert g == w, (column, got, want)


@pytest.fixture(scope="module")
def golden() -> pl.DataFrame:
    return build_snapshot(case.tables(), as_of=case.AS_OF, horizon_days=90).collect()


def test_golden_columns_and_types(golden: pl.DataFrame) -> None:
    assert golden.columns == ["customer_unique_id", *FEATURES, *LABELS]
    for col, dtype in golden.schema.items():
        if col in INT_COLUMNS:
            assert dtype == pl.Int64, col
        elif col in STR_COLUMNS:
            assert dtype == pl.String, col
        else:
            assert dtype == pl.Float64, col


@pytest.mark.parametrize("column", list(case.EXPECTED))
def test_golden_values(golden: pl.DataFrame, column: str) -> None:
    assert_close(golden[column].to_list(), case.EXPECTED[column], column)


def test_labels_absent_when_the_window_is_not_covered() -> None:
    snap = build_snapshot(case.tables(), as_of=case.AS_OF, horizon_days=91).collect()
    assert snap.columns == ["customer_unique_id", *FEATURES]


def test_snapshots_share_one_collect_and_match_single_builds() -> None:
    dates = [datetime(2018, 2, 1), case.AS_OF, datetime(2018, 4, 1)]
    many = build_snapshots(case.tables(), dates, horizon_days=30)
    for a, got in zip(dates, many, strict=True):
        want = build_snapshot(case.tables(), as_of=a, horizon_days=30).collect()
        assert got.equals(want)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="horizon_days"):
        build_snapshot(case.tables(), as_of=case.AS_OF, horizon_days=0)
    with pytest.raises(TypeError, match="as_of"):
        build_snapshot(case.tables(), as_of="2018-03-01", horizon_days=90)  # type: ignore[arg-type]
