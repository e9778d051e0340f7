"""A generic transaction log as input: one table of orders, or of order lines.

Many shops have no Olist-shaped export, only a log with a customer, a time and an amount
per row (an order, or one line of an order). :func:`from_transactions` maps such a log
onto the tables the feature plan reads (orders, customers, one payment per order); every
feature the log cannot feed (items, reviews, products, deliveries, payment types,
states) is empty for every customer, as for any shop without those tables.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from olist_fast.errors import OlistDataError
from olist_fast.schema import (
    CUSTOMERS,
    ORDER_ITEMS,
    ORDER_PAYMENTS,
    ORDER_REVIEWS,
    ORDERS,
    PLAN_TABLES,
    PRODUCTS,
    TABLES,
    empty_table,
    features_lost,
)
from olist_fast.timestamps import detect_shape

if TYPE_CHECKING:
    from olist_fast.validation import ValidationReport

__all__ = ["features_off", "from_transactions", "olist_folder", "transactions_report"]

WHERE = "transactions"
"""How errors name a log given as a frame (a file is named by its path)."""
SHAPE_SAMPLE = 200
"""Timestamp texts read to find the column's shape (:func:`olist_fast.timestamps.detect_shape`)."""
TIME_TEXT = "%Y-%m-%dT%H:%M:%S%.6f"
"""The purchase time in a derived order id: fixed width, so the id is unambiguous."""

# the roles of the log's columns (internal names while mapping)
CUSTOMER, TIME, AMOUNT, ORDER, STATUS, ROW = "customer", "time", "amount", "order", "status", "row"


def from_transactions(
    frame: Any,
    *,
    customer_id: str,
    timestamp: str,
    amount: str,
    order_id: str | None = None,
    status: str | None = None,
) -> dict[str, pl.LazyFrame]:
    """A transaction log as the tables the feature plan reads.

    ``frame`` is the log: a Polars DataFrame or LazyFrame, a pyarrow Table, a pandas
    DataFrame, or the path of a ``.csv`` (every field read as text, then typed here) or
    ``.parquet`` file. Each row is one order or one line of an order; the arguments name
    its columns. They follow pymc-marketing's ``rfm_summary(transactions,
    customer_id_col, datetime_col, monetary_value_col, observation_period_end=...)`` and
    lifetimes' ``summary_data_from_transaction_data`` (same arguments): ``customer_id``
    is their ``customer_id_col``, ``timestamp`` their ``datetime_col``, ``amount`` their
    ``monetary_value_col``, and their ``observation_period_end`` is this library's
    ``as_of``, given to the job rather than here. Unlike them, transactions are not
    merged by period (``freq``): the orders are the log's ``order_id`` or else its
    distinct (customer, time) pairs, times kept to the microsecond; and a status can mark
    an order that is not a purchase (``canceled``, ``refunded``...: see
    :data:`olist_fast.schema.NOT_PURCHASE_STATUSES`).

    * ``customer_id``: the customer (text or integers, kept as they are: nothing is
      stripped; integers become their decimal text). It is both Olist's ``customer_id``
      and its ``customer_unique_id``, the person the scores are about.
    * ``timestamp``: the purchase time: text in ISO 8601 (``2018-01-11 14:01:40``,
      ``2018-01-11T14:01:40``, a date alone, with or without an offset such as ``Z`` or
      ``+02:00``: converted to UTC), its shape read from the first values
      (:mod:`olist_fast.timestamps`); or a datetime column (one with a time zone is
      taken in UTC) or a date column (midnight). An order's time is its earliest line's.
    * ``amount``: what the line was worth, a number (or text that parses as one);
      refunds may be negative and are kept. An order's amount is the sum of its lines.
    * ``order_id``: the order a line belongs to; None makes every distinct (customer,
      time) pair one order, with the id ``<customer>@<time as YYYY-MM-DDTHH:MM:SS.ffffff>``
      (derived from the values, never from the row order).
    * ``status``: the order's status, the same on every line of an order; None leaves it
      null (every order counts as a purchase).

    Returns the typed LazyFrames ``orders``, ``customers`` and ``order_payments``, each
    with exactly the columns and types of :data:`olist_fast.schema.TABLES` (one payment
    per order, ``payment_sequential`` 1; every column the log has no value for null),
    ready for ``tables=`` of :func:`olist_fast.run`, :func:`olist_fast.train`,
    :func:`olist_fast.score` and :func:`olist_fast.build_snapshots` (which read the
    other tables as empty). Raises :class:`OlistDataError` with one line naming the
    column and the row (1-based among the data rows) of the first value that cannot be
    used: an empty customer, time or amount, a time that does not fit the column's
    shape, an amount that is not a finite number, an order with two statuses or two
    customers; or a missing column or file.
    """
    roles = {CUSTOMER: customer_id, TIME: timestamp, AMOUNT: amount}
    if order_id is not None:
        roles[ORDER] = order_id
    if status is not None:
        roles[STATUS] = status
    where, raw = _read(frame, roles)
    if raw.height == 0:
        raise OlistDataError(f"{where}: no rows (expected at least one transaction)")
    lines = pl.DataFrame(
        {
            CUSTOMER: _ids(raw[CUSTOMER], customer_id, where),
            TIME: _times(raw[TIME], timestamp, where),
            AMOUNT: _amounts(raw[AMOUNT], amount, where),
        }
    )
    if order_id is not None:
        lines = lines.with_columns(_ids(raw[ORDER], order_id, where).alias(ORDER))
    else:
        derived = pl.col(CUSTOMER) + "@" + pl.col(TIME).dt.to_string(TIME_TEXT)
        lines = lines.with_columns(derived.alias(ORDER))
    lines = lines.with_columns(
        (
            _statuses(raw[STATUS], status, where) if status is not None else pl.lit(None, pl.String)
        ).alias(STATUS)
    ).with_row_index(ROW, offset=1)
    if order_id is not None:
        _one_per_order(lines, CUSTOMER, "customer", customer_id, where)
    if status is not None:
        _one_per_order(lines, STATUS, "status", status, where)
    return _tables(lines)


