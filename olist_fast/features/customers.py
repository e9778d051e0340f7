"""The customer grain: the order grain aggregated per ``customer_unique_id``.

The 23 features of the feature contract (``shared/feature-contract.md``), with
their names, types and empty-case values, one row per customer with at least one
history order, sorted by ``customer_unique_id``.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from olist_fast.features.orders import PURCHASE, US_PER_DAY, days_between

FEATURES: tuple[str, ...] = (
    "recency_days",
    "tenure_days",
    "n_orders",
    "n_purchase_days",
    "monetary",
    "avg_order_value",
    "n_items",
    "avg_item_price",
    "freight_ratio",
    "n_categories",
    "n_sellers",
    "n_reviews",
    "avg_review_score",
    "min_review_score",
    "share_reviews_with_comment",
    "preferred_payment_type",
    "avg_installments",
    "uses_voucher",
    "n_delivered",
    "avg_delivery_days",
    "avg_delay_days",
    "late_share",
    "customer_state",
)
CATEGORICAL: tuple[str, ...] = ("preferred_payment_type", "customer_state")
KEY = "customer_unique_id"


def _ratio(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    """``num / den`` as float64, null when ``den`` is 0."""
    return pl.when(den > 0).then(num.cast(pl.Float64) / den).otherwise(None)


def mean_days(micros_column: str) -> pl.Expr:
    """Mean of a microsecond column, in days; exact sums keep it order-independent."""
    c = pl.col(micros_column)
    return _ratio(c.sum(), c.count()) / US_PER_DAY


def n_distinct(list_column: str) -> pl.Expr:
    """Distinct non-null values across the lists of a group (0 for none)."""
    values = pl.col(list_column).list.drop_nulls()
    return values.list.explode(keep_nulls=False, empty_as_null=False).n_unique().cast(pl.Int64)


def preferred_payment_type(order_grain: pl.LazyFrame) -> pl.LazyFrame:
    """Per customer, the payment type with the largest value in whole cents (ties: A-Z)."""
    return (
        order_grain.select(KEY, "payment_types", "payment_cents")
        .explode("payment_types", "payment_cents")
        .drop_nulls("payment_types")
        .group_by(KEY, "payment_types")
        .agg(pl.col("payment_cents").sum())
        .group_by(KEY)
        .agg(
            pl.col("payment_types")
            .sort_by("payment_cents", "payment_types", descending=[True, False])
            .first()
            .alias("preferred_payment_type")
        )
    )


def build_customer_grain(order_grain: pl.LazyFrame, *, as_of: datetime) -> pl.LazyFrame:
    """The per-customer feature table of ``as_of`` from its order grain (LazyFrame out)."""
    ts = pl.col(PURCHASE)
    n_items = pl.col("n_items").sum()
    price_cents = pl.col("price_cents").sum()
    n_reviews = pl.col("n_reviews").sum()
    delivered = pl.col("delivered")
    agg = order_grain.group_by(KEY).agg(
        days_between(ts.max(), pl.lit(as_of)).alias("recency_days"),
        days_between(ts.min(), pl.lit(as_of)).alias("tenure_days"),
        pl.len().cast(pl.Int64).alias("n_orders"),
        ts.dt.date().n_unique().cast(pl.Int64).alias("n_purchase_days"),
        (pl.col("paid_cents").sum().fill_null(0) / 100.0).alias("monetary"),
        n_items.cast(pl.Int64).alias("n_items"),
        (_ratio(price_cents, pl.col("n_prices").sum()) / 100.0).alias("avg_item_price"),
        _ratio(pl.col("freight_cents").sum(), price_cents).alias("freight_ratio"),
        n_distinct("categories").alias("n_categories"),
        n_distinct("sellers").alias("n_sellers"),
        n_reviews.cast(pl.Int64).alias("n_reviews"),
        _ratio(pl.col("score_sum").sum(), pl.col("score_n").sum()).alias("avg_review_score"),
        pl.col("score_min").min().cast(pl.Int64).alias("min_review_score"),
        _ratio(pl.col("n_commented").sum(), n_reviews).alias("share_reviews_with_comment"),
        _ratio(pl.col("installments_sum").sum(), pl.col("installments_n").sum()).alias(
            "avg_installments"
        ),
        pl.col("has_voucher").any().fill_null(False).cast(pl.Int64).alias("uses_voucher"),
        delivered.sum().cast(pl.Int64).alias("n_delivered"),
        mean_days("delivery_us").alias("avg_delivery_days"),
        mean_days("delay_us").alias("avg_delay_days"),
        pl.col("late").mean().alias("late_share"),
        pl.col("customer_state").sort_by(PURCHASE, "order_id").last().alias("customer_state"),
    )
    agg = agg.with_columns((pl.col("monetary") / pl.col("n_orders")).alias("avg_order_value"))
    return (
        agg.join(preferred_payment_type(order_grain), on=KEY, how="left")
        .select(KEY, *FEATURES)
        .sort(KEY)
    )
