"""Helpers several test modules share: cutting a dataset at a date, and the feature
table of a dataset at a date."""

from __future__ import annotations

from datetime import datetime
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
