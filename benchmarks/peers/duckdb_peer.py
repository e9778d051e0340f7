"""A DuckDB SQL implementation of the feature contract: typed ``read_csv`` and one query.

python benchmarks/peers/duckdb_peer.py DATA_DIR AS_OF OUT.parquet [HORIZON_DAYS]
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

TS = "TIMESTAMP"
SOURCES = {
    "orders": ("olist_orders_dataset", {
        "order_id": "VARCHAR", "customer_id": "VARCHAR", "order_status": "VARCHAR",
        "order_purchase_timestamp": TS, "order_approved_at": TS,
        "order_delivered_carrier_date": TS, "order_delivered_customer_date": TS,
        "order_estimated_delivery_date": TS}),
    "customers": ("olist_customers_dataset", {
        "customer_id": "VARCHAR", "customer_unique_id": "VARCHAR",
        "customer_zip_code_prefix": "VARCHAR", "customer_city": "VARCHAR",
        "customer_state": "VARCHAR"}),
    "items": ("olist_order_items_dataset", {
        "order_id": "VARCHAR", "order_item_id": "BIGINT", "product_id": "VARCHAR",
        "seller_id": "VARCHAR", "shipping_limit_date": TS, "price": "DOUBLE",
        "freight_value": "DOUBLE"}),
    "payments": ("olist_order_payments_dataset", {
        "order_id": "VARCHAR", "payment_sequential": "BIGINT", "payment_type": "VARCHAR",
        "payment_installments": "BIGINT", "payment_value": "DOUBLE"}),
    "reviews": ("olist_order_reviews_dataset", {
        "review_id": "VARCHAR", "order_id": "VARCHAR", "review_score": "BIGINT",
        "review_comment_title": "VARCHAR", "review_comment_message": "VARCHAR",
        "review_creation_date": TS, "review_answer_timestamp": TS}),
    "products": ("olist_products_dataset", {
        "product_id": "VARCHAR", "product_category_name": "VARCHAR",
        "product_name_lenght": "BIGINT", "product_description_lenght": "BIGINT",
        "product_photos_qty": "BIGINT", "product_weight_g": "BIGINT",
        "product_length_cm": "BIGINT", "product_height_cm": "BIGINT",
        "product_width_cm": "BIGINT"}),
}  # fmt: skip


def source(data: Path, name: str) -> str:
    stem, cols = SOURCES[name]
    pq = data / f"{stem}.parquet"
    if pq.exists():
        return f"read_parquet('{pq}')"
    spec = ", ".join(f"'{c}': '{t}'" for c, t in cols.items())
    return (
        f"read_csv('{data / stem}.csv', header=true, columns={{{spec}}}, "
        "timestampformat='%Y-%m-%d %H:%M:%S', nullstr='', quote='\"', escape='\"', "
        "strict_mode=false)"
    )


QUERY = """
WITH
orders AS (SELECT * FROM {orders}), customers AS (SELECT * FROM {customers}),
elig AS (
  SELECT o.*, c.customer_unique_id AS uid, c.customer_state
  FROM orders o JOIN customers c USING (customer_id)
  WHERE (o.order_status IS NULL OR o.order_status NOT IN ('canceled', 'unavailable'))
    AND o.order_purchase_timestamp IS NOT NULL),
hist AS (SELECT * FROM elig WHERE order_purchase_timestamp < $as_of),
pay AS (SELECT p.*, h.uid FROM {payments} p JOIN hist h USING (order_id)),
itm AS (SELECT i.*, h.uid, pr.product_category_name
        FROM {items} i JOIN hist h USING (order_id)
        LEFT JOIN {products} pr USING (product_id)),
rev AS (SELECT r.*, h.uid FROM {reviews} r JOIN hist h USING (order_id)
        WHERE r.review_answer_timestamp < $as_of),
base AS (
  SELECT uid,
    epoch_us($as_of - max(order_purchase_timestamp)) / 86400e6 AS recency_days,
    epoch_us($as_of - min(order_purchase_timestamp)) / 86400e6 AS tenure_days,
    count(*) AS n_orders,
    count(DISTINCT CAST(order_purchase_timestamp AS DATE)) AS n_purchase_days,
    count(*) FILTER (WHERE order_delivered_customer_date < $as_of) AS n_delivered,
    avg(epoch_us(order_delivered_customer_date - order_purchase_timestamp) / 86400e6)
      FILTER (WHERE order_delivered_customer_date < $as_of) AS avg_delivery_days,
    avg(epoch_us(order_delivered_customer_date - order_estimated_delivery_date) / 86400e6)
      FILTER (WHERE order_delivered_customer_date < $as_of) AS avg_delay_days,
    avg(CASE WHEN order_delivered_customer_date > order_estimated_delivery_date
        THEN 1.0 ELSE 0.0 END)
      FILTER (WHERE order_delivered_customer_date < $as_of) AS late_share,
    arg_max(customer_state, (order_purchase_timestamp, order_id)) AS customer_state
  FROM hist GROUP BY uid),
