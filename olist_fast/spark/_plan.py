"""The unchanged Polars feature plan run per bucket of people inside Spark tasks.

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
What must not be decided per slice comes from :mod:`olist_fast.spark._facts`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from olist_fast.features import LABELS, build_snapshots
from olist_fast.features.orders import INPUT_COLUMNS
from olist_fast.io import OlistDataError, check_columns
from olist_fast.schema import TABLES
from olist_fast.spark._facts import DataFacts, coverage, data_facts
from olist_fast.spark._session import (
    pandas3_warning_filtered,
    parallelism,
    require_pyspark,
    spark_errors,
)
from olist_fast.spark._types import arrow_schema, spark_schema, spark_type

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

FEATURE_TABLES: tuple[str, ...] = tuple(INPUT_COLUMNS)
"""The tables the feature plan reads, in the order of their tag in the stacked frame."""
TAG = "_olist_table"
BUCKET = "_olist_bucket"
ROW = "_olist_row"
AS_OF = "as_of"
ORDERS_PER_PARTITION = 100_000
"""Default partition size (orders per task): small enough that one task's Python worker
stays within the memory budget of docs/spark.md, where the measurements are."""


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
                    F.col(c) if c in own else F.lit(None).cast(spark_type(t)).alias(c)
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
    return df.select([F.col(c).cast(spark_type(t)).alias(c) for c, t in spec.schema.items()])


def _output_schema(covered: Sequence[bool], *, with_as_of: bool) -> pl.Schema:
    """The plan's output schema, from the plan itself run on empty inputs (types do not
    depend on the data), plus ``as_of`` first for the several-dates frame."""
    empty = {name: pl.LazyFrame(schema=TABLES[name].schema) for name in FEATURE_TABLES}
    (snap,) = build_snapshots(empty, [datetime(2000, 1, 1)], labels=[any(covered)])
    schema = dict(snap.schema)
    return pl.Schema({AS_OF: pl.Datetime("us"), **schema} if with_as_of else schema)


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
    return max(parallelism(spark), math.ceil(n_orders / ORDERS_PER_PARTITION))


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
    schema = spark_schema(_output_schema(covered, with_as_of=True))
    task = snapshot_task(as_ofs, horizon_days, covered, arrow_schema(schema))
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