# -- reading ------------------------------------------------------------------------------
def _read(frame: Any, roles: Mapping[str, str]) -> tuple[str, pl.DataFrame]:
    """The log's columns of ``roles`` (renamed to their roles), collected, and how errors
    name the log."""
    wanted = list(dict.fromkeys(roles.values()))
    if isinstance(frame, str | os.PathLike):
        where = os.fspath(frame)
        lf = _scan_file(Path(where), wanted)
    else:
        where = WHERE
        lf = _lazy(frame, wanted)
    try:
        have = lf.collect_schema().names()
    except pl.exceptions.PolarsError as exc:
        raise OlistDataError(f"{where}: cannot be read ({_first_line(exc)})") from None
    _check_columns(where, roles, have)
    try:
        return where, lf.select(pl.col(c).alias(r) for r, c in roles.items()).collect()
    except pl.exceptions.PolarsError as exc:
        raise OlistDataError(f"{where}: cannot be read ({_first_line(exc)})") from None


def _check_columns(where: str, roles: Mapping[str, str], have: list[str]) -> None:
    present = set(have)
    for column in roles.values():
        if column not in present:
            named = ", ".join(repr(c) for c in dict.fromkeys(roles.values()))
            raise OlistDataError(
                f"{where}: missing column {column!r}; expected the columns {named} "
                f"(the log has {', '.join(repr(c) for c in have[:10])}"
                f"{', ...' if len(have) > 10 else ''})"
            )


def _scan_file(path: Path, wanted: list[str]) -> pl.LazyFrame:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise OlistDataError(f"{path}: unsupported file type (expected .csv or .parquet)")
    if not path.is_file():
        raise OlistDataError(f"{path}: file not found (expected a transaction log)")
    try:
        if suffix == ".parquet":
            return pl.scan_parquet(path)
        if path.stat().st_size == 0:
            raise OlistDataError(f"{path}: file is empty, 0 bytes (expected a header and rows)")
        from olist_fast.io import read_csv_header

        read_csv_header(path)  # one line on a header that is not UTF-8
        return pl.scan_csv(path, infer_schema=False, raise_if_empty=False)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise OlistDataError(f"{path}: cannot be read ({_first_line(exc)})") from None


