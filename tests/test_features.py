from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from olist_fast.errors import OlistUsageError
from olist_fast.features import (
    FEATURES,
    LABELS,
    build_customer_grain,
    build_order_grain,
    build_snapshot,
    build_snapshots,
)
from olist_fast.features.keys import (
    ID_COLUMNS,
    _four_digits,
    compact_id,
    compact_ids,
    is_not_hex_error,
    text_id,
)
from olist_fast.features.labels import add_labels, build_labels
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


@pytest.mark.parametrize("hex_ids", [False, True])
def test_snapshots_share_one_collect_and_match_single_builds(hex_ids: bool) -> None:
    """Several dates share the joined order facts (cached); one date joins after its
    date filter: the same tables either way, with text or integer keys."""
    tables = as_hex_ids(case.tables())[0] if hex_ids else case.tables()
    dates = [datetime(2018, 2, 1), case.AS_OF, datetime(2018, 4, 1)]
    many = build_snapshots(tables, dates, horizon_days=30)
    for a, got in zip(dates, many, strict=True):
        want = build_snapshot(tables, as_of=a, horizon_days=30).collect()
        (alone,) = build_snapshots(tables, [a], horizon_days=30)
        assert got.equals(want) and got.equals(alone)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="horizon_days"):
        build_snapshot(case.tables(), as_of=case.AS_OF, horizon_days=0)
    with pytest.raises(OlistUsageError, match="as_of must be a date, a datetime or an ISO"):
        build_snapshot(case.tables(), as_of=20180301, horizon_days=90)  # type: ignore[arg-type]
    with pytest.raises(OlistUsageError, match="expected an ISO date"):
        build_snapshot(case.tables(), as_of="01/03/2018", horizon_days=90)


def test_as_of_may_be_an_iso_string_or_carry_a_time_zone() -> None:
    want = build_snapshot(case.tables(), as_of=datetime(2018, 3, 1), horizon_days=90).collect()
    for same in ("2018-03-01", "2018-03-01T00:00:00", datetime(2018, 3, 1, tzinfo=UTC)):
        got = build_snapshot(case.tables(), as_of=same, horizon_days=90).collect()
        assert_frame_equal(got, want)


def test_as_of_may_be_a_date() -> None:
    at_midnight = datetime.combine(case.AS_OF.date(), datetime.min.time())
    a = build_snapshots(case.tables(), [at_midnight.date()])[0]
    b = build_snapshots(case.tables(), [at_midnight])[0]
    assert_frame_equal(a, b)


def as_hex_ids(
    tables: dict[str, pl.LazyFrame],
) -> tuple[dict[str, pl.LazyFrame], Callable[[pl.DataFrame], pl.DataFrame]]:
    """The case's tables with every id of ID_COLUMNS replaced by 32 lowercase hex digits
    whose order is the text order of the original ids (so every tie breaks alike), and a
    function that turns a snapshot's customer_unique_id back into the original ids."""
    values = sorted(
        {
            v
            for name, columns in ID_COLUMNS.items()
            for c in columns
            for v in tables[name].select(c).collect().to_series().drop_nulls()
        }
    )
    # spread over all 128 bits, so both halves and every 16-bit piece of text_id vary
    step = (1 << 128) // (len(values) + 1) - 1
    code = {v: f"{(i + 1) * step:032x}" for i, v in enumerate(values)}
    back = {hexed: v for v, hexed in code.items()}
    hexed = {
        name: lf.with_columns(pl.col(c).replace(code) for c in ID_COLUMNS.get(name, ()))
        for name, lf in tables.items()
    }
    return hexed, lambda snap: snap.with_columns(pl.col("customer_unique_id").replace(back))


def test_golden_case_with_compact_keys(golden: pl.DataFrame) -> None:
    tables, back = as_hex_ids(case.tables())
    keyed = compact_ids(tables)
    assert keyed["order_items"].collect_schema()["seller_id"] == pl.UInt128
    assert keyed["customers"].collect_schema()["customer_unique_id"] == pl.UInt128
    (got,) = build_snapshots(tables, [case.AS_OF], horizon_days=90, compact=True)
    assert got.schema["customer_unique_id"] == pl.String  # text again on the way out
    assert back(got).equals(golden)


