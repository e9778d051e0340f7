"""Checks that a folder of Olist files is usable, and the data-health verdict.

Problems that make the data unusable are *errors* (one line each: file, column,
row or value, what was expected); gaps the pipeline tolerates are *warnings*
with counts. ``data_health`` finds where the healthy period ends: the first
month after the busiest one whose eligible orders fall below 10 % of it.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from olist_fast.io import (
    BOM,
    OlistDataError,
    check_columns,
    is_url,
    parquet_schema,
    read_csv_header,
    table_path,
)
from olist_fast.schema import (
    AMOUNT_TABLES,
    REQUIRED_TABLES,
    TABLES,
    TableSpec,
    features_lost,
    is_eligible,
)
from olist_fast.timestamps import detect_shape

HEALTH_RATIO = 0.10

# (child table, column, parent table, column): gaps are tolerated, so they warn
INTEGRITY = (
    ("orders", "customer_id", "customers", "customer_id"),
    ("order_items", "order_id", "orders", "order_id"),
    ("order_items", "product_id", "products", "product_id"),
    ("order_items", "seller_id", "sellers", "seller_id"),
    ("order_payments", "order_id", "orders", "order_id"),
    ("order_reviews", "order_id", "orders", "order_id"),
)
# duplicated keys that the pipeline tolerates (the real data has them)
SOFT_KEYS = {"order_reviews": ("review_id",), "order_items": ("order_id", "order_item_id")}


@dataclass(frozen=True, kw_only=True)
class DataHealth:
    """Monthly eligible-order volume and where the healthy period ends."""

    busiest_month: str
    busiest_orders: int
    collapse_month: str | None
    healthy_end: datetime
    """Start of the collapse month (exclusive end of the healthy period); the default as_of."""


@dataclass(kw_only=True)
class ValidationReport:
    """What ``validate`` found: errors, warnings, and a summary of the data."""

    data_dir: Path
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    purchase_range: tuple[datetime, datetime] | None = None
    monthly: pl.DataFrame | None = None
    health: DataHealth | None = None
    empty: list[str] = field(default_factory=list)
    """Optional tables whose file has a header and no rows."""

    @property
    def ok(self) -> bool:
        return not self.errors


def monthly_orders(orders: pl.LazyFrame) -> pl.LazyFrame:
    """Orders per purchase month: all statuses and eligible ones, every month in the range."""
    month = pl.col("order_purchase_timestamp").dt.truncate("1mo")
    counts = (
        orders.filter(pl.col("order_purchase_timestamp").is_not_null())
        .group_by(month.alias("month"))
        .agg(
            pl.len().alias("orders"),
            is_eligible().sum().alias("eligible"),
        )
    )
    return every_month(counts)


def every_month(counts: pl.LazyFrame) -> pl.LazyFrame:
    """Monthly counts (``month`` and count columns) with every month between the first
    and the last, a month without a row counting zero, sorted by month."""
    bounds = counts.select(pl.col("month").min().alias("lo"), pl.col("month").max().alias("hi"))
    months = bounds.select(
        pl.datetime_ranges(pl.col("lo"), pl.col("hi"), interval="1mo").alias("month")
    ).explode("month")
    return (
        months.join(counts, on="month", how="left")
        .with_columns(pl.exclude("month").fill_null(0).cast(pl.Int64))
        .sort("month")
    )


def data_health(orders: pl.LazyFrame) -> DataHealth:
    """The healthy period of the orders (:func:`health_of` their monthly counts)."""
    return health_of(
        monthly_orders(orders).collect(),
        lambda: orders.select(pl.col("order_purchase_timestamp").max()).collect().item(),
    )


def health_of(monthly: pl.DataFrame, last_purchase: Callable[[], datetime | None]) -> DataHealth:
    """The healthy-period rule on monthly counts (``month``, ``eligible``; a month without
    orders counts as zero): the period ends at the first month after the busiest whose
    eligible orders fall below ``HEALTH_RATIO`` of the busiest month's; with no such
    month, the day after the last purchase (``last_purchase`` is asked only then)."""
    if monthly.height == 0:
        raise OlistDataError("orders: no order has a purchase timestamp (expected at least one)")
    monthly = every_month(monthly.lazy().select("month", "eligible")).collect()
    peak_idx = int(monthly["eligible"].arg_max() or 0)
    peak = int(monthly["eligible"][peak_idx])
    after = monthly.slice(peak_idx + 1).filter(pl.col("eligible") < HEALTH_RATIO * peak)
    if after.height:
        start: datetime = after["month"][0]
        collapse: str | None = start.strftime("%Y-%m")
    else:
        last = last_purchase()
        if last is None:
            raise OlistDataError(
                "orders: no order has a purchase timestamp (expected at least one)"
            )
        start = datetime(last.year, last.month, last.day) + timedelta(days=1)
        collapse = None
    return DataHealth(
        busiest_month=monthly["month"][peak_idx].strftime("%Y-%m"),
        busiest_orders=peak,
        collapse_month=collapse,
        healthy_end=start,
    )


# -- file-level checks ---------------------------------------------------------------------
def _check_utf8(path: Path) -> str | None:
    """None when the file is valid UTF-8, else the one-line problem with its line number."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line += chunk.count(b"\n", 0, exc.start)
                return (
                    f"{path}: line {line}: invalid UTF-8 byte 0x{chunk[exc.start]:02x} "
                    "(expected UTF-8 text)"
                )
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return f"{path}: line {line}: file ends inside a UTF-8 character (expected UTF-8 text)"
    return None