def _lazy(frame: Any, wanted: list[str]) -> pl.LazyFrame:
    """A frame of any kind taken as a LazyFrame (pandas and pyarrow: only the ``wanted``
    columns that it has are converted)."""
    if isinstance(frame, pl.LazyFrame):
        return frame
    if isinstance(frame, pl.DataFrame):
        return frame.lazy()
    module = type(frame).__module__.split(".")[0]
    try:
        if module == "pyarrow" and hasattr(frame, "column_names"):
            table = frame.select([c for c in wanted if c in set(frame.column_names)])
            out = pl.from_arrow(table)
            assert isinstance(out, pl.DataFrame)
            return out.lazy()
        if module == "pandas" and hasattr(frame, "columns"):
            names = {str(c): c for c in frame.columns}
            sub = frame[[names[c] for c in wanted if c in names]]
            if any(not isinstance(c, str) for c in sub.columns):
                sub = sub.rename(columns=str)
            # pandas' missing values are NaN in float columns: nulls here, as in a CSV
            return pl.from_pandas(sub, nan_to_null=True).lazy()
    except OlistDataError:
        raise
    except Exception as exc:  # pyarrow's conversion errors have no common base
        raise OlistDataError(
            f"{WHERE}: a {type(frame).__name__} that cannot be converted ({_first_line(exc)})"
        ) from None
    raise OlistDataError(
        f"{WHERE}: a {type(frame).__name__}; expected a polars DataFrame or LazyFrame, a "
        "pyarrow Table, a pandas DataFrame or the path of a .csv or .parquet file"
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# -- typing each column -------------------------------------------------------------------
def _text(s: pl.Series, *, strip: bool) -> pl.Series:
    """Text with an empty value as null (stripped first if ``strip``)."""
    c = pl.col(s.name).cast(pl.String)
    if strip:
        c = c.str.strip_chars()
    return s.to_frame().select(pl.when(c.str.len_bytes() > 0).then(c)).to_series()


def _first_row(mask: pl.Series) -> int | None:
    """The 1-based row of the first True of ``mask`` (a null is False), or None."""
    hits = mask.fill_null(False).arg_true()
    return int(hits[0]) + 1 if hits.len() else None


def _raise_at(where: str, column: str, raw: pl.Series, row: int, noun: str, shaped: str) -> None:
    """The one-line error for ``row`` of ``column``: an empty value (expected ``noun``) or
    a value that is not ``shaped``."""
    value = raw[row - 1]
    if value is None or value == "" or (isinstance(value, str) and not value.strip()):
        what = f"empty value; expected {noun}"
    else:
        what = f"{value!r} is not {shaped}"
    raise OlistDataError(f"{where}: column {column!r}, row {row}: {what}")


def _wrong_type(where: str, column: str, dtype: pl.DataType, expected: str) -> OlistDataError:
    return OlistDataError(f"{where}: column {column!r} is {dtype}; expected {expected}")


def _ids(s: pl.Series, column: str, where: str) -> pl.Series:
    """Ids as text: text as it is (an empty text is missing), integers (or whole floats,
    as pandas reads integers with gaps) as their decimal text."""
    expected = "an id (text or an integer)"
    dtype = s.dtype
    if dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum) or dtype == pl.Null:
        out = _text(s, strip=False)
    elif dtype.is_integer():
        out = s.cast(pl.String)
    elif dtype.is_float():
        s = s.fill_nan(None)
        row = _first_row(s != s.floor())
        if row is not None:
            _raise_at(where, column, s, row, expected, expected)
        out = s.cast(pl.Int64).cast(pl.String)
    else:
        raise _wrong_type(where, column, dtype, "ids (text or integers)")
    row = _first_row(out.is_null())
    if row is not None:
        _raise_at(where, column, s, row, expected, expected)
    return out