def test_text_ids_fall_back_to_text_keys(golden: pl.DataFrame) -> None:
    (auto,) = build_snapshots(case.tables(), [case.AS_OF], horizon_days=90)
    assert auto.equals(golden)
    with pytest.raises(ValueError, match="32 lowercase hex digits"):
        build_snapshots(case.tables(), [case.AS_OF], horizon_days=90, compact=True)


@pytest.mark.parametrize("engine", ["in-memory", "streaming"])
def test_integer_ids_turn_back_into_the_same_text(engine: str) -> None:
    """text_id inverts compact_id exactly: leading zeros, both 64-bit halves at their
    extremes, nulls, and an empty frame; and the integers sort as the text does."""
    ids = [
        "f" * 32,
        "0" * 32,
        "0123456789abcdef" * 2,
        None,
        "0" * 15 + "1" + "0" * 16,
        "0" * 16 + "f" * 16,
        "f" * 16 + "0" * 16,
        "8" + "0" * 31,
    ]
    frame = pl.LazyFrame({"id": ids}).select(compact_id("id"))
    got = frame.select(text_id("id")).collect(engine=engine)["id"]  # type: ignore[arg-type]
    assert got.dtype == pl.String and got.to_list() == ids
    ordered = frame.sort("id", nulls_last=True).select(text_id("id"))
    got = ordered.collect(engine=engine)["id"]  # type: ignore[arg-type]
    assert got.to_list() == [*sorted(i for i in ids if i is not None), None]
    empty = pl.LazyFrame({"id": []}, schema={"id": pl.UInt128}).select(text_id("id"))
    assert empty.collect(engine=engine).schema == pl.Schema({"id": pl.String})  # type: ignore[arg-type]
    assert _four_digits().to_list() == [f"{i:04x}" for i in range(1 << 16)]  # every piece


def test_stages_composed_by_hand_on_integer_ids_join_as_they_come(
    golden: pl.DataFrame,
) -> None:
    """After compact_ids, the customer grain and the labels both return text ids, so a
    job that composes the stages itself gets the snapshot's table."""
    tables, back = as_hex_ids(case.tables())
    keyed = compact_ids(tables)
    grain = build_order_grain(keyed, as_of=case.AS_OF)
    assert grain.collect_schema()["customer_unique_id"] == pl.UInt128
    labels = build_labels(keyed, as_of=case.AS_OF, horizon_days=90)
    assert labels.collect_schema()["customer_unique_id"] == pl.String
    table = add_labels(build_customer_grain(grain, as_of=case.AS_OF), labels).collect()
    assert back(table).equals(golden)


def test_null_customer_unique_id_keeps_its_row_with_integer_keys() -> None:
    """A customer row without customer_unique_id: its orders group under a null id, the
    same with integer keys as with text (nulls sort first in both)."""
    tables, _ = as_hex_ids(case.tables())
    first = tables["customers"].select("customer_id").head(1).collect().item()
    tables["customers"] = tables["customers"].with_columns(
        pl.when(pl.col("customer_id") == first).then(None).otherwise(pl.col("customer_unique_id"))
        .alias("customer_unique_id")
    )  # fmt: skip
    (text,) = build_snapshots(tables, [case.AS_OF], horizon_days=90, compact=False)
    (wide,) = build_snapshots(tables, [case.AS_OF], horizon_days=90, compact=True)
    assert text["customer_unique_id"].null_count() == 1
    assert wide.equals(text)