def _check_last_record(path: Path, n_columns: int, n_rows: int) -> str | None:
    """A last line cut short: the file does not end in a newline and has too few fields."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        fh.seek(max(0, size - (1 << 16)))
        tail = fh.read()
    if tail.endswith(b"\n"):
        return None
    last = tail.rsplit(b"\n", 1)[-1]
    if last.startswith(BOM):
        last = last[len(BOM) :]
    if last.count(b'"') % 2:  # the end of a multi-line field: the CSV parser judges it
        return None
    fields = next(csv.reader(io.StringIO(last.decode("utf-8", errors="replace"))), [])
    if len(fields) < n_columns:
        return (
            f"{path}: row {n_rows}: last line is truncated "
            f"({len(fields)} of {n_columns} fields; expected a complete record)"
        )
    return None


def _locate_bad_record(path: Path, n_columns: int) -> str | None:
    """Find the first record whose field count is off (slow; only after a parse failure)."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, strict=True)
        try:
            next(reader)
            for row_no, record in enumerate(reader, start=1):
                if len(record) != n_columns:
                    return (
                        f"row {row_no} (line {reader.line_num}): {len(record)} fields "
                        f"(expected {n_columns})"
                    )
        except csv.Error as exc:
            return f"line {reader.line_num}: malformed CSV ({exc}; expected {n_columns} fields)"
    return None


def _first_bad(df: pl.DataFrame, column: str, parsed: pl.Expr) -> tuple[int, str] | None:
    bad = (
        df.with_row_index("row", offset=1)
        .filter(pl.col(column).is_not_null() & parsed.is_null())
        .select("row", column)
        .head(1)
    )
    if bad.height == 0:
        return None
    return int(bad["row"][0]), str(bad[column][0])


def _read_strings(path: Path, spec: TableSpec) -> pl.DataFrame:
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    return pl.read_csv(path, infer_schema=False, raise_if_empty=False)


