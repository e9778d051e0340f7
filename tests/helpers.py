"""Helpers several test modules share: cutting a dataset at a date, the feature table
of a dataset at a date, and a generated shop as a transaction log."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

import olist_fast
from olist_fast.features import LABELS

PURCHASE = "order_purchase_timestamp"
ANSWER = "review_answer_timestamp"


def truncate(
    tables: dict[str, pl.DataFrame], at: datetime, *, share: float = 1.0, seed: int = 0
) -> dict[str, pl.DataFrame]:
    """Every row whose own timestamp is at or after ``at`` deleted: orders (with their
    items and payments) purchased then, and reviews answered then. ``share`` below 1
    deletes that random share of them instead (drawn with ``seed``)."""
    rng = np.random.default_rng(seed)
    t = dict(tables)
    late = t["orders"].filter(pl.col(PURCHASE) >= at)["order_id"]
    late = late.filter(pl.Series(rng.random(late.len()) < share)).implode()
    for name in ("orders", "order_items", "order_payments"):
        t[name] = t[name].filter(~pl.col("order_id").is_in(late))
    reviews = t["order_reviews"]
    answered_late = (reviews[ANSWER] >= at).fill_null(False)
    t["order_reviews"] = reviews.filter(
        ~(answered_late & pl.Series(rng.random(reviews.height) < share))
    )
    return t


def features(
    tables: dict[str, pl.DataFrame] | Path, as_of: datetime, *, compact: bool | None = None
) -> pl.DataFrame:
    """The feature table at ``as_of`` without labels, from frames or a folder (``compact``
    as in :func:`olist_fast.build_snapshots`: True integer keys, False text keys)."""
    lazy = (
        olist_fast.scan_olist(tables)
        if isinstance(tables, Path)
        else {k: v.lazy() for k, v in tables.items()}
    )
    (snap,) = olist_fast.build_snapshots(lazy, [as_of], horizon_days=90, compact=compact)
    return snap.drop(LABELS, strict=False)


def shop_as_log(shop: dict[str, pl.DataFrame]) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """A generated shop as a log of one line per order (the person, the purchase time, the
    status, the order's payments summed) and as Olist tables carrying exactly that: orders
    with only id, customer, status and purchase time; customers with their person; one
    payment per order without type or instalments; no other table."""
    paid = shop["order_payments"].group_by("order_id").agg(pl.col("payment_value").sum())
    orders = shop["orders"].join(paid, on="order_id", how="semi")
    log = (
        orders.join(shop["customers"], on="customer_id")
        .join(paid, on="order_id")
        .select(
            "order_id",
            "customer_unique_id",
            "order_status",
            "order_purchase_timestamp",
            "payment_value",
        )
    )
    olist = {
        "orders": orders.select(
            "order_id", "customer_id", "order_status", "order_purchase_timestamp"
        ),
        "customers": shop["customers"].select("customer_id", "customer_unique_id"),
        "order_payments": paid.select(
            "order_id", pl.lit(1, dtype=pl.Int64).alias("payment_sequential"), "payment_value"
        ),
    }
    return log, olist


def write_offset_log(log: pl.DataFrame, path: Path) -> Path:
    """The log as a CSV file a shop in UTC+2 might export: ISO times with their offset,
    the customer column named ``client``."""
    local = pl.col("order_purchase_timestamp") + timedelta(hours=2)
    log.select(
        pl.col("customer_unique_id").alias("client"),
        local.dt.to_string("%Y-%m-%dT%H:%M:%S+02:00").alias("ts"),
        pl.col("payment_value").alias("amount"),
        pl.col("order_status").alias("status"),
    ).write_csv(path)
    return path
