"""The order grain: one row per history order, its items, payments and reviews reduced
to per-order facts known before ``as_of``, joined to the order and its customer.

Every input row is reduced to its own order first, so items, payments and reviews
never multiply each other (the join fan-out pitfall).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from olist_fast.schema import is_eligible

US_PER_DAY = 86_400 * 1_000_000
# Divisions by a constant are written as products with its reciprocal: Polars computes
# ``column / c`` as ``column * (1 / c)`` on a column of several rows but as a true
# division on a column of one row, so the same customer could differ in the last bit
# depending on how many rows its frame had (seen when the plan runs on Spark slices).
# The explicit product is one operation whatever the length.
PER_US_DAY = 1 / US_PER_DAY
CENT = 1 / 100
INPUT_COLUMNS: dict[str, list[str]] = {
    "orders": ["order_id", "customer_id", "order_status", "order_purchase_timestamp",
               "order_delivered_customer_date", "order_estimated_delivery_date"],
    "customers": ["customer_id", "customer_unique_id", "customer_state"],
    "order_items": ["order_id", "product_id", "seller_id", "price", "freight_value"],
    "order_payments": ["order_id", "payment_type", "payment_installments", "payment_value"],
    "order_reviews": ["order_id", "review_score", "review_comment_message",
                      "review_answer_timestamp"],
    "products": ["product_id", "product_category_name"],
}  # fmt: skip
"""The input columns the feature plan reads: parsing just these is the floor."""
PURCHASE = "order_purchase_timestamp"


def micros_between(start: str | pl.Expr, end: str | pl.Expr) -> pl.Expr:
    """``(end - start)`` in whole microseconds (Int64: sums of it are exact)."""
    s = pl.col(start) if isinstance(start, str) else start
    e = pl.col(end) if isinstance(end, str) else end
    return (e - s).dt.total_microseconds()


def days_between(start: str | pl.Expr, end: str | pl.Expr) -> pl.Expr:
    """``(end - start)`` in days as float64, exact to the microsecond."""
    return micros_between(start, end).cast(pl.Float64) * PER_US_DAY


def cents(column: str) -> pl.Expr:
    """A money column in whole cents (Int64), so sums are exact and order-independent."""
    return (pl.col(column) * 100).round(0).cast(pl.Int64)


def customer_orders(orders: pl.LazyFrame, customers: pl.LazyFrame) -> pl.LazyFrame:
    """Eligible orders with the person behind them (``customer_unique_id``) and their state."""
    return orders.filter(is_eligible()).join(
        customers.select(CUSTOMER_COLUMNS), on="customer_id", how="inner"
    )


CUSTOMER_COLUMNS = ("customer_id", "customer_unique_id", "customer_state")


def item_facts(
    items: pl.LazyFrame, products: pl.LazyFrame, *, count_repeats: bool = False
) -> pl.LazyFrame:
    """Per order: item count, price and freight sums, the distinct categories and sellers
    within the order, and the values behind them for distinct counts across a
    customer's orders: ``category`` and ``seller`` for a one-item order (90 % of orders),
    the lists ``categories`` and ``sellers`` (one entry per item) otherwise.

    Lists only where an order has several items: joining list columns onto the orders
    costs several times as much as joining scalars (docs/performance.md).
    """
    several = pl.col("n_items") > 1
    return (
        items.join(
            products.select("product_id", "product_category_name"), on="product_id", how="left"
        )
        .group_by("order_id")
        .agg(
            pl.len().cast(pl.Int64).alias("n_items"),
            cents("price").sum().alias("price_cents"),
            pl.col("price").count().cast(pl.Int64).alias("n_prices"),
            cents("freight_value").sum().alias("freight_cents"),
            pl.col("product_category_name").alias("categories"),
            pl.col("seller_id").alias("sellers"),
            pl.col("product_category_name").drop_nulls().n_unique().alias("n_categories"),
            pl.col("seller_id").drop_nulls().n_unique().alias("n_sellers"),
            *_repeats("order_item_id", count_repeats),
        )
        .with_columns(
            pl.when(~several).then(pl.col("categories").list.first()).alias("category"),
            pl.when(~several).then(pl.col("sellers").list.first()).alias("seller"),
            pl.when(several).then(pl.col("categories")).alias("categories"),
            pl.when(several).then(pl.col("sellers")).alias("sellers"),
        )
    )


def _repeats(key: str, wanted: bool) -> list[pl.Expr]:
    """Rows of an order beyond the first of each ``key`` value (a duplicated row), for the
    integrity counts; computed inside the per-order group-by the plan already runs."""
    repeats = pl.col(key).count() - pl.col(key).drop_nulls().n_unique()
    return [repeats.cast(pl.Int64).alias(REPEATS)] if wanted else []


def _refunds(wanted: bool) -> list[pl.Expr]:
    """Negative payment rows of an order (refunds) and their cents, for the input notes."""
    negative = pl.col("payment_value") < 0
    return (
        [
            negative.sum().cast(pl.Int64).alias(REFUND_ROWS),
            cents("payment_value").filter(negative).sum().alias(REFUND_CENTS),
        ]
        if wanted
        else []
    )


REPEATS = "_repeated_rows"
REFUND_ROWS = "_refund_rows"
REFUND_CENTS = "_refund_cents"


def payment_facts(payments: pl.LazyFrame, *, count_repeats: bool = False) -> pl.LazyFrame:
    """Per order: paid cents, payment rows, instalments, the distinct payment types, the
    first type, and each row's type and cents (``payment_types`` / ``payment_cents``,
    summed per type only at the customer grain, where the preferred type is chosen).

    The two lists are null for an order paid with one type and no untyped row (97 % of
    orders): its only type is ``first_payment_type`` and its cents ``paid_cents``.
    """
    return (
        payments.group_by("order_id")
        .agg(
            cents("payment_value").sum().alias("paid_cents"),
            pl.len().cast(pl.Int64).alias("n_payments"),
            pl.col("payment_installments").sum().alias("installments_sum"),
            pl.col("payment_installments").count().cast(pl.Int64).alias("installments_n"),
            pl.col("payment_type").alias("payment_types"),
            cents("payment_value").alias("payment_cents"),
            pl.col("payment_type").drop_nulls().n_unique().alias("n_payment_types"),
            pl.col("payment_type").drop_nulls().first().alias("first_payment_type"),
            (pl.col("payment_type") == "voucher").any().alias("has_voucher"),
            pl.col("payment_type").null_count().alias("_untyped"),
            *_repeats("payment_sequential", count_repeats),
            *_refunds(count_repeats),
        )
        .with_columns(
            pl.when((pl.col("n_payment_types") > 1) | (pl.col("_untyped") > 0))
            .then(pl.col(c))
            .alias(c)
            for c in ("payment_types", "payment_cents")
        )
        .drop("_untyped")
    )


def review_facts(reviews: pl.LazyFrame, *, as_of: datetime) -> pl.LazyFrame:
    """Per order: reviews answered before ``as_of``, their scores and comments."""
    message = pl.col("review_comment_message")
    with_comment = message.is_not_null() & (message.str.strip_chars().str.len_bytes() > 0)
    return (
        reviews.filter(pl.col("review_answer_timestamp") < as_of)
        .group_by("order_id")
        .agg(
            pl.len().cast(pl.Int64).alias("n_reviews"),
            pl.col("review_score").sum().alias("score_sum"),
            pl.col("review_score").count().cast(pl.Int64).alias("score_n"),
            pl.col("review_score").min().alias("score_min"),
            with_comment.sum().cast(pl.Int64).alias("n_commented"),
        )
    )


def add_delivery_facts(orders: pl.LazyFrame, *, as_of: datetime) -> pl.LazyFrame:
    """Delivered before ``as_of``: delivery days, delay against the estimate, lateness."""
    delivered_at = pl.col("order_delivered_customer_date")
    delivered = delivered_at.is_not_null() & (delivered_at < as_of)
    estimate = pl.col("order_estimated_delivery_date")
    return orders.with_columns(
        delivered.alias("delivered"),
        pl.when(delivered).then(micros_between(PURCHASE, delivered_at)).alias("delivery_us"),
        pl.when(delivered).then(micros_between(estimate, delivered_at)).alias("delay_us"),
        pl.when(delivered).then(delivered_at > estimate).alias("late"),
    )


@dataclass(frozen=True)
class SharedFacts(Mapping[str, pl.LazyFrame]):
    """The input tables (as a mapping, ``orders`` cached) and the date-independent facts
    built from them once, as cached frames, so that every plan built from them
    (features and labels, several dates) computes them once (:func:`with_shared_facts`).

    ``order_facts`` is every eligible order with its person, item facts and payment
    facts joined; ``people`` the customers' columns the plans read; the ``*_repeats``
    and ``payment_refunds`` frames one row each of the integrity counts their group-bys
    found."""

    tables: Mapping[str, pl.LazyFrame]
    people: pl.LazyFrame
    order_facts: pl.LazyFrame
    item_repeats: pl.LazyFrame
    payment_repeats: pl.LazyFrame
    payment_refunds: pl.LazyFrame

    def __getitem__(self, name: str) -> pl.LazyFrame:
        return self.tables[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.tables)

    def __len__(self) -> int:
        return len(self.tables)


def with_shared_facts(tables: Mapping[str, pl.LazyFrame], *, dates: int = 1) -> SharedFacts:
    """``tables`` with the date-independent facts built once (:class:`SharedFacts`).

    ``order_facts`` is cached for several ``dates``: each snapshot filters it by date
    and joins only its reviews, and the labels read their payments off it without a
    join. For one date it is not: the date filters then run before the joins, which
    touch only the orders each plan needs, and nothing order-sized is held beyond the
    item and payment facts (measured both ways: docs/performance.md). Already shared
    tables are returned as they are."""
    if isinstance(tables, SharedFacts):
        return tables
    orders = tables["orders"].cache()
    people = tables["customers"].select(CUSTOMER_COLUMNS).cache()
    items = item_facts(tables["order_items"], tables["products"], count_repeats=True).cache()
    payments = payment_facts(tables["order_payments"], count_repeats=True).cache()
    facts = order_facts(
        customer_orders(orders, people).cache(),
        items.drop(REPEATS),
        payments.drop(REPEATS, REFUND_ROWS, REFUND_CENTS),
    )
    return SharedFacts(
        tables={**tables, "orders": orders},
        people=people,
        order_facts=facts.cache() if dates > 1 else facts,
        item_repeats=items.select(pl.col(REPEATS).sum()),
        payment_repeats=payments.select(pl.col(REPEATS).sum()),
        payment_refunds=payments.select(pl.col(REFUND_ROWS, REFUND_CENTS).sum()),
    )


def order_facts(orders: pl.LazyFrame, items: pl.LazyFrame, payments: pl.LazyFrame) -> pl.LazyFrame:
    """Eligible orders with their people (:func:`customer_orders`) left-joined to their
    item and payment facts: the part of the order grain that does not depend on the
    date (an order without items or payments has nulls there)."""
    return (
        orders.select(ORDER_COLUMNS)
        .join(items, on="order_id", how="left")
        .join(payments, on="order_id", how="left")
    )


ORDER_COLUMNS = ("order_id", "customer_unique_id", "customer_state", PURCHASE,
                 "order_delivered_customer_date", "order_estimated_delivery_date")  # fmt: skip
"""The columns of an eligible order that the order grain and the labels read."""


def shared_order_facts(tables: Mapping[str, pl.LazyFrame]) -> pl.LazyFrame:
    """The order facts (:func:`order_facts`): the shared frame if ``tables`` are
    :class:`SharedFacts`, else built from the tables."""
    if isinstance(tables, SharedFacts):
        return tables.order_facts
    return order_facts(
        customer_orders(tables["orders"], tables["customers"]),
        item_facts(tables["order_items"], tables["products"]),
        payment_facts(tables["order_payments"]),
    )


def build_order_grain(tables: Mapping[str, pl.LazyFrame], *, as_of: datetime) -> pl.LazyFrame:
    """One row per history order of ``as_of`` with its per-order facts (LazyFrame out).

    Columns: order_id, customer_unique_id, customer_state, the purchase timestamp,
    delivery facts, item facts (``n_items`` 0 for an order without items), payment
    facts and review facts. The ids are as given: after ``compact_ids`` they are
    UInt128, ``customer_unique_id`` included (the customer grain and the labels turn
    it back into text).
    """
    hist = add_delivery_facts(
        shared_order_facts(tables).filter(pl.col(PURCHASE) < as_of), as_of=as_of
    ).drop("order_delivered_customer_date", "order_estimated_delivery_date")
    return (
        hist.select(*ORDER_GRAIN_HEAD, pl.exclude(ORDER_GRAIN_HEAD))
        .join(review_facts(tables["order_reviews"], as_of=as_of), on="order_id", how="left")
        .with_columns(pl.col("n_items", "n_payments", "n_reviews").fill_null(0))
    )


ORDER_GRAIN_HEAD = (*ORDER_COLUMNS[:4], "delivered", "delivery_us", "delay_us", "late")
"""The order grain's first columns: the order, its person and its delivery facts."""