def check_table(path: Path, spec: TableSpec, report: ValidationReport) -> pl.DataFrame | None:
    """Check one file; return it typed when it is usable, else record errors and return None."""
    errors = report.errors
    if path.suffix == ".csv":
        if path.stat().st_size == 0:
            errors.append(f"{path}: file is empty, 0 bytes (expected a header and data rows)")
            return None
        if problem := _check_utf8(path):
            errors.append(problem)
            return None
        columns = read_csv_header(path)
    else:
        try:
            columns = list(parquet_schema(path))
        except OlistDataError as exc:
            errors.append(str(exc))
            return None
    try:
        absent = check_columns(path, spec, columns)
    except OlistDataError as exc:
        errors.append(str(exc))
        return None
    absent_columns(path, spec, absent, report)
    try:
        raw = _read_strings(path, spec)
    except pl.exceptions.PolarsError as exc:
        first = str(exc).strip().splitlines()[0]
        where = _locate_bad_record(path, len(columns)) or f"cannot be parsed as CSV: {first}"
        errors.append(f"{path}: {where}")
        return None
    if raw.height == 0:
        header_only(path, spec, report)
        return None
    if path.suffix == ".csv" and (problem := _check_last_record(path, len(columns), raw.height)):
        errors.append(problem)
        return None
    n_errors = len(errors)
    raw = raw.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in absent)
    typed = []
    for col, dtype in spec.schema.items():
        if col in spec.timestamps and raw.schema[col] == pl.String:
            shape = detect_shape(raw[col].head(200).to_list())
            parsed = shape.parse(col, strict=False)
            expected = f"a timestamp shaped {shape.describe()}, like the column's first values"
        else:
            parsed = pl.col(col).cast(dtype, strict=False)
            expected = (
                "an integer"
                if dtype == pl.Int64
                else "a number"
                if dtype == pl.Float64
                else str(dtype)
            )
        if (bad := _first_bad(raw, col, parsed)) is not None:
            row, value = bad
            errors.append(f"{path}: column {col!r}, row {row}: {value!r} is not {expected}")
        typed.append(parsed.alias(col))
    if len(errors) > n_errors:
        return None
    return check_frame(raw.select(typed), spec, path, absent, report)


def absent_columns(
    where: str | Path, spec: TableSpec, absent: list[str], report: ValidationReport
) -> None:
    """A warning per optional column the table's file lacks, naming the features off."""
    for col in absent:
        lost = features_lost(spec.name, col)
        report.warnings.append(
            f"{where}: no column {col!r}: features off, empty for every customer: {', '.join(lost)}"
            if lost
            else f"{where}: no column {col!r}: read as empty for every row"
        )


def header_only(where: str | Path, spec: TableSpec, report: ValidationReport) -> None:
    """A table with a header and no rows: an error for a required one, else a warning
    naming the features it switches off."""
    if spec.name in REQUIRED_TABLES:
        report.errors.append(f"{where}: no data rows, header only (expected at least one row)")
        return
    report.empty.append(spec.name)
    if lost := features_lost(spec.name):
        report.warnings.append(
            f"{where}: no data rows, header only: features off, empty for every customer: "
            f"{', '.join(lost)}"
        )


def check_frame(
    df: pl.DataFrame,
    spec: TableSpec,
    where: str | Path,
    absent: list[str],
    report: ValidationReport,
    *,
    rows: bool = True,
) -> pl.DataFrame | None:
    """The checks of a typed table (``absent``: its columns the source lacked): optional
    columns empty in every row, required values missing, primary keys repeated. Returns
    ``df`` when it is usable, else records the errors and returns None. ``rows``: name
    the first row of a missing value (a file's rows; not a layout's)."""
    errors, n_errors, path = report.errors, len(report.errors), where
    for col in spec.optional_columns:
        empty = col not in absent and df[col].null_count() == df.height
        if empty and (lost := features_lost(spec.name, col)):
            report.warnings.append(
                f"{path}: column {col!r} is empty in every row: features off, empty for "
                f"every customer: {', '.join(lost)}"
            )
    for col in spec.required:
        nulls = df[col].null_count()
        if nulls:
            row = int(df.with_row_index("row", offset=1).filter(pl.col(col).is_null())["row"][0])
            at = f", row {row}" if rows else ""
            errors.append(
                f"{path}: column {col!r}{at}: empty value ({nulls} rows; expected a value)"
            )
    if spec.primary_key and spec.name not in SOFT_KEYS:
        dup = df.filter(pl.struct(spec.primary_key).is_duplicated())
        if dup.height:
            key = ", ".join(str(dup[c][0]) for c in spec.primary_key)
            # counted as run counts them: rows beyond the first of each key
            extra = dup.height - dup.select(spec.primary_key).n_unique()
            errors.append(
                f"{path}: column {'+'.join(spec.primary_key)!r}: duplicated key {key!r} "
                f"({extra} extra rows repeat a key; expected each key once)"
            )
    if len(errors) > n_errors:
        return None
    return df