def _times(s: pl.Series, column: str, where: str) -> pl.Series:
    """Purchase times as naive ``Datetime("us")``, in UTC where the value has an offset or
    a time zone."""
    dtype = s.dtype
    if dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum) or dtype == pl.Null:
        text = _text(s, strip=True)
        shape = detect_shape(text.drop_nulls().head(SHAPE_SAMPLE).to_list())
        out = pl.DataFrame({TIME: text}).select(shape.parse(TIME, strict=False)).to_series()
        expected = f"a timestamp shaped {shape.describe()}, like the column's first values"
    elif isinstance(dtype, pl.Datetime):
        out = s
        if dtype.time_zone is not None:  # an instant: its UTC time, as for an offset
            out = out.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        out = out.cast(pl.Datetime("us"))
        expected = "a timestamp"
    elif dtype == pl.Date:
        out = s.cast(pl.Datetime("us"))
        expected = "a timestamp"
    else:
        raise _wrong_type(
            where, column, dtype, "timestamps (ISO 8601 text, a datetime or a date column)"
        )
    row = _first_row(out.is_null())
    if row is not None:
        _raise_at(where, column, s, row, "a timestamp", expected)
    return out.alias(TIME)


def _amounts(s: pl.Series, column: str, where: str) -> pl.Series:
    """Amounts as Float64: numbers, or text that parses as one; finite, never empty."""
    dtype = s.dtype
    if dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum) or dtype == pl.Null:
        out = _text(s, strip=True).cast(pl.Float64, strict=False)
    elif dtype.is_numeric():
        out = s.cast(pl.Float64)
    else:
        raise _wrong_type(where, column, dtype, "numbers (or text that parses as a number)")
    row = _first_row(out.is_null() | ~out.is_finite())
    if row is not None:
        _raise_at(where, column, s, row, "a number", "a finite number")
    return out.alias(AMOUNT)


def _statuses(s: pl.Series, column: str, where: str) -> pl.Series:
    """Statuses as text (an empty one is missing: the order counts as a purchase)."""
    dtype = s.dtype
    if dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum) or dtype == pl.Null:
        return _text(s, strip=False)
    if dtype.is_integer():
        return s.cast(pl.String)
    raise _wrong_type(where, column, dtype, "statuses (text)")


def _one_per_order(lines: pl.DataFrame, role: str, what: str, column: str, where: str) -> None:
    """Every line of an order carries the same ``role`` value (a missing one included);
    else a one-line error at the first line that differs from its order's first line."""
    first = pl.col(role).first().over(ORDER)
    clash = (
        lines.with_columns(first.alias("_first"), pl.col(ROW).first().over(ORDER).alias("_row"))
        .filter(pl.col(role).ne_missing(pl.col("_first")))
        .head(1)
    )
    if clash.height:
        r = clash.row(0, named=True)
        raise OlistDataError(
            f"{where}: column {column!r}, row {r[ROW]}: order {r[ORDER]!r} has {what} "
            f"{r[role]!r} here and {r['_first']!r} at row {r['_row']}; expected one {what} "
            "per order"
        )


