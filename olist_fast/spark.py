"""The feature plan and the scoring on Apache Spark, exact to the single-machine result.

Every feature of the contract is per person (``customer_unique_id``), so the data can be
cut by person and each slice run through the *unchanged* Polars plan
(:func:`olist_fast.features.build_snapshots`) inside a Spark task:

1. bucket = ``xxhash64(customer_unique_id)`` (64 bits) on the customers;
2. orders join the distinct (customer_id, bucket) pairs; items, payments and reviews join
   the distinct (order_id, bucket) pairs; products join the distinct (product_id, bucket)
   pairs of the items (the product table is broadcast);
3. the six tables are stacked into one frame (a tag column, and the union of their
   columns, null where a table lacks one), repartitioned by the bucket, and each task
   rebuilds the per-table Polars frames and collects the plan (``mapInArrow``).

A row reaches a task once per bucket of that task that needs it (a product bought by
several of its customers; an order whose ``customer_id`` is duplicated across people), so
every input row carries an id given before the joins, and the task keeps each id once:
each task sees exactly the rows of the whole data that concern its people, each once.

What must not be decided per slice is decided once, over all the data, on the driver:
whether a snapshot's label window is covered (the latest purchase of *all* orders) and the
default ``as_of`` (the data-health rule over monthly counts). Both come from one small
Spark aggregate (:func:`data_facts`), and the coverage is passed into every task as the
plan's forced ``labels``.

The module imports pyspark only when a function needs it, so ``import olist_fast.spark``
works without the ``[spark]`` extra; every entry point then raises a one-line
:class:`OlistDataError` naming it.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from olist_fast.features import LABELS, build_snapshots
from olist_fast.features.labels import label_window_covered
from olist_fast.features.orders import INPUT_COLUMNS, PURCHASE
from olist_fast.features.snapshot import Integrity
from olist_fast.io import (
    Coverage,
    Format,
    OlistDataError,
    check_columns,
    is_url,
    locate_olist,
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
    is_eligible,
)
from olist_fast.validate import health_of

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from olist_fast.config import RunConfig
    from olist_fast.fitting import FittedModel
    from olist_fast.pipeline import RunResult
    from olist_fast.protocol import Protocol

EXTRA = "pip install 'olist-fast[spark]'"
JAVA_INSTALL = "apt-get install -y openjdk-17-jre-headless"
PANDAS3_WARNING = "PySpark does not yet fully support pandas"
"""The start of the FutureWarning pyspark emits under pandas 3 (filtered, and only it)."""
FEATURE_TABLES: tuple[str, ...] = tuple(INPUT_COLUMNS)
"""The tables the feature plan reads, in the order of their tag in the stacked frame."""
TAG = "_olist_table"
BUCKET = "_olist_bucket"
ROW = "_olist_row"
AS_OF = "as_of"
ORDERS_PER_PARTITION = 100_000
"""Default partition size (orders per task). Measured: one task's work on 99,650 orders
(scale 1, Parquet, one Polars thread) peaks at 1.05-1.11 GB RSS in a fresh Python
process (0.09 GB of it the interpreter and imports) and takes 1.1 CPU-s for one date,
1.9 CPU-s for the seven dates of ``run``; 100k orders keep a worker under the 1.5 GB
budget (docs/spark.md)."""
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"
USER_ERROR = "olist-fast: "
"""Prefix of the messages raised inside Spark expressions (bad values), to find them again
in Spark's exception text."""
SPARK_TYPES = {pl.String: "string", pl.Int64: "bigint", pl.Float64: "double"}
log = logging.getLogger("olist_fast")


def _quiet(_: str) -> None:
    pass


# -- requirements, errors ----------------------------------------------------------------
def require_pyspark() -> None:
    """A one-line error naming the extra when pyspark (or pandas, which its Arrow APIs
    import) is missing."""
    try:
        import pandas  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise OlistDataError(
            f"the Spark engine needs pyspark and pandas ({exc.name or 'pyspark'} is not"
            f" installed): {EXTRA}"
        ) from None


def java_executable() -> str | None:
    """The java a local Spark would start: ``$JAVA_HOME/bin/java``, else ``java`` on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


@contextmanager
def pandas3_warning_filtered() -> Iterator[None]:
    """pyspark warns (FutureWarning) on every Arrow UDF and conversion that pandas 3 is
    not fully supported; the Arrow paths used here do not go through pandas, so exactly
    that warning is ignored (a test run with ``filterwarnings = error`` would fail)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=PANDAS3_WARNING, category=FutureWarning)
        yield


