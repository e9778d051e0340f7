"""What must be decided over all the data, once, on the driver, never per slice.

A task sees only its people's rows, so the label coverage of a snapshot (the latest
purchase of *all* orders), the default ``as_of`` (the data-health rule over monthly
counts) and the integrity counts come from small Spark aggregates here; the coverage is
passed into every task as the plan's forced ``labels``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import polars as pl

from olist_fast.features.labels import label_window_covered
from olist_fast.features.orders import PURCHASE
from olist_fast.features.snapshot import Integrity
from olist_fast.io import OlistDataError
from olist_fast.schema import is_eligible
from olist_fast.spark._session import pandas3_warning_filtered, spark_errors
from olist_fast.validation import health_of

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


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


def coverage(
    facts: DataFacts,
    as_ofs: Sequence[datetime],
    horizon_days: int,
    labels: Sequence[bool | None] | None,
) -> list[bool]:
    """Whether each snapshot carries labels: forced by ``labels`` as in
    :func:`olist_fast.features.build_snapshots`, else the contract's rule on the latest
    purchase of *all* orders (never a slice's own latest purchase)."""
    wanted = list(labels) if labels is not None else [None] * len(as_ofs)
    if len(wanted) != len(as_ofs):
        raise ValueError(f"labels has {len(wanted)} entries for {len(as_ofs)} dates")
    return [
        w
        if w is not None
        else label_window_covered(facts.latest_purchase, as_of=a, horizon_days=horizon_days)
        for a, w in zip(as_ofs, wanted, strict=True)
    ]