# -- the tables ---------------------------------------------------------------------------
def _tables(lines: pl.DataFrame) -> dict[str, pl.LazyFrame]:
    """The orders, customers and payments of the typed lines, in an order that does not
    depend on the rows' (orders and payments by purchase time then id, customers by id);
    an order's amount is summed over its lines sorted by amount, so the sum's rounding
    does not depend on the rows' order either."""
    per_order = (
        lines.sort(ORDER, AMOUNT)
        .group_by(ORDER, maintain_order=True)
        .agg(
            pl.col(CUSTOMER).first(),
            pl.col(STATUS).first(),
            pl.col(TIME).min(),
            pl.col(AMOUNT).sum(),
        )
        .sort(TIME, ORDER)
    )

    customers = per_order.select(CUSTOMER).unique().sort(CUSTOMER)
    return {
        ORDERS: _typed(
            ORDERS,
            per_order,
            {
                "order_id": pl.col(ORDER),
                "customer_id": pl.col(CUSTOMER),
                "order_status": pl.col(STATUS),
                "order_purchase_timestamp": pl.col(TIME),
            },
        ),
        CUSTOMERS: _typed(
            CUSTOMERS,
            customers,
            {"customer_id": pl.col(CUSTOMER), "customer_unique_id": pl.col(CUSTOMER)},
        ),
        ORDER_PAYMENTS: _typed(
            ORDER_PAYMENTS,
            per_order,
            {
                "order_id": pl.col(ORDER),
                "payment_sequential": pl.lit(1),
                "payment_value": pl.col(AMOUNT),
            },
        ),
    }


def _typed(name: str, frame: pl.DataFrame, columns: Mapping[str, pl.Expr]) -> pl.LazyFrame:
    """``frame`` as table ``name``: its schema's columns, in order, from ``columns`` (every
    other one null)."""
    exprs = [
        columns[c].cast(t).alias(c) if c in columns else pl.lit(None, dtype=t).alias(c)
        for c, t in TABLES[name].schema.items()
    ]
    return frame.lazy().select(exprs)


def features_off() -> tuple[str, ...]:
    """The features a transaction log cannot feed (empty for every customer): those of
    the items, reviews and products, the delivery dates, the payment types and
    instalments, and the customer's state."""
    lost: list[str] = []
    for table, column in (
        (ORDER_ITEMS, None),
        (ORDER_REVIEWS, None),
        (PRODUCTS, None),
        (ORDERS, "order_delivered_customer_date"),
        (ORDERS, "order_estimated_delivery_date"),
        (ORDER_PAYMENTS, "payment_type"),
        (ORDER_PAYMENTS, "payment_installments"),
        (CUSTOMERS, "customer_state"),
    ):
        lost += [f for f in features_lost(table, column) if f not in lost]
    return tuple(lost)


def transactions_report(tables: Mapping[str, pl.LazyFrame], where: str) -> ValidationReport:
    """What ``validate`` reports for a folder, for the tables of :func:`from_transactions`
    (which has already checked every value): rows per table, the purchase range, orders
    per month and the data-health verdict, and one warning naming the features off."""
    from olist_fast.validation import ValidationReport, data_health, monthly_orders

    report = ValidationReport(data_dir=Path(where))
    report.warnings.append(
        f"{where}: a transaction log has no items, reviews, products, delivery dates, payment "
        f"types or states: features off, empty for every customer: {', '.join(features_off())}"
    )
    names = (ORDERS, CUSTOMERS, ORDER_PAYMENTS)
    counts = pl.collect_all([tables[n].select(pl.len()) for n in names])
    report.rows = {n: int(c.item()) for n, c in zip(names, counts, strict=True)}
    orders = tables[ORDERS]
    ts = orders.select(
        pl.col("order_purchase_timestamp").min().alias("lo"),
        pl.col("order_purchase_timestamp").max().alias("hi"),
    ).collect()
    report.purchase_range = (ts["lo"][0], ts["hi"][0])
    report.monthly = monthly_orders(orders).collect()
    report.health = data_health(orders)
    return report


@contextmanager
def olist_folder(tables: Mapping[str, pl.LazyFrame]) -> Iterator[Path]:
    """A temporary folder holding ``tables`` as typed Parquet files with the Olist stems
    (``olist_orders_dataset.parquet``...), every other table of the feature plan as an
    empty typed file: for readers that take a folder (the Spark engine). Removed on exit."""
    folder = Path(tempfile.mkdtemp(prefix="olist-fast-transactions-"))
    try:
        for name in PLAN_TABLES:
            lf = tables[name] if name in tables else empty_table(name)
            lf.sink_parquet(folder / f"{TABLES[name].stem}.parquet")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
