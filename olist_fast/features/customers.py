"""The customer grain: the order grain aggregated per ``customer_unique_id``.

The 23 features of the feature contract (docs/feature-contract.md), with
their names, types and empty-case values, one row per customer with at least one
history order, sorted by ``customer_unique_id``.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from olist_fast.features.keys import text_ids
from olist_fast.features.orders import CENT, PER_US_DAY, PURCHASE, days_between

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


class _Reduce:
    """How a per-order column becomes a per-customer value: aggregated over the customer's
    orders, or taken as it is for a customer with one order (same arithmetic, so the two
    paths give bit-identical results)."""

    def __init__(self, *, per_row: bool) -> None:
        self.per_row = per_row

    def sum(self, e: pl.Expr) -> pl.Expr:
        return e if self.per_row else e.sum()

    def count(self, e: pl.Expr) -> pl.Expr:
        return e.is_not_null().cast(pl.UInt32) if self.per_row else e.count()

    def min(self, e: pl.Expr) -> pl.Expr:
        return e if self.per_row else e.min()

    def max(self, e: pl.Expr) -> pl.Expr:
        return e if self.per_row else e.max()

    def mean(self, e: pl.Expr) -> pl.Expr:
        return e.cast(pl.Float64) if self.per_row else e.mean()

    def any(self, e: pl.Expr) -> pl.Expr:
        return e if self.per_row else e.any()

    def n_orders(self) -> pl.Expr:
        return pl.lit(1, dtype=pl.Int64) if self.per_row else pl.len().cast(pl.Int64)

    def n_days(self, ts: pl.Expr) -> pl.Expr:
        return pl.lit(1, dtype=pl.Int64) if self.per_row else ts.dt.date().n_unique().cast(pl.Int64)

    def n_distinct(self, list_column: str) -> pl.Expr:
        """Distinct non-null values across the orders' lists (0 for none); one order's own
        distinct count is already in the column of the same name as the output."""
        name, single = {
            "categories": ("n_categories", "category"),
            "sellers": ("n_sellers", "seller"),
        }[list_column]
        if self.per_row:
            return pl.col(name).fill_null(0).cast(pl.Int64)
        # a one-item order carries its value as a scalar, not as a one-entry list
        values = pl.col(list_column).fill_null(pl.concat_list(pl.col(single))).list.drop_nulls()
        return values.list.explode(keep_nulls=False, empty_as_null=False).n_unique().cast(pl.Int64)

    def latest(self, e: pl.Expr) -> pl.Expr:
        """The value on the latest order (latest purchase; ties: greatest order_id)."""
        return e if self.per_row else e.sort_by(PURCHASE, "order_id").last()


def feature_expressions(as_of: datetime, *, per_row: bool) -> list[pl.Expr]:
    """The contract's features from order-grain columns: aggregations over a customer's
    orders, or (``per_row``) the same arithmetic on a one-order customer's single row."""
    r = _Reduce(per_row=per_row)
    ts = pl.col(PURCHASE)
    price_cents = r.sum(pl.col("price_cents"))
    n_reviews = r.sum(pl.col("n_reviews"))
    monetary = r.sum(pl.col("paid_cents")).fill_null(0) * CENT
    n_orders = r.n_orders()

    def mean_days(column: str) -> pl.Expr:
        c = pl.col(column)
        return _ratio(r.sum(c), r.count(c)) * PER_US_DAY

    return [
        days_between(r.max(ts), pl.lit(as_of)).alias("recency_days"),
        days_between(r.min(ts), pl.lit(as_of)).alias("tenure_days"),
        n_orders.alias("n_orders"),
        r.n_days(ts).alias("n_purchase_days"),
        monetary.alias("monetary"),
        (monetary / n_orders).alias("avg_order_value"),
        r.sum(pl.col("n_items")).cast(pl.Int64).alias("n_items"),
        (_ratio(price_cents, r.sum(pl.col("n_prices"))) * CENT).alias("avg_item_price"),
        _ratio(r.sum(pl.col("freight_cents")), price_cents).alias("freight_ratio"),
        r.n_distinct("categories").alias("n_categories"),
        r.n_distinct("sellers").alias("n_sellers"),
        n_reviews.cast(pl.Int64).alias("n_reviews"),
        _ratio(r.sum(pl.col("score_sum")), r.sum(pl.col("score_n"))).alias("avg_review_score"),
        r.min(pl.col("score_min")).cast(pl.Int64).alias("min_review_score"),
        _ratio(r.sum(pl.col("n_commented")), n_reviews).alias("share_reviews_with_comment"),
        _ratio(r.sum(pl.col("installments_sum")), r.sum(pl.col("installments_n"))).alias(
            "avg_installments"
        ),
        r.any(pl.col("has_voucher")).fill_null(False).cast(pl.Int64).alias("uses_voucher"),
        r.sum(pl.col("delivered")).cast(pl.Int64).alias("n_delivered"),
        mean_days("delivery_us").alias("avg_delivery_days"),
        mean_days("delay_us").alias("avg_delay_days"),
        r.mean(pl.col("late")).alias("late_share"),
        r.latest(pl.col("customer_state")).alias("customer_state"),
    ]


def preferred_payment_type(order_grain: pl.LazyFrame) -> pl.LazyFrame:
    """Per customer, the payment type with the largest value in whole cents (ties: A-Z)."""
    # an order paid with one type has no lists: its type and cents are scalars
    return (
        order_grain.select(
            KEY,
            pl.col("payment_types").fill_null(pl.concat_list(pl.col("first_payment_type"))),
            pl.col("payment_cents").fill_null(pl.concat_list(pl.col("paid_cents"))),
        )
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


def build_customer_grain(
    order_grain: pl.LazyFrame, *, as_of: datetime, text_key: bool = True
) -> pl.LazyFrame:
    """The per-customer feature table of ``as_of`` from its order grain (LazyFrame out).

    A ``customer_unique_id`` made an integer by :func:`~olist_fast.features.compact_ids`
    comes out as text again unless ``text_key`` is False (for a caller that joins more
    onto the table first, and converts it then with :func:`~olist_fast.features.keys.text_ids`).

    Most customers have one history order (97 % in the Olist data): their row is a
    projection of that order's row; only customers with several orders go through the
    group-by. Likewise the preferred payment type is read off an order paid with one type,
    and computed by summing cents per type only where there is a choice.
    """
    grain = order_grain.with_columns(
        (pl.len().over(KEY) == 1).alias("_single"),
        (pl.col("n_payment_types").fill_null(0) <= 1).alias("_one_type"),
    )
    singles = grain.filter(pl.col("_single")).select(
        KEY,
        *feature_expressions(as_of, per_row=True),
        pl.col("first_payment_type").alias("_pref_simple"),
        pl.col("_one_type"),
    )
    multis = (
        grain.filter(~pl.col("_single"))
        .group_by(KEY)
        .agg(*feature_expressions(as_of, per_row=False))
        .with_columns(
            pl.lit(None, dtype=pl.String).alias("_pref_simple"), pl.lit(False).alias("_one_type")
        )
    )
    # the generic preferred type, only for customers with a choice of types
    choice = preferred_payment_type(grain.filter(~(pl.col("_single") & pl.col("_one_type"))))
    table = (
        pl.concat([singles, multis], how="vertical")
        .join(choice, on=KEY, how="left")
        .with_columns(
            pl.when(pl.col("_one_type"))
            .then(pl.col("_pref_simple"))
            .otherwise(pl.col("preferred_payment_type"))
            .alias("preferred_payment_type")
        )
        .select(KEY, *FEATURES)
        .sort(KEY)
    )
    return text_ids(table) if text_key else table
