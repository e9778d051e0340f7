"""One schema per raw Olist table: file stems, column order, types and keys.

Timestamps are read as text and parsed with :data:`TIMESTAMP_FORMAT`, never
guessed; ids and zip prefixes stay text so leading zeros survive.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from polars._typing import PolarsDataType

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
DATETIME = pl.Datetime("us")

ORDERS = "orders"
CUSTOMERS = "customers"
ORDER_ITEMS = "order_items"
ORDER_PAYMENTS = "order_payments"
ORDER_REVIEWS = "order_reviews"
PRODUCTS = "products"
SELLERS = "sellers"
GEOLOCATION = "geolocation"
CATEGORY_TRANSLATION = "category_translation"


@dataclass(frozen=True, kw_only=True)
class TableSpec:
    """What one raw table looks like on disk and after parsing."""

    name: str
    stem: str
    schema: pl.Schema
    timestamps: tuple[str, ...] = ()
    primary_key: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    """Columns that must never be empty (keys, the purchase time, the amounts)."""
    core: tuple[str, ...] = ()
    """Columns a file must have; every other column may be absent (read as all null)."""

    @property
    def optional_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.schema.names() if c not in self.core)

    @property
    def raw_schema(self) -> pl.Schema:
        """The schema as read from CSV: timestamps still text."""
        return pl.Schema(
            {c: (pl.String if c in self.timestamps else t) for c, t in self.schema.items()}
        )


S: PolarsDataType = pl.String
INT: PolarsDataType = pl.Int64
F: PolarsDataType = pl.Float64
T: PolarsDataType = DATETIME

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            name=ORDERS,
            stem="olist_orders_dataset",
            schema=pl.Schema(
                {
                    "order_id": S,
                    "customer_id": S,
                    "order_status": S,
                    "order_purchase_timestamp": T,
                    "order_approved_at": T,
                    "order_delivered_carrier_date": T,
                    "order_delivered_customer_date": T,
                    "order_estimated_delivery_date": T,
                }
            ),
            timestamps=(
                "order_purchase_timestamp",
                "order_approved_at",
                "order_delivered_carrier_date",
                "order_delivered_customer_date",
                "order_estimated_delivery_date",
            ),
            primary_key=("order_id",),
            required=("order_id", "customer_id", "order_purchase_timestamp"),
            core=("order_id", "customer_id", "order_purchase_timestamp"),
        ),
        TableSpec(
            name=CUSTOMERS,
            stem="olist_customers_dataset",
            schema=pl.Schema(
                {
                    "customer_id": S,
                    "customer_unique_id": S,
                    "customer_zip_code_prefix": S,
                    "customer_city": S,
                    "customer_state": S,
                }
            ),
            primary_key=("customer_id",),
            required=("customer_id", "customer_unique_id"),
            core=("customer_id", "customer_unique_id"),
        ),
        TableSpec(
            name=ORDER_ITEMS,
            stem="olist_order_items_dataset",
            schema=pl.Schema(
                {
                    "order_id": S,
                    "order_item_id": INT,
                    "product_id": S,
                    "seller_id": S,
                    "shipping_limit_date": T,
                    "price": F,
                    "freight_value": F,
                }
            ),
            timestamps=("shipping_limit_date",),
            primary_key=("order_id", "order_item_id"),
            required=("order_id", "order_item_id", "price"),
            core=("order_id", "order_item_id", "price"),
        ),
        TableSpec(
            name=ORDER_PAYMENTS,
            stem="olist_order_payments_dataset",
            schema=pl.Schema(
                {
                    "order_id": S,
                    "payment_sequential": INT,
                    "payment_type": S,
                    "payment_installments": INT,
                    "payment_value": F,
                }
            ),
            primary_key=("order_id", "payment_sequential"),
            required=("order_id", "payment_sequential", "payment_value"),
            core=("order_id", "payment_sequential", "payment_value"),
        ),
        TableSpec(
            name=ORDER_REVIEWS,
            stem="olist_order_reviews_dataset",
            schema=pl.Schema(
                {
                    "review_id": S,
                    "order_id": S,
                    "review_score": INT,
                    "review_comment_title": S,
                    "review_comment_message": S,
                    "review_creation_date": T,
                    "review_answer_timestamp": T,
                }
            ),
            timestamps=("review_creation_date", "review_answer_timestamp"),
            required=("review_id", "order_id", "review_score", "review_answer_timestamp"),
            core=("review_id", "order_id", "review_score", "review_answer_timestamp"),
        ),
        TableSpec(
            name=PRODUCTS,
            stem="olist_products_dataset",
            schema=pl.Schema(
                {
                    "product_id": S,
                    "product_category_name": S,
                    "product_name_lenght": INT,
                    "product_description_lenght": INT,
                    "product_photos_qty": INT,
                    "product_weight_g": INT,
                    "product_length_cm": INT,
                    "product_height_cm": INT,
                    "product_width_cm": INT,
                }
            ),
            primary_key=("product_id",),
            required=("product_id",),
            core=("product_id",),
        ),
        TableSpec(
            name=SELLERS,
            stem="olist_sellers_dataset",
            schema=pl.Schema(
                {
                    "seller_id": S,
                    "seller_zip_code_prefix": S,
                    "seller_city": S,
                    "seller_state": S,
                }
            ),
            primary_key=("seller_id",),
            required=("seller_id",),
            core=("seller_id",),
        ),
        TableSpec(
            name=GEOLOCATION,
            stem="olist_geolocation_dataset",
            schema=pl.Schema(
                {
                    "geolocation_zip_code_prefix": S,
                    "geolocation_lat": F,
                    "geolocation_lng": F,
                    "geolocation_city": S,
                    "geolocation_state": S,
                }
            ),
            required=("geolocation_zip_code_prefix",),
            core=("geolocation_zip_code_prefix",),
        ),
        TableSpec(
            name=CATEGORY_TRANSLATION,
            stem="product_category_name_translation",
            schema=pl.Schema(
                {
                    "product_category_name": S,
                    "product_category_name_english": S,
                }
            ),
            primary_key=("product_category_name",),
            required=("product_category_name", "product_category_name_english"),
            core=("product_category_name", "product_category_name_english"),
        ),
    )
}

TABLE_NAMES: tuple[str, ...] = tuple(TABLES)
REQUIRED_TABLES: tuple[str, ...] = (ORDERS, CUSTOMERS)
"""The tables every job needs; the amount of an order comes from ``order_payments`` or,
without them, from ``order_items`` (price + freight); every other table is optional."""
AMOUNT_TABLES: tuple[str, ...] = (ORDER_PAYMENTS, ORDER_ITEMS)
PLAN_TABLES: tuple[str, ...] = (
    ORDERS,
    CUSTOMERS,
    ORDER_ITEMS,
    ORDER_PAYMENTS,
    ORDER_REVIEWS,
    PRODUCTS,
)
"""The tables the feature plan reads (absent ones are read as empty); the other three
(sellers, geolocation, category translation) are read only by ``validate`` and
``convert``, when present."""
BY_STEM: dict[str, str] = {spec.stem: name for name, spec in TABLES.items()}


def empty_table(name: str) -> pl.LazyFrame:
    """A table with no rows, typed: what an absent optional table is read as."""
    return pl.LazyFrame(schema=TABLES[name].schema)


# -- which orders are purchases ---------------------------------------------------------
OLIST_STATUSES: tuple[str, ...] = (
    "approved",
    "canceled",
    "created",
    "delivered",
    "invoiced",
    "processing",
    "shipped",
    "unavailable",
)
"""The statuses of the Olist data dictionary."""
_NOT_PURCHASES = ("canceled", "cancelled", "unavailable", "refunded", "returned", "failed",
                  "declined", "rejected", "voided", "void", "chargeback")  # fmt: skip
NOT_PURCHASE_STATUSES: tuple[str, ...] = tuple(
    v for s in _NOT_PURCHASES for v in (s, s.capitalize(), s.upper())
)
"""Statuses of orders that are not purchases, in lower, capitalised and upper case; any
other status (null included) counts as a purchase."""


def is_eligible() -> pl.Expr:
    """Orders that count as purchases: a status not in :data:`NOT_PURCHASE_STATUSES` (a
    null status counts) and a known purchase time."""
    status = pl.col("order_status")
    known = pl.col("order_purchase_timestamp").is_not_null()
    return (status.is_null() | ~status.is_in(NOT_PURCHASE_STATUSES)) & known


# -- what each optional input feeds --------------------------------------------------------
FEATURE_SOURCES: tuple[tuple[str, str | None, tuple[str, ...]], ...] = (
    (ORDER_REVIEWS, None, ("n_reviews", "avg_review_score", "min_review_score",
                           "share_reviews_with_comment")),
    (ORDER_REVIEWS, "review_comment_message", ("share_reviews_with_comment",)),
    (ORDER_ITEMS, None, ("n_items", "avg_item_price", "freight_ratio", "n_categories",
                         "n_sellers")),
    (ORDER_ITEMS, "freight_value", ("freight_ratio",)),
    (ORDER_ITEMS, "product_id", ("n_categories",)),
    (ORDER_ITEMS, "seller_id", ("n_sellers",)),
    (PRODUCTS, None, ("n_categories",)),
    (PRODUCTS, "product_category_name", ("n_categories",)),
    (ORDERS, "order_delivered_customer_date", ("n_delivered", "avg_delivery_days",
                                               "avg_delay_days", "late_share")),
    (ORDERS, "order_estimated_delivery_date", ("avg_delay_days", "late_share")),
    (ORDER_PAYMENTS, None, ("preferred_payment_type", "avg_installments", "uses_voucher")),
    (ORDER_PAYMENTS, "payment_type", ("preferred_payment_type", "uses_voucher")),
    (ORDER_PAYMENTS, "payment_installments", ("avg_installments",)),
    (CUSTOMERS, "customer_state", ("customer_state",)),
)  # fmt: skip
"""(table, column or None for the whole table, the features it feeds): without it, those
features are empty for every customer (the contract's "nothing to aggregate" values)."""


def features_lost(table: str, column: str | None = None) -> tuple[str, ...]:
    """The features that are empty without ``table`` (or without its ``column``)."""
    out: list[str] = []
    for t, c, feats in FEATURE_SOURCES:
        if t == table and (column is None or c == column):
            out += [f for f in feats if f not in out]
    return tuple(out)