p AS (
  SELECT uid, sum(payment_value) AS monetary, avg(payment_installments) AS avg_installments,
    max(CASE WHEN payment_type = 'voucher' THEN 1 ELSE 0 END) AS uses_voucher
  FROM pay GROUP BY uid),
pt AS (
  SELECT uid, arg_max(payment_type, (cents, -rank_alpha)) AS preferred_payment_type FROM (
    SELECT uid, payment_type, sum(CAST(round(payment_value * 100) AS BIGINT)) AS cents,
      dense_rank() OVER (ORDER BY payment_type) AS rank_alpha
    FROM pay GROUP BY uid, payment_type) GROUP BY uid),
i AS (
  SELECT uid, count(*) AS n_items, avg(price) AS avg_item_price,
    CASE WHEN sum(price) > 0 THEN sum(freight_value) / sum(price) END AS freight_ratio,
    count(DISTINCT product_category_name) AS n_categories,
    count(DISTINCT seller_id) AS n_sellers
  FROM itm GROUP BY uid),
r AS (
  SELECT uid, count(*) AS n_reviews, avg(review_score) AS avg_review_score,
    min(review_score) AS min_review_score,
    avg(CASE WHEN review_comment_message IS NOT NULL
             AND trim(review_comment_message, E' \\t\\n\\r\\x0b\\x0c') <> ''
        THEN 1.0 ELSE 0.0 END) AS share_reviews_with_comment
  FROM rev GROUP BY uid),
lab AS (
  SELECT e.uid, sum(coalesce(pp.v, 0)) AS future_spend FROM elig e
  LEFT JOIN (SELECT order_id, sum(payment_value) AS v FROM {payments} GROUP BY order_id) pp
    USING (order_id)
  WHERE e.order_purchase_timestamp >= $as_of AND e.order_purchase_timestamp < $end
  GROUP BY e.uid)
SELECT b.uid AS customer_unique_id, recency_days, tenure_days, n_orders, n_purchase_days,
  coalesce(monetary, 0.0) AS monetary, coalesce(monetary, 0.0) / n_orders AS avg_order_value,
  coalesce(n_items, 0) AS n_items, avg_item_price, freight_ratio,
  coalesce(n_categories, 0) AS n_categories, coalesce(n_sellers, 0) AS n_sellers,
  coalesce(n_reviews, 0) AS n_reviews, avg_review_score, min_review_score,
  share_reviews_with_comment, preferred_payment_type, avg_installments,
  coalesce(uses_voucher, 0) AS uses_voucher, n_delivered, avg_delivery_days, avg_delay_days,
  late_share, customer_state
  {label_cols}
FROM base b LEFT JOIN p USING (uid) LEFT JOIN pt USING (uid) LEFT JOIN i USING (uid)
  LEFT JOIN r USING (uid) {label_join}
ORDER BY customer_unique_id
"""


def snapshot(con: duckdb.DuckDBPyConnection, data: str | Path, as_of: datetime, horizon: int = 90):
    """The snapshot at ``as_of`` as a DuckDB relation (labels when the window is covered)."""
    end = as_of + timedelta(days=horizon)
    data = Path(data)
    latest = con.sql(
        f"SELECT max(order_purchase_timestamp) FROM {source(data, 'orders')}"
    ).fetchall()[0][0]
    covered = latest is not None and latest >= end
    sql = QUERY.format(
        **{k: source(data, k) for k in SOURCES},
        label_cols=(", CASE WHEN lab.uid IS NULL THEN 0 ELSE 1 END AS bought_again, "
                    "coalesce(lab.future_spend, 0.0) AS future_spend") if covered else "",
        label_join="LEFT JOIN lab USING (uid)" if covered else "",
    )  # fmt: skip
    return con.sql(sql, params={"as_of": as_of, "end": end})


def main(argv: list[str]) -> None:
    data, as_of, out = argv[0], datetime.fromisoformat(argv[1]), argv[2]
    horizon = int(argv[3]) if len(argv) > 3 else 90
    con = duckdb.connect()
    table = snapshot(con, data, as_of, horizon).to_arrow_table()
    con.from_arrow(table).write_parquet(out)


if __name__ == "__main__":
    main(sys.argv[1:])