def validate_folder(path: str | os.PathLike[str]) -> ValidationReport:
    """Check every Olist file in ``path`` and summarise the data."""
    if is_url(path):
        report = ValidationReport(data_dir=Path(str(path)))
        report.errors.append(
            f"{path}: validate checks local files (copy them here first); the readers of "
            "features, run and score accept the URL"
        )
        return report
    data_dir = Path(path)
    report = ValidationReport(data_dir=data_dir)
    if not data_dir.is_dir():
        report.errors.append(f"{data_dir}: not a directory (expected the folder of Olist files)")
        return report
    frames: dict[str, pl.DataFrame] = {}
    absent: set[str] = set()
    for name, spec in TABLES.items():
        try:
            file = table_path(data_dir, spec)
        except OlistDataError as exc:
            absent.add(name)
            not_present(name, report, str(exc))
            continue
        df = check_table(file, spec, report)
        if df is not None:
            frames[name] = df
            report.rows[name] = df.height
    summarise(frames, absent, report)
    return report


def not_present(name: str, report: ValidationReport, missing: str) -> None:
    """A table without a file: ``missing`` (the error naming the file) for a required one,
    else a warning naming the features it switches off."""
    spec = TABLES[name]
    if name in REQUIRED_TABLES:
        report.errors.append(missing)
    elif lost := features_lost(name):
        report.warnings.append(
            f"{spec.stem}: not present: features off, empty for every customer: {', '.join(lost)}"
        )
    else:
        report.warnings.append(f"{spec.stem}: not present (the feature plan does not read it)")


def summarise(
    frames: Mapping[str, pl.DataFrame], absent: set[str], report: ValidationReport
) -> None:
    """The checks across the usable tables ``frames`` (``absent``: tables without a
    file): an amount per order, repeated soft keys, keys with no parent row, and the
    summary (purchase range, orders per month, the data-health verdict)."""
    data_dir = report.data_dir
    if not report.errors and not any(n in frames for n in AMOUNT_TABLES):
        report.errors.append(
            f"{data_dir}: no order amounts: {TABLES['order_payments'].stem} and "
            f"{TABLES['order_items'].stem} are both absent or header only (expected "
            "payment_value or price per order)"
        )
    elif "order_items" in frames and absent.union(report.empty) & {"order_payments"}:
        report.warnings.append(
            f"{TABLES['order_payments'].stem}: absent or header only: order amounts are "
            "taken from order_items (price + freight_value)"
        )
    for name, cols in SOFT_KEYS.items():
        if name in frames:
            n = frames[name].select(pl.struct(cols).is_duplicated().sum()).item()
            if n:
                report.warnings.append(
                    f"{TABLES[name].stem}: {n} rows share a {'+'.join(cols)} with another row "
                    "(tolerated; the real data has them)"
                )
    for child, ccol, parent, pcol in INTEGRITY:
        if child in frames and parent in frames:
            orphans = frames[child].filter(~pl.col(ccol).is_in(frames[parent][pcol].implode()))
            if orphans.height:
                report.warnings.append(
                    f"{TABLES[child].stem}: {orphans.height} of {frames[child].height} rows have "
                    f"a {ccol} not in {TABLES[parent].stem} (e.g. {orphans[ccol][0]!r}); "
                    "they are left out of joins"
                )
    if "orders" in frames:
        orders = frames["orders"].lazy()
        ts = frames["orders"]["order_purchase_timestamp"]
        if ts.null_count() < ts.len():
            report.purchase_range = (ts.min(), ts.max())  # type: ignore[assignment]
            report.monthly = monthly_orders(orders).collect()
            report.health = data_health(orders)


@contextmanager
def named_read_errors(files: Mapping[str, str | Path]) -> Iterator[None]:
    """Turn a value the readers could not parse (:func:`olist_fast.io.reading`) into the
    one line ``validate`` gives for it, naming the file, the column and the row: the local
    files are checked one by one, only after such a failure."""
    try:
        yield
    except OlistDataError as exc:
        if not isinstance(exc.__cause__, pl.exceptions.PolarsError):
            raise
        for name, where in files.items():
            if is_url(where) or not Path(where).is_file():  # an object, a layout's parts
                continue
            report = ValidationReport(data_dir=Path(where).parent)
            check_table(Path(where), TABLES[name], report)
            if report.errors:
                raise OlistDataError(report.errors[0]) from exc
        raise
