"""The Olist tables read by Spark, typed and checked as the single-machine reader does.

Values are parsed by Spark expressions: a bad value fails the job that reads it, with a
message prefixed by :data:`USER_ERROR` that :func:`spark_errors` finds again in Spark's
exception text.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from olist_fast.io import (
    Coverage,
    Format,
    OlistDataError,
    check_columns,
    is_url,
    table_path,
)
from olist_fast.schema import (
    ORDER_ITEMS,
    ORDER_PAYMENTS,
    PLAN_TABLES,
    REQUIRED_TABLES,
    TABLE_NAMES,
    TABLES,
    TIMESTAMP_FORMAT,
    TableSpec,
)
from olist_fast.spark._session import (
    USER_ERROR,
    pandas3_warning_filtered,
    require_pyspark,
    spark_errors,
    spark_reason,
)
from olist_fast.spark._types import spark_type

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"
log = logging.getLogger("olist_fast")


def _raise(message: Column) -> Column:
    from pyspark.sql import functions as F

    return F.raise_error(F.concat(F.lit(USER_ERROR), message))


def _parse_timestamp(column: str, where: str) -> Column:
    """Text in the one Olist format (``YYYY-MM-DD HH:MM:SS``) as ``timestamp_ntz``, built
    from its fields (no time zone is ever involved: a plain TIMESTAMP would be read in
    the session's zone and shift the hours that zone's daylight saving skips). Text that
    is not such a time fails the job with the single-machine checker's message."""
    from pyspark.sql import functions as F

    raw = F.col(column)
    fields = [
        F.substring(raw, start, length).cast("int")
        for start, length in ((1, 4), (6, 2), (9, 2), (12, 2), (15, 2), (18, 2))
    ]
    parsed = F.when(raw.rlike(TIMESTAMP_PATTERN), F.try_make_timestamp_ntz(*fields))
    expected = f"a timestamp like 2017-10-02 10:56:33 ({TIMESTAMP_FORMAT})"
    bad = F.concat(F.lit(f"{where}: column {column!r}: '"), raw, F.lit(f"' is not {expected}"))
    return (
        F.when(raw.isNull(), F.lit(None).cast("timestamp_ntz"))
        .when(parsed.isNull(), _raise(bad).cast("timestamp_ntz"))
        .otherwise(parsed)
    )


def _cast_text(column: str, dtype: Any, where: str) -> Column:
    """Text as an integer or a number (strict: text that is neither fails the job)."""
    from pyspark.sql import functions as F

    raw = F.col(column)
    target = spark_type(dtype)
    parsed = raw.try_cast(target)
    expected = "an integer" if dtype == pl.Int64 else "a number"
    bad = F.concat(F.lit(f"{where}: column {column!r}: '"), raw, F.lit(f"' is not {expected}"))
    return F.when(raw.isNull() | parsed.isNotNull(), parsed).otherwise(_raise(bad).cast(target))


def _typed(df: DataFrame, spec: TableSpec, where: str, absent: Sequence[str] = ()) -> DataFrame:
    """``df`` with exactly the columns of ``spec``, in order, with its types (``absent``
    ones all null); timestamps as ``timestamp_ntz``."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, TimestampNTZType, TimestampType

    have = {f.name: f.dataType for f in df.schema.fields}
    cols = []
    for name, dtype in spec.schema.items():
        if name in absent:
            cols.append(F.lit(None).cast(spark_type(dtype)).alias(name))
            continue
        kind = have[name]
        if dtype == pl.Datetime("us"):
            if isinstance(kind, TimestampNTZType):
                c = F.col(name)
            elif isinstance(kind, TimestampType):
                # an instant (Parquet adjusted to UTC): its UTC wall time, as polars' cast
                c = F.convert_timezone(
                    F.current_timezone(), F.lit("UTC"), F.col(name).cast("timestamp_ntz")
                )
            elif isinstance(kind, StringType):
                c = _parse_timestamp(name, where)
            else:
                c = F.col(name).cast("timestamp_ntz")
        elif dtype != pl.String and isinstance(kind, StringType):
            c = _cast_text(name, dtype, where)
        else:
            c = F.col(name).cast(spark_type(dtype))
        cols.append(c.alias(name))
    return df.select(cols)


def _read_one(spark: SparkSession, location: str, fmt: str) -> DataFrame:
    reader = spark.read
    if fmt == "parquet":
        return reader.parquet(location)
    # multiLine: review comments hold newlines inside quotes; a doubled quote is a quote
    # (RFC 4180, as polars reads it); FAILFAST: a malformed record is an error, not a
    # silently nulled row; every field text (an empty one null, "NA" kept as text)
    return reader.csv(
        location,
        header=True,
        inferSchema=False,
        multiLine=True,
        escape='"',
        mode="FAILFAST",
        encoding="UTF-8",
    )


def _locate(spark: SparkSession, base: str, spec: TableSpec, fmt: Format) -> tuple[str, DataFrame]:
    """The file of ``spec`` under ``base`` (CSV first, then Parquet, under ``auto``), read.
    Local folders are checked as the single-machine reader checks them (same messages);
    a URL is tried through Spark, and Spark's reason is kept when both fail."""
    if not is_url(base):
        local = Path(base.removeprefix("file://"))
        path = table_path(local, spec, fmt)
        kind = "parquet" if path.suffix == ".parquet" else "csv"
        with spark_errors(str(path)):
            return str(path), _read_one(spark, str(path.resolve()), kind)
    kinds = {"csv": ["csv"], "parquet": ["parquet"], "auto": ["csv", "parquet"]}[fmt]
    reasons = []
    for kind in kinds:
        location = f"{base.rstrip('/')}/{spec.stem}.{kind}"
        try:
            with pandas3_warning_filtered():
                return location, _read_one(spark, location, kind)
        except Exception as exc:
            if not type(exc).__module__.startswith(("pyspark", "py4j")):
                raise
            reasons.append(f"{location}: {spark_reason(exc)}")
    raise OlistDataError("; ".join(reasons))


