"""Labels of a snapshot: who bought again in ``[as_of, as_of + horizon)``, and for how much."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import polars as pl

from olist_fast.features.keys import text_ids
from olist_fast.features.orders import CENT, PURCHASE, shared_order_facts

LABELS: tuple[str, ...] = ("bought_again", "future_spend")


def label_window_covered(
    latest_purchase: datetime | None, *, as_of: datetime, horizon_days: int
) -> bool:
    """The window is covered when the latest purchase is at or after its end."""
    return latest_purchase is not None and latest_purchase >= as_of + timedelta(days=horizon_days)


def latest_purchase(orders: pl.LazyFrame) -> pl.LazyFrame:
    """The latest purchase timestamp of any order (any status), as a one-cell frame."""
    return orders.select(pl.col(PURCHASE).max())


def build_labels(
    tables: Mapping[str, pl.LazyFrame], *, as_of: datetime, horizon_days: int, text_key: bool = True
) -> pl.LazyFrame:
    """Per customer with an eligible order in the window: ``future_spend`` (their payments).

    As in :func:`~olist_fast.features.build_customer_grain`, a ``customer_unique_id``
    made an integer by ``compact_ids`` comes out as text unless ``text_key`` is False, so
    the two tables join as they come."""
    end = as_of + timedelta(days=horizon_days)
    # the same per-order payment facts as the features, so the plan computes them once
    window = shared_order_facts(tables).filter(pl.col(PURCHASE) >= as_of, pl.col(PURCHASE) < end)
    labels = (
        window.select("customer_unique_id", "paid_cents")
        .group_by("customer_unique_id")
        .agg((pl.col("paid_cents").sum() * CENT).alias("future_spend"))
    )
    return text_ids(labels) if text_key else labels


def add_labels(features: pl.LazyFrame, labels: pl.LazyFrame) -> pl.LazyFrame:
    """Left-join labels onto a feature table: 0 / 0.0 for customers who did not buy."""
    return (
        features.join(labels, on="customer_unique_id", how="left", maintain_order="left")
        .with_columns(
            pl.col("future_spend").is_not_null().cast(pl.Int64).alias("bought_again"),
            pl.col("future_spend").fill_null(0.0),
        )
        .select(*features.collect_schema().names(), *LABELS)
    )