def test_compact_names_every_id_it_needs() -> None:
    """compact=True on data whose only non-hex id is customer_unique_id: refused with a
    message that names it; compact=None falls back to text keys with the same result."""
    tables, _ = as_hex_ids(case.tables())
    tables["customers"] = tables["customers"].with_columns(
        pl.col("customer_unique_id").str.to_uppercase()
    )
    with pytest.raises(OlistUsageError, match="customer_unique_id"):
        build_snapshots(tables, [case.AS_OF], horizon_days=90, compact=True)
    (auto,) = build_snapshots(tables, [case.AS_OF], horizon_days=90)
    (text,) = build_snapshots(tables, [case.AS_OF], horizon_days=90, compact=False)
    assert auto.equals(text)


def test_customer_grain_of_integer_ids_outputs_text_ids(golden: pl.DataFrame) -> None:
    """The public customer grain turns an integer customer_unique_id back into text
    unless asked not to (the snapshot plan joins its labels on the integers first)."""
    tables, back = as_hex_ids(case.tables())
    grain = build_order_grain(compact_ids(tables), as_of=case.AS_OF)
    text = build_customer_grain(grain, as_of=case.AS_OF).collect()
    wide = build_customer_grain(grain, as_of=case.AS_OF, text_key=False).collect()
    assert wide.schema["customer_unique_id"] == pl.UInt128
    assert text.schema["customer_unique_id"] == pl.String
    assert back(text).equals(golden.select(text.columns))


@pytest.mark.parametrize(
    "bad",
    [
        "AB" * 16,
        "aB" * 16,
        "+" + "a" * 31,
        "ab" * 15 + "a",
        "ab" * 17,
        "ab" * 15 + "g1",
        "ab" * 15 + "-1",
        " " + "a" * 31,
        "é" + "a" * 30,
        "o1",
    ],
)
def test_only_32_lowercase_hex_digits_become_keys(bad: str) -> None:
    """Upper case, another length or a non-hex digit never becomes an integer key (two
    ids that differ only in case would otherwise be merged)."""
    good = "0123456789abcdef" * 2
    frame = pl.LazyFrame({"id": [good, None]})
    assert frame.select(compact_id("id")).collect()["id"].to_list() == [int(good, 16), None]
    with pytest.raises(pl.exceptions.ComputeError) as info:
        pl.LazyFrame({"id": [good, bad]}).select(compact_id("id")).collect()
    assert is_not_hex_error(info.value)


def test_ids_differing_only_in_case_stay_apart(golden: pl.DataFrame) -> None:
    """An item whose order id is the upper-case twin of a real order's id belongs to no
    order (text ids are compared exactly); merging the two would change the features."""
    tables, _ = as_hex_ids(case.tables())
    first = tables["order_items"].select("order_id").head(1).collect().item()
    tables["order_items"] = tables["order_items"].with_columns(
        pl.col("order_id").replace({first: first.upper()})
    )
    (got,) = build_snapshots(tables, [case.AS_OF], horizon_days=90)
    (want,) = build_snapshots(tables, [case.AS_OF], horizon_days=90, compact=False)
    assert got.equals(want)
    assert not got.equals(golden)


@pytest.mark.parametrize("compact", [False, True])
def test_untyped_payment_rows_count_for_no_type(compact: bool) -> None:
    """U3 pays ord06 by boleto (30.00) and ord07 by debit card (33.00). An extra ord06 row
    with no type (10.00) is money paid but no type's: debit card stays preferred (an
    order's single type must not absorb its untyped rows)."""
    tables = case.tables()
    extra = case.frame(
        "order_payments",
        [{"order_id": "ord06", "payment_sequential": 2, "payment_installments": 1,
          "payment_value": 10.0}],
    )  # fmt: skip
    tables["order_payments"] = pl.concat([tables["order_payments"], extra])
    back: Callable[[pl.DataFrame], pl.DataFrame] = lambda snap: snap  # noqa: E731
    if compact:
        tables, back = as_hex_ids(tables)
    (snap,) = build_snapshots(tables, [case.AS_OF], horizon_days=90, compact=compact)
    snap = back(snap)
    u3 = snap.filter(pl.col("customer_unique_id") == "U3").row(0, named=True)
    assert u3["preferred_payment_type"] == "debit_card"
    assert u3["monetary"] == pytest.approx(73.0)