def _first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def spark_reason(exc: BaseException) -> str:
    """Spark's reason for a failure in one line: the message of a Spark error class, the
    Java exception of a Py4J error (not its stack trace), the last line of a Python
    worker's traceback, or the message raised by this module inside a Spark expression."""
    text = str(exc)
    found = re.search(re.escape(USER_ERROR) + r"(.*?)(?:\s+SQLSTATE|\n|$)", text)
    if found:
        return found.group(1).strip()
    if type(exc).__name__ == "PythonException":
        lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        tail = [ln for ln in lines if not ln.startswith(("File ", "^", "~"))]
        return tail[-1] if tail else _first_line(text)
    java = getattr(exc, "java_exception", None)
    if java is not None:
        try:
            return _first_line(str(java.toString()))
        except Exception:  # the JVM may be gone
            pass
    get_message = getattr(exc, "getMessage", None)
    if callable(get_message):
        try:
            return _first_line(str(get_message()))
        except Exception:
            pass
    return _first_line(text) or type(exc).__name__


@contextmanager
def spark_errors(what: str | None = None) -> Iterator[None]:
    """Turn a failed Spark action into a one-line :class:`OlistDataError` (a bad value
    found by the reader's checks, a failed task: its reason; ``what`` names the input)."""
    try:
        yield
    except OlistDataError:
        raise
    except Exception as exc:
        module = type(exc).__module__
        if not module.startswith(("pyspark", "py4j")):
            raise
        reason = spark_reason(exc)
        if USER_ERROR in str(exc):
            raise OlistDataError(reason) from exc
        raise OlistDataError(f"{what}: {reason}" if what else f"Spark: {reason}") from exc


