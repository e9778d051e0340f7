"""Helpers several test modules share: cutting a dataset at a date, and the feature
table of a dataset at a date."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl

import olist_fast
from olist_fast.features import LABELS

PURCHASE = "order_purchase_timestamp"
ANSWER = "review_answer_timestamp"


def truncate(tables: dict[str, pl.DataFrame], at: datetime) -> dict[str, pl.DataFrame]:
    """Every row whose own timestamp is at or after ``at`` deleted: orders (with their
    items and payments) purchased then, and reviews answered then."""
    t = dict(tables)
    late = t["orders"].filter(pl.col(PURCHASE) >= at)["order_id"].implode()
    for name in ("orders", "order_items", "order_payments"):
        t[name] = t[name].filter(~pl.col("order_id").is_in(late))
    t["order_reviews"] = t["order_reviews"].filter(pl.col(ANSWER) < at)
    return t


def features(
    tables: dict[str, pl.DataFrame] | Path, as_of: datetime, *, compact: bool = False
) -> pl.DataFrame:
    """The feature table at ``as_of`` without labels, from frames or a folder (``compact``:
    integer keys)."""
    lazy = (
        olist_fast.scan_olist(tables)
        if isinstance(tables, Path)
        else {k: v.lazy() for k, v in tables.items()}
    )
    (snap,) = olist_fast.build_snapshots(lazy, [as_of], horizon_days=90, compact=compact)
    return snap.drop(LABELS, strict=False)
