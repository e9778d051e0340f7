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
    """Columns that must never be empty (keys and the last column of every row)."""

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
            required=(
                "order_id",
                "customer_id",
                "order_purchase_timestamp",
                "order_estimated_delivery_date",
            ),
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
            required=("customer_id", "customer_unique_id", "customer_state"),
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
            required=(
                "order_id",
                "order_item_id",
                "product_id",
                "seller_id",
                "price",
                "freight_value",
            ),
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
            required=("order_id", "payment_sequential", "payment_type", "payment_value"),
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
            required=("seller_id", "seller_state"),
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
            required=("geolocation_zip_code_prefix", "geolocation_state"),
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
        ),
    )
}

TABLE_NAMES: tuple[str, ...] = tuple(TABLES)
PLAN_TABLES: tuple[str, ...] = (
    ORDERS,
    CUSTOMERS,
    ORDER_ITEMS,
    ORDER_PAYMENTS,
    ORDER_REVIEWS,
    PRODUCTS,
)
"""The tables the feature plan reads; the other three (sellers, geolocation, category
translation) are read only by ``validate`` and ``convert``, when present."""
BY_STEM: dict[str, str] = {spec.stem: name for name, spec in TABLES.items()}