# -- the session ---------------------------------------------------------------------------
def session(
    master: str | None = None,
    *,
    app_name: str = "olist-fast",
    conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """A SparkSession for this package's jobs: ``local[*]`` when ``master`` is None, a
    Spark Connect session for an ``sc://`` URL, else a classic session on ``master``.

    Each task's Polars uses as many threads as the task has cores
    (``POLARS_MAX_THREADS`` = ``spark.task.cpus`` through ``spark.executorEnv``): Spark
    already runs one task per core, and Polars defaulting to every core of the machine in
    every task would oversubscribe it. Arrow is on. A local session runs its Python
    workers with this interpreter (the one that has olist_fast and polars installed).
    """
    require_pyspark()
    from pyspark.sql import SparkSession

    settings = dict(conf or {})
    cores = settings.get("spark.task.cpus", "1")
    if master is not None and master.startswith("sc://"):
        builder = SparkSession.builder.remote(master)
    else:
        if java_executable() is None:
            raise OlistDataError(
                "Spark needs Java (17 or 21), and none was found (no java on PATH, no "
                f"JAVA_HOME): install it, e.g. `{JAVA_INSTALL}`"
            )
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = SparkSession.builder.master(master or "local[*]")
        defaults = {
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.execution.arrow.pyspark.enabled": "true",
            "spark.executorEnv.POLARS_MAX_THREADS": cores,
            "spark.executorEnv.OMP_NUM_THREADS": cores,
            "spark.executorEnv.OPENBLAS_NUM_THREADS": cores,
        }
        for key, value in defaults.items():
            settings.setdefault(key, value)
    builder = builder.appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        with pandas3_warning_filtered():
            spark = builder.getOrCreate()
    except Exception as exc:
        raise OlistDataError(f"Spark did not start: {spark_reason(exc)}") from exc
    if master is None or not master.startswith("sc://"):
        spark.sparkContext.setLogLevel("ERROR")
    return spark


def _num_partitions(df: DataFrame) -> int:
    """The partitions of ``df`` (1 when the session cannot say, e.g. over Connect)."""
    try:
        return int(df.rdd.getNumPartitions())
    except Exception:
        return 1


def _parallelism(spark: SparkSession) -> int:
    """The cores the session can run tasks on (2 when it cannot say, e.g. over Connect)."""
    try:
        return int(spark.sparkContext.defaultParallelism)
    except Exception:
        return int(spark.conf.get("spark.default.parallelism", "2") or 2)


# -- reading -----------------------------------------------------------------------------
def _spark_type(dtype: Any) -> str:
    if dtype == pl.Datetime("us"):
        return "timestamp_ntz"
    return SPARK_TYPES[dtype]


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
    target = _spark_type(dtype)
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
            cols.append(F.lit(None).cast(_spark_type(dtype)).alias(name))
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
            c = F.col(name).cast(_spark_type(dtype))
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
    ddl = ", ".join(f"`{c}` {_spark_type(t)}" for c, t in TABLES[name].schema.items())
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


# -- global facts ------------------------------------------------------------------------
@dataclass(frozen=True)
class DataFacts:
    """What must be decided over all the data, once: the latest purchase (label
    coverage), the number of orders (partition sizing), the end of the healthy period
    (the default ``as_of``)."""

    latest_purchase: datetime | None
    n_orders: int
    healthy_end: datetime


def data_facts(tables: Mapping[str, DataFrame]) -> DataFacts:
    """The global facts from one aggregate of the orders (by month and status; a few
    hundred rows reach the driver). Eligibility is decided by the same expression as
    everywhere else (:func:`olist_fast.schema.is_eligible`), on the collected groups."""
    from pyspark.sql import functions as F

    orders = tables["orders"]
    grouped = orders.groupBy(
        F.date_trunc("month", F.col(PURCHASE)).cast("timestamp_ntz").alias("month"),
        F.col("order_status"),
    ).agg(F.count(F.lit(1)).alias("n"), F.max(PURCHASE).alias("latest"))
    with spark_errors(), pandas3_warning_filtered():
        groups = pl.from_arrow(grouped.toArrow())
    assert isinstance(groups, pl.DataFrame)
    n_orders = int(groups["n"].sum())
    latest = groups["latest"].max()
    known = groups.filter(pl.col("month").is_not_null())
    monthly = (
        known.with_columns(pl.col("month").alias(PURCHASE))
        .group_by("month")
        .agg(pl.col("n").filter(is_eligible()).sum().alias("eligible"))
    )
    if known.height == 0:
        raise OlistDataError("orders: no order has a purchase timestamp (expected at least one)")
    assert latest is None or isinstance(latest, datetime)
    return DataFacts(latest, n_orders, health_of(monthly, lambda: latest).healthy_end)


def integrity(tables: Mapping[str, DataFrame]) -> Integrity:
    """The integrity counts of :class:`olist_fast.features.snapshot.Integrity` over all
    the data, in one Spark job of key-only aggregates (a task only sees its slice):
    repeated keys as rows beyond the first of each key, orders without a customer or a
    purchase time."""
    from pyspark.sql import functions as F

    def repeats(df: DataFrame, *keys: str) -> DataFrame:
        # rows whose keys are all non-null, beyond the first of each key
        known = df.where(" AND ".join(f"{k} IS NOT NULL" for k in keys))
        return known.agg((F.count(F.lit(1)) - F.count_distinct(*keys)).alias("n"))

    orders, customers = tables["orders"], tables["customers"]
    matched = orders.join(customers.select("customer_id").distinct(), "customer_id", "left_semi")
    parts = {
        "duplicate_orders": repeats(orders, "order_id"),
        "duplicate_customers": repeats(customers, "customer_id"),
        "duplicate_payments": repeats(tables["order_payments"], "order_id", "payment_sequential"),
        "duplicate_items": repeats(tables["order_items"], "order_id", "order_item_id"),
        "orphan_orders": orders.agg(F.count(F.lit(1)).alias("n"))
        .crossJoin(matched.agg(F.count(F.lit(1)).alias("m")))
        .select((F.col("n") - F.col("m")).alias("n")),
        "undated_orders": orders.agg(
            F.count(F.lit(1)).alias("a"), F.count(PURCHASE).alias("b")
        ).select((F.col("a") - F.col("b")).alias("n")),
    }
    names = list(parts)
    row = parts[names[0]].withColumnRenamed("n", names[0])
    for name in names[1:]:
        row = row.crossJoin(parts[name].withColumnRenamed("n", name))
    with spark_errors(), pandas3_warning_filtered():
        got = row.collect()[0].asDict()
    return Integrity(**{k: int(v or 0) for k, v in got.items()})


# -- the stacked frame and the task ------------------------------------------------------
SHIPPED: dict[str, tuple[str, ...]] = {
    name: (
        *INPUT_COLUMNS[name],
        *{"order_items": ("order_item_id",), "order_payments": ("payment_sequential",)}.get(
            name, ()
        ),
    )
    for name in FEATURE_TABLES
}
"""The columns a task receives: what the plan reads (:data:`INPUT_COLUMNS`) plus the keys
its integrity counts read. The task fills the other columns of each table with typed
nulls, which the plan never reads (whole rows would also ship review titles, zip codes,
product dimensions and four more timestamps to every worker)."""


def _stack_columns() -> dict[str, Any]:
    """The shipped columns of the six tables (a name shared by several has one type)."""
    out: dict[str, Any] = {}
    for name in FEATURE_TABLES:
        for c in SHIPPED[name]:
            t = TABLES[name].schema[c]
            if out.setdefault(c, t) != t:
                raise AssertionError(f"column {c} has two types")
    return out


def stacked(tables: Mapping[str, DataFrame]) -> DataFrame:
    """The six tables of the plan as one frame, every row tagged with its table and the
    bucket of its person and its own row id (see the module's docstring). Rows that
    cannot reach any customer (orders of an unknown customer, items of an unknown order)
    are left out: the plan drops them in its inner joins."""
    from pyspark.sql import functions as F

    missing = [n for n in FEATURE_TABLES if n not in tables]
    if missing:
        raise OlistDataError(f"tables: missing {', '.join(missing)} (the feature plan reads them)")
    plan = {
        n: _typed_input(tables[n], n).withColumn(ROW, F.monotonically_increasing_id())
        for n in FEATURE_TABLES
    }
    customers = plan["customers"].withColumn(BUCKET, F.xxhash64(F.col("customer_unique_id")))
    by_customer = customers.select("customer_id", BUCKET).distinct()
    orders = plan["orders"].join(by_customer, on="customer_id", how="inner")
    by_order = orders.select("order_id", BUCKET).distinct()
    items = plan["order_items"].join(by_order, on="order_id", how="inner")
    by_product = items.select("product_id", BUCKET).distinct()
    products = by_product.join(F.broadcast(plan["products"]), on="product_id", how="inner")
    sections = {
        "orders": orders,
        "customers": customers,
        "order_items": items,
        "order_payments": plan["order_payments"].join(by_order, on="order_id", how="inner"),
        "order_reviews": plan["order_reviews"].join(by_order, on="order_id", how="inner"),
        "products": products,
    }
    columns = _stack_columns()
    parts = []
    for tag, name in enumerate(FEATURE_TABLES):
        df = sections[name]
        own = set(SHIPPED[name])
        parts.append(
            df.select(
                F.lit(tag).cast("tinyint").alias(TAG),
                F.col(BUCKET),
                F.col(ROW),
                *[
                    F.col(c) if c in own else F.lit(None).cast(_spark_type(t)).alias(c)
                    for c, t in columns.items()
                ],
            )
        )
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


def _typed_input(df: DataFrame, name: str) -> DataFrame:
    """One table with the columns and types of its spec (a no-op for :func:`read_tables`
    output; a plain TIMESTAMP from elsewhere becomes its wall time in the session zone)."""
    from pyspark.sql import functions as F

    spec = TABLES[name]
    check_columns(name, spec, df.columns)
    return df.select([F.col(c).cast(_spark_type(t)).alias(c) for c, t in spec.schema.items()])


def _output_schema(covered: Sequence[bool], *, with_as_of: bool) -> pl.Schema:
    """The plan's output schema, from the plan itself run on empty inputs (types do not
    depend on the data), plus ``as_of`` first for the several-dates frame."""
    empty = {name: pl.LazyFrame(schema=TABLES[name].schema) for name in FEATURE_TABLES}
    (snap,) = build_snapshots(empty, [datetime(2000, 1, 1)], labels=[any(covered)])
    schema = dict(snap.schema)
    return pl.Schema({AS_OF: pl.Datetime("us"), **schema} if with_as_of else schema)


def _spark_schema(schema: pl.Schema) -> StructType:
    """The Spark schema of a Polars schema (built from type objects: parsing DDL would
    need a running JVM)."""
    from pyspark.sql import types as T

    kinds = {
        "string": T.StringType,
        "bigint": T.LongType,
        "double": T.DoubleType,
        "timestamp_ntz": T.TimestampNTZType,
    }
    return T.StructType(
        [T.StructField(c, kinds[_spark_type(t)](), nullable=True) for c, t in schema.items()]
    )


def _arrow_schema(spark_schema: StructType) -> pa.Schema:
    """The exact Arrow schema Spark expects back from a task, derived from the declared
    Spark schema (``mapInArrow`` does not check types: a mismatch crashes in the JVM)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(spark_schema)


def _frames(batches: Iterator[pa.RecordBatch]) -> dict[str, pl.LazyFrame] | None:
    """The per-table Polars frames of one task's slice; None for an empty slice."""
    import pyarrow as pa

    got = list(batches)
    if not got or sum(b.num_rows for b in got) == 0:
        return None
    frame = pl.from_arrow(pa.Table.from_batches(got))
    assert isinstance(frame, pl.DataFrame)
    parts = frame.partition_by(TAG, as_dict=True, maintain_order=False)
    out = {}
    for tag, name in enumerate(FEATURE_TABLES):
        part = parts.get((tag,), frame.clear())
        # a row reaches a task once per bucket that needs it (a product bought by several
        # of the task's customers); each input row must count once, as in the whole data
        once = part.unique(subset=[ROW], keep="any", maintain_order=False)
        out[name] = once.lazy().select(
            pl.col(c) if c in SHIPPED[name] else pl.lit(None, dtype=t).alias(c)
            for c, t in TABLES[name].schema.items()
        )
    return out


def plan_is_path_invariant() -> bool:
    """Whether the plan's divisions by constants give the same bits on a one-row frame as
    on a longer one. Polars divides a column by a constant as a multiplication by the
    reciprocal, but a one-row column by true division (``x / 100.0`` may then differ in
    the last bit), so a person whose row goes through a one-row frame of a slice (the
    only repeat customer of a task at some date) can differ in the last bit from the
    whole-data result. The plan is exact under slicing once it multiplies by the
    reciprocal constants itself (the change in docs/spark.md); until then the Spark
    result equals the single-machine one to within one unit in the last place."""
    from olist_fast.features.orders import days_between

    start, end = datetime(2017, 6, 11, 19, 49, 47), datetime(2017, 9, 1)
    frame = pl.DataFrame({"s": [start, start], "e": [end, end]})
    two = frame.select(days_between("s", "e").alias("d"))["d"][0]
    one = frame.head(1).select(days_between("s", "e").alias("d"))["d"][0]
    return bool(two == one)


def snapshot_task(
    as_ofs: Sequence[datetime], horizon_days: int, covered: Sequence[bool], arrow: pa.Schema
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The function each task runs: the unchanged plan (:func:`build_snapshots`, its
    ``compact_ids`` inside: UInt128 ids never cross into Arrow) with the label coverage
    decided globally, every date's rows tagged with ``as_of``, cast to ``arrow``."""
    dates = list(as_ofs)
    labels = list(covered)
    any_labels = any(labels)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        tables = _frames(batches)
        if tables is None:
            return
        snaps = build_snapshots(tables, dates, horizon_days=horizon_days, labels=labels)
        for when, keep, snap in zip(dates, labels, snaps, strict=True):
            if snap.height == 0:
                continue
            snap = snap.with_columns(pl.lit(when, dtype=pl.Datetime("us")).alias(AS_OF))
            if any_labels and not keep:
                snap = snap.with_columns(
                    pl.lit(None, dtype=pl.Int64).alias("bought_again"),
                    pl.lit(None, dtype=pl.Float64).alias("future_spend"),
                )
            table = snap.select(arrow.names).to_arrow()
            yield from table.cast(arrow).to_batches()

    return run


def coverage(
    facts: DataFacts,
    as_ofs: Sequence[datetime],
    horizon_days: int,
    labels: Sequence[bool | None] | None,
) -> list[bool]:
    """Whether each snapshot carries labels: forced by ``labels`` as in
    :func:`build_snapshots`, else the contract's rule on the latest purchase of *all*
    orders (never a slice's own latest purchase)."""
    wanted = list(labels) if labels is not None else [None] * len(as_ofs)
    if len(wanted) != len(as_ofs):
        raise ValueError(f"labels has {len(wanted)} entries for {len(as_ofs)} dates")
    return [
        w
        if w is not None
        else label_window_covered(facts.latest_purchase, as_of=a, horizon_days=horizon_days)
        for a, w in zip(as_ofs, wanted, strict=True)
    ]


def _check_dates(as_ofs: Sequence[datetime], horizon_days: int) -> None:
    """On the driver, before any job: what every task's plan would refuse."""
    if horizon_days < 1:
        raise ValueError(f"horizon_days must be >= 1, got {horizon_days}")
    for a in as_ofs:
        if not isinstance(a, datetime) or a.tzinfo is not None:
            raise TypeError(f"as_of must be a naive datetime, got {a!r}")


def default_partitions(spark: SparkSession, n_orders: int) -> int:
    """Enough partitions that no task holds more than ``ORDERS_PER_PARTITION`` orders on
    average, and at least one per core."""
    return max(_parallelism(spark), math.ceil(n_orders / ORDERS_PER_PARTITION))


def features_many(
    spark: SparkSession,
    tables: Mapping[str, DataFrame],
    as_ofs: Sequence[datetime],
    horizon_days: int = 90,
    *,
    labels: Sequence[bool | None] | None = None,
    partitions: int | None = None,
    facts: DataFacts | None = None,
) -> DataFrame:
    """The snapshots at several dates in one Spark job: one frame with ``as_of`` first,
    then the columns of :func:`build_snapshots` (the label columns when any date is
    covered, null on the rows of a date that is not). Rows are in no particular order.

    ``labels`` as in :func:`build_snapshots`; ``partitions`` the tasks (default
    :func:`default_partitions`); ``facts`` the global facts if already computed.
    """
    require_pyspark()
    _check_dates(as_ofs, horizon_days)
    facts = facts or data_facts(tables)
    covered = coverage(facts, as_ofs, horizon_days, labels)
    n = partitions or default_partitions(spark, facts.n_orders)
    if n < 1:
        raise ValueError(f"partitions must be >= 1, got {n}")
    schema = _spark_schema(_output_schema(covered, with_as_of=True))
    task = snapshot_task(as_ofs, horizon_days, covered, _arrow_schema(schema))
    frame = stacked(tables).repartition(n, BUCKET).drop(BUCKET)
    with pandas3_warning_filtered():
        return frame.mapInArrow(task, schema)


def features(
    spark: SparkSession,
    tables: Mapping[str, DataFrame],
    as_of: datetime | None = None,
    horizon_days: int = 90,
    *,
    labels: bool | None = None,
    partitions: int | None = None,
    facts: DataFacts | None = None,
) -> DataFrame:
    """The snapshot at ``as_of`` (default: the end of the healthy period) as a Spark
    DataFrame with the columns and types of :func:`build_snapshots` (labels when the
    latest purchase of all orders covers the window, or as ``labels`` forces). Rows are
    in no particular order: sort by ``customer_unique_id`` to compare."""
    facts = facts or data_facts(tables)
    when = as_of or facts.healthy_end
    (covered,) = coverage(facts, [when], horizon_days, None if labels is None else [labels])
    df = features_many(
        spark, tables, [when], horizon_days, labels=[covered], partitions=partitions, facts=facts
    )
    df = df.drop(AS_OF)
    return df if covered else df.drop(*LABELS)


def to_polars(df: DataFrame, *, sort: Sequence[str] = ()) -> pl.DataFrame:
    """Collect a Spark DataFrame to the driver as Polars (through Arrow), sorted by
    ``sort`` if given."""
    with spark_errors(), pandas3_warning_filtered():
        table = df.toArrow()
    out = pl.from_arrow(table)
    assert isinstance(out, pl.DataFrame)
    return out.sort(list(sort)) if sort else out


# -- scoring -----------------------------------------------------------------------------
SCORE_SCHEMA = pl.Schema(
    {
        "customer_unique_id": pl.String,
        "propensity": pl.Float64,
        "expected_spend": pl.Float64,
        "expected_value": pl.Float64,
    }
)


def _model_files(model_dir: str | os.PathLike[str]) -> dict[str, bytes]:
    """The saved model's files, read on the driver (and checked by loading them there),
    so that the tasks need no access to the driver's disk."""
    from olist_fast.fitting import FittedModel

    folder = Path(model_dir)
    FittedModel.load(folder)  # a one-line error for a folder that is not a model
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def score_task(
    files: Mapping[str, bytes], arrow: pa.Schema
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The function each scoring task runs: the model loaded once per task, then
    :func:`olist_fast.fitting.score_customers` on the task's customers (its per-customer
    columns; the rank and decile are global and made afterwards)."""
    blobs = dict(files)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        from olist_fast.fitting import FittedModel, score_customers

        got = [b for b in batches if b.num_rows]
        if not got:
            return
        with tempfile.TemporaryDirectory(prefix="olist-fast-model-") as tmp:
            for name, blob in blobs.items():
                (Path(tmp) / name).write_bytes(blob)
            model = FittedModel.load(Path(tmp))
        frame = pl.from_arrow(pa.Table.from_batches(got))
        assert isinstance(frame, pl.DataFrame)
        scored = score_customers(model, frame).select(arrow.names)
        yield from scored.to_arrow().cast(arrow).to_batches()

    return run


def rank_globally(scored: DataFrame, *, partitions: int) -> DataFrame:
    """``rank`` and ``decile`` over every customer, as :func:`olist_fast.fitting.score_customers`
    makes them on one machine: sorted by propensity (highest first), ties by
    ``customer_unique_id``; rank 1..n; decile ceil(rank * 10 / n).

    Distributed: a range partitioning on that order (checkpointed, so that the partition
    of each row is fixed), the row counts per partition to the driver, and each row's
    rank = the rows of the partitions before it + its number within its own."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from olist_fast.fitting import SCORE_COLUMNS

    order = [F.col("propensity").desc(), F.col("customer_unique_id").asc()]
    with spark_errors():
        ranged = (
            scored.repartitionByRange(partitions, *order)
            .withColumn("_part", F.spark_partition_id())
            .localCheckpoint(eager=True)
        )
        counts = {
            int(r["_part"]): int(r["count"]) for r in ranged.groupBy("_part").count().collect()
        }
    n = sum(counts.values())
    offsets, total = [], 0
    for part in range(max(counts, default=-1) + 1):
        offsets.append(total)
        total += counts.get(part, 0)
    offset = F.element_at(F.array(*[F.lit(o) for o in offsets or [0]]), F.col("_part") + 1)
    rank = (offset + F.row_number().over(Window.partitionBy("_part").orderBy(*order))).cast(
        "bigint"
    )
    return (
        ranged.withColumn("rank", rank)
        .withColumn("decile", F.ceil(F.col("rank") * 10 / F.lit(max(n, 1))).cast("bigint"))
        .select(*SCORE_COLUMNS)
    )


def score(
    spark: SparkSession,
    model_dir: str | os.PathLike[str] | FittedModel,
    snapshot: DataFrame,
    *,
    partitions: int | None = None,
) -> DataFrame:
    """A saved model (the folder ``train``/``run`` writes, or a fitted one) applied to
    every customer of ``snapshot`` inside the executors: a Spark DataFrame with the columns of
    ``user_propensity_scores.csv`` (:data:`olist_fast.fitting.SCORE_COLUMNS`), the rank
    and decile computed over all customers. Rows in no particular order (sort by rank)."""
    require_pyspark()
    files = _model_source(model_dir)
    schema = _spark_schema(SCORE_SCHEMA)
    task = score_task(files, _arrow_schema(schema))
    with pandas3_warning_filtered(), spark_errors():
        scored = snapshot.mapInArrow(task, schema).localCheckpoint(eager=True)
    n = partitions or max(_parallelism(spark), _num_partitions(snapshot))
    return rank_globally(scored, partitions=n)


def _model_source(model: str | os.PathLike[str] | FittedModel) -> dict[str, bytes]:
    """The files of a saved model, or of a fitted one saved to a temporary folder."""
    from olist_fast.fitting import FittedModel

    if not isinstance(model, FittedModel):
        return _model_files(model)
    with tempfile.TemporaryDirectory(prefix="olist-fast-model-") as tmp:
        model.save(Path(tmp))
        return _model_files(tmp)


# -- entry points for the command line ----------------------------------------------------
@dataclass(frozen=True)
class Written:
    """What a Spark job wrote: where, how many rows and columns, and whether the snapshot
    carries labels (features only)."""

    out: str
    rows: int
    columns: int
    labels: bool = False
    as_of: datetime | None = None


def _write_dataset(df: DataFrame, out: str | os.PathLike[str], *, sort: Sequence[str]) -> int:
    """``df`` sorted by ``sort`` as a Parquet dataset at ``out`` (a folder or URL; Spark
    writes the part files and ``_SUCCESS``, replacing what was there). Checkpointed first,
    so that the global sort's sampling does not run the feature or scoring tasks twice."""
    target = os.fspath(out)
    with spark_errors(target), pandas3_warning_filtered():
        fixed = df.localCheckpoint(eager=True)
        fixed.orderBy(*sort).write.mode("overwrite").parquet(target)
        return fixed.count()


def _inputs(
    spark: SparkSession | None,
    master: str | None,
    data: str | os.PathLike[str],
    as_of: datetime | None,
    *,
    strict: bool,
    say: Callable[[str], None],
) -> tuple[SparkSession, dict[str, DataFrame], DataFacts, datetime]:
    """What a command reads before its job: the session, the six tables, the integrity
    counts over all the data (never per slice; warned, or raised under ``strict``), the
    global facts and the as_of (default: the end of the healthy period, said)."""
    spark = spark or session(master)
    tables = read_tables(spark, data, tables=FEATURE_TABLES)
    integrity(tables).check(strict=strict)
    facts = data_facts(tables)
    when = as_of or facts.healthy_end
    if as_of is None:
        say(f"as_of {when:%Y-%m-%d} (end of the healthy period)")
    return spark, tables, facts, when


def features_to(
    out: str | os.PathLike[str],
    data: str | os.PathLike[str],
    as_of: datetime | None = None,
    horizon_days: int = 90,
    master: str | None = None,
    *,
    partitions: int | None = None,
    spark: SparkSession | None = None,
    say: Callable[[str], None] = _quiet,
    strict: bool = False,
) -> Written:
    """``olist-fast features --engine spark``: the snapshot at ``as_of`` (default: the end
    of the healthy period, decided over all orders) written to ``out`` as a Parquet
    dataset sorted by ``customer_unique_id``. ``spark`` reuses a session; otherwise one
    starts on ``master`` (see :func:`session`)."""
    spark, tables, facts, when = _inputs(spark, master, data, as_of, strict=strict, say=say)
    df = features(spark, tables, when, horizon_days, partitions=partitions, facts=facts)
    rows = _write_dataset(df, out, sort=["customer_unique_id"])
    has_labels = "bought_again" in df.columns
    return Written(os.fspath(out), rows, len(df.columns), has_labels, when)


def score_to(
    out: str | os.PathLike[str],
    model: str | os.PathLike[str],
    data: str | os.PathLike[str],
    as_of: datetime | None = None,
    master: str | None = None,
    *,
    partitions: int | None = None,
    spark: SparkSession | None = None,
    say: Callable[[str], None] = _quiet,
    strict: bool = False,
) -> Written:
    """``olist-fast score --engine spark``: every customer of the snapshot at ``as_of``
    (features with the model's horizon, no labels) scored in the executors, written as
    the Parquet dataset ``<out>/user_propensity_scores.parquet`` sorted by rank."""
    from olist_fast.fitting import FittedModel

    fitted = FittedModel.load(Path(model))
    spark, tables, facts, when = _inputs(spark, master, data, as_of, strict=strict, say=say)
    fitted.check_can_score(when)  # a model refuses dates inside its training labels
    snap = features(
        spark, tables, when, fitted.horizon_days, labels=False, partitions=partitions, facts=facts
    )
    scores = score(spark, model, snap, partitions=partitions)
    target = f"{os.fspath(out).rstrip('/')}/user_propensity_scores.parquet"
    rows = _write_dataset(scores, target, sort=["rank"])
    return Written(target, rows, len(scores.columns), False, when)


def protocol_snapshots(
    spark: SparkSession,
    tables: Mapping[str, DataFrame],
    protocol: Protocol,
    facts: DataFacts,
    *,
    partitions: int | None = None,
) -> tuple[list[pl.DataFrame], DataFrame]:
    """Every snapshot of ``protocol`` in one Spark job (labels forced on for the past
    ones, as :func:`olist_fast.protocol.build_protocol_snapshots` does): the labelled
    ones collected to the driver as Polars frames sorted by ``customer_unique_id`` (what
    the model stage reads), and snapshot 0 left in Spark (checkpointed) for scoring.

    Every labelled row reaches the driver: at 1 % buyers the model stage keeps all of
    them for the folds and the backtest. That is the limit of this route (every
    snapshot, one row per customer, on the driver)."""
    from pyspark.sql import functions as F

    dates = protocol.dates()
    labels = [j > 0 for j in range(len(dates))]
    every = features_many(
        spark,
        tables,
        dates,
        protocol.horizon_days,
        labels=labels,
        partitions=partitions,
        facts=facts,
    )
    with spark_errors(), pandas3_warning_filtered():
        every = every.localCheckpoint(eager=True)
    past = to_polars(every.where(F.col(AS_OF) != F.lit(protocol.as_of)))
    frames = []
    for j in range(1, len(dates)):
        frame = past.filter(pl.col(AS_OF) == dates[j]).drop(AS_OF)
        frames.append(frame.sort("customer_unique_id"))
    now = every.where(F.col(AS_OF) == F.lit(protocol.as_of)).drop(AS_OF, *LABELS)
    return frames, now


def run_on_spark(
    config: RunConfig | None = None,
    master: str | None = None,
    *,
    partitions: int | None = None,
    spark: SparkSession | None = None,
) -> RunResult:
    """``olist-fast run --engine spark``: the snapshots built in Spark, the labelled ones
    collected and fed to the unchanged model stage of :func:`olist_fast.pipeline.run`
    (the same stage functions, in the same order, with the same seed), the final scores
    computed in Spark. The outputs are the files ``run`` writes, in ``config.out`` (a
    local folder); the same chosen setup and the same scores as the in-process ``run``.

    The data is a local folder or a URL Spark can read (``config.data``); the input
    fingerprints of the manifest hash local files only, as ``run`` does."""
    from olist_fast import pipeline as P
    from olist_fast.config import RunConfig
    from olist_fast.data import resolve_data_dir
    from olist_fast.parallel import using_threads
    from olist_fast.protocol import Snapshots, check_data_gap, require_roles

    config = config or RunConfig()
    out = P.local_out(config.out, "run")
    timer = P.Timer(log.info)
    with using_threads(config.n_jobs):
        location = resolve_data_dir(config.data)
        spark, tables, facts, as_of = timer.run(
            "read",
            lambda: _inputs(
                spark, master, location, config.as_of, strict=config.strict, say=log.info
            ),
        )
        protocol = config.protocol(as_of)
        check_data_gap(facts.latest_purchase, protocol)
        past, now = timer.run(
            "features",
            lambda: protocol_snapshots(spark, tables, protocol, facts, partitions=partitions),
        )
        # snapshot 0 reaches the driver too: the level of the final calibration is
        # measured on its customers (fitting.measure_drift); it is scored in Spark
        scored = to_polars(now, sort=["customer_unique_id"])
        snaps = Snapshots(protocol, [scored, *past])
        require_roles(snaps)
        data_dir = None if is_url(location) else Path(location)
        stage = P.model_stage(snaps, config, data_dir, timer)
        final, metrics = stage.final, stage.metrics
        scores = timer.run(
            "score",
            lambda: to_polars(score(spark, final, now, partitions=partitions), sort=["rank"]),
        )
        # snapshot 0 stayed in Spark: the manifest reads only its row count, which is the
        # number of customers scored
        done = Snapshots(protocol, [scores.select("customer_unique_id"), *past])
        # the manifest hashes the local files read (Spark's own URLs, s3a:// and the like,
        # are not Polars-readable: none are recorded for them)
        located = {} if is_url(location) else locate_olist(location)
        source = P.Source(location, {}, as_of, files={n: w for n, (w, _) in located.items()})
        files = timer.run(
            "write",
            lambda: P.write_outputs(
                config, out, source, done, final, scores, metrics, stage.backtest, timer
            ),
        )
    return P.RunResult(
        as_of, stage.selection.chosen.name, metrics, files, timer.stages, scores, final
    )