def read_tables(
    spark: SparkSession,
    path: str | os.PathLike[str],
    *,
    tables: Sequence[str] | None = None,
    fmt: Format = "auto",
) -> dict[str, DataFrame]:
    """The Olist tables under ``path`` (a local folder or a URL Spark can read:
    ``s3a://``, ``abfss://``, ``hdfs://``, ...) as Spark DataFrames typed like
    :data:`olist_fast.schema.TABLES`, timestamps as ``timestamp_ntz``.

    As :func:`olist_fast.io.scan_olist`: ``<stem>.csv`` or ``<stem>.parquet`` (CSV first),
    only an empty field is null, ids stay text, timestamps are parsed with the one
    explicit format. A missing file or column raises at once (the same one-line messages
    for a local folder); a bad value fails the job that reads it, with the file, the
    column and the value (no row number: Spark's reader does not count lines).
    """
    require_pyspark()
    base = os.fspath(path)
    if not is_url(base) and not Path(base.removeprefix("file://")).is_dir():
        raise OlistDataError(f"{base}: not a directory (expected the folder of Olist files)")
    names = TABLE_NAMES if tables is None else tuple(tables)
    out = {}
    coverage = Coverage()
    first = base
    for name in names:
        spec = TABLES[name]
        try:
            where, df = _locate(spark, base, spec, fmt)
        except OlistDataError:
            if name in REQUIRED_TABLES or name not in PLAN_TABLES:
                raise
            coverage.tables[name] = "no file"
            continue
        columns = [c.lstrip("\ufeff") for c in df.columns]  # a UTF-8 BOM before the header
        df = df.toDF(*columns)
        # check_columns only formats its path into the message: a URL is kept as written
        absent = check_columns(where, spec, columns)  # type: ignore[arg-type]
        if absent:
            coverage.columns[name] = absent
        if name in PLAN_TABLES and name not in REQUIRED_TABLES:
            with spark_errors(where):
                if not df.limit(1).count():
                    coverage.tables[name] = "header only"
        out[name] = _typed(df, spec, where, absent)
        first = where if first == base else first
    if any(n in PLAN_TABLES for n in names):
        out = _complete(spark, out, coverage, first)
    return out


def _empty_table(spark: SparkSession, name: str) -> DataFrame:
    ddl = ", ".join(f"`{c}` {spark_type(t)}" for c, t in TABLES[name].schema.items())
    return spark.createDataFrame([], ddl)


def _complete(
    spark: SparkSession, tables: dict[str, DataFrame], coverage: Coverage, where: str
) -> dict[str, DataFrame]:
    """The plan's tables as :func:`olist_fast.io.complete_tables` completes them: an absent
    optional table empty, payments derived from the items when there are none (a header-
    only file is an empty table already); the same one warning."""
    from pyspark.sql import functions as F

    for name in PLAN_TABLES:
        if name not in tables:
            tables[name] = _empty_table(spark, name)
            coverage.tables.setdefault(name, "no file")
    if ORDER_PAYMENTS in coverage.tables:
        if ORDER_ITEMS in coverage.tables:
            raise coverage.no_amounts(where)
        value = F.col("price") + F.coalesce(F.col("freight_value"), F.lit(0.0))
        tables[ORDER_PAYMENTS] = (
            tables[ORDER_ITEMS]
            .groupBy("order_id")
            .agg(F.sum(value).alias("payment_value"))
            .select(
                "order_id",
                F.lit(1).cast("bigint").alias("payment_sequential"),
                F.lit(None).cast("string").alias("payment_type"),
                F.lit(None).cast("bigint").alias("payment_installments"),
                "payment_value",
            )
        )
        coverage.amount_from_items = True
    if (message := coverage.message()) is not None:
        log.warning("%s", message)
    return tables
