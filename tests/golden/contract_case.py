"""A tiny hand-built Olist dataset covering every edge case of the feature contract,
with the snapshot computed by hand (as_of 2018-03-01, horizon 90 days)."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from olist_fast.schema import TABLES

AS_OF = datetime(2018, 3, 1)
T = datetime.fromisoformat


def frame(name: str, rows: list[dict]) -> pl.LazyFrame:
    """Rows of one table; columns a row leaves out are null."""
    schema = TABLES[name].schema
    return pl.LazyFrame([{c: r.get(c) for c in schema} for r in rows], schema=schema)


CUSTOMERS = [
    ("c1", "U1", "SP"), ("c2", "U1", "RJ"), ("c3", "U1", "MG"),
    ("c4", "U2", "BA"), ("c5", "U2", "SC"), ("c14", "U2", "SC"),
    ("c6", "U3", "PR"), ("c7", "U3", "PE"), ("c12", "U3", "PE"),
    ("c8", "U4", "RS"), ("c9", "U4", "RS"), ("c10", "U4", "AM"), ("c13", "U4", "AM"),
    ("c11", "U5", "SP"),
]  # fmt: skip

# order_id, customer_id, status, purchase, delivered, estimated
ORDERS = [
    ("ord01", "c1", "delivered", "2018-01-10 10:00:00", "2018-01-20 10:00:00", "2018-01-25 00:00:00"),
    ("ord02", "c2", None, "2018-02-10 12:00:00", "2018-03-05 00:00:00", "2018-02-28 00:00:00"),
    ("ord03", "c3", "delivered", "2018-03-01 00:00:00", "2018-03-06 00:00:00", "2018-03-20 00:00:00"),
    ("ord04", "c4", "canceled", "2018-01-05 00:00:00", None, "2018-01-30 00:00:00"),
    ("ord05", "c5", "shipped", "2018-02-01 08:00:00", None, "2018-02-25 00:00:00"),
    ("ord06", "c6", "delivered", "2018-02-15 09:00:00", "2018-02-20 09:00:00", "2018-02-19 00:00:00"),
    ("ord07", "c7", "delivered", "2018-02-15 18:00:00", "2018-02-25 18:00:00", "2018-03-10 00:00:00"),
    ("ord08", "c8", "unavailable", "2018-01-01 00:00:00", None, "2018-01-20 00:00:00"),
    ("ord09", "c9", "approved", "2018-02-20 10:00:00", None, "2018-03-15 00:00:00"),
    ("ord10", "c10", "invoiced", "2018-02-20 10:00:00", None, "2018-03-15 00:00:00"),
    ("ord11", "c11", "delivered", "2018-04-01 00:00:00", None, "2018-04-20 00:00:00"),
    ("ord12", "c12", "delivered", "2018-05-29 23:59:59", None, "2018-06-20 00:00:00"),
    ("ord13", "c13", "delivered", "2018-05-30 00:00:00", None, "2018-06-20 00:00:00"),
    ("ord14", "c14", "canceled", "2018-04-02 00:00:00", None, "2018-04-20 00:00:00"),
]  # fmt: skip

# order_id, item no, product, seller, price, freight
ITEMS = [
    ("ord01", 1, "p1", "s1", 100.00, 10.00),
    ("ord01", 2, "p2", "s2", 50.00, 5.00),
    ("ord02", 1, "p1", "s1", 20.00, 2.00),
    ("ord03", 1, "p3", "s3", 999.00, 1.00),
    ("ord06", 1, "p3", "s1", 30.00, 0.00),
    ("ord07", 1, "p3", "s1", 30.00, 3.00),
    ("ord09", 1, "p4", "s4", 0.00, 5.00),
]
PRODUCTS = [("p1", "cama"), ("p2", None), ("p3", "beleza"), ("p4", "cama")]

# order_id, sequential, type, installments, value
PAYMENTS = [
    ("ord01", 1, "credit_card", 3, 0.10),
    ("ord01", 2, "credit_card", 1, 0.20),
    ("ord01", 3, "voucher", 1, 0.30),
    ("ord02", 1, "boleto", 1, 0.25),
    ("ord03", 1, "credit_card", 1, 500.00),
    ("ord04", 1, "voucher", 1, 10.00),
    ("ord05", 1, "credit_card", 2, 50.00),
    ("ord06", 1, "boleto", 1, 30.00),
    ("ord07", 1, "debit_card", 1, 33.00),
    ("ord09", 1, "voucher", 1, 5.00),
    ("ord12", 1, "credit_card", 4, 40.00),
    ("ord13", 1, "credit_card", 1, 70.00),
    ("ord14", 1, "credit_card", 1, 80.00),
]

# review_id, order_id, score, message, answered
REVIEWS = [
    ("r1", "ord01", 4, "NA", "2018-01-21 00:00:00"),
    ("r2", "ord01", 2, "   ", "2018-02-01 00:00:00"),
    ("r3", "ord02", 1, "ruim", "2018-03-02 00:00:00"),
    ("r4", "ord06", 5, None, "2018-02-21 00:00:00"),
    ("r5", "ord07", 3, "ok", "2018-02-28 23:59:59"),
    ("r6", "ord05", 1, None, "2018-02-10 00:00:00"),
]


def tables() -> dict[str, pl.LazyFrame]:
    return {
        "orders": frame("orders", [
            {"order_id": o, "customer_id": c, "order_status": s,
             "order_purchase_timestamp": T(p), "order_approved_at": T(p),
             "order_delivered_customer_date": T(d) if d else None,
             "order_estimated_delivery_date": T(e)}
            for o, c, s, p, d, e in ORDERS
        ]),
        "customers": frame("customers", [
            {"customer_id": c, "customer_unique_id": u, "customer_zip_code_prefix": "01001",
             "customer_city": "x", "customer_state": s}
            for c, u, s in CUSTOMERS
        ]),
        "order_items": frame("order_items", [
            {"order_id": o, "order_item_id": i, "product_id": p, "seller_id": s,
             "shipping_limit_date": T("2018-01-01 00:00:00"), "price": pr, "freight_value": f}
            for o, i, p, s, pr, f in ITEMS
        ]),
        "products": frame("products", [
            {"product_id": p, "product_category_name": c} for p, c in PRODUCTS
        ]),
        "order_payments": frame("order_payments", [
            {"order_id": o, "payment_sequential": q, "payment_type": t,
             "payment_installments": n, "payment_value": v}
            for o, q, t, n, v in PAYMENTS
        ]),
        "order_reviews": frame("order_reviews", [
            {"review_id": r, "order_id": o, "review_score": s, "review_comment_message": m,
             "review_creation_date": T(a[:10] + " 00:00:00"), "review_answer_timestamp": T(a)}
            for r, o, s, m, a in REVIEWS
        ]),
    }  # fmt: skip


H = 24.0
# fmt: off
EXPECTED = {
    "customer_unique_id":  ["U1", "U2", "U3", "U4"],
    "recency_days":        [18.5, 27 + 16 / H, 13.25, 8 + 14 / H],
    "tenure_days":         [49 + 14 / H, 27 + 16 / H, 13 + 15 / H, 8 + 14 / H],
    "n_orders":            [2, 1, 2, 2],
    "n_purchase_days":     [2, 1, 1, 1],
    "monetary":            [0.85, 50.0, 63.0, 5.0],
    "avg_order_value":     [0.425, 50.0, 31.5, 2.5],
    "n_items":             [3, 0, 2, 1],
    "avg_item_price":      [170 / 3, None, 30.0, 0.0],
    "freight_ratio":       [0.1, None, 0.05, None],
    "n_categories":        [1, 0, 1, 1],
    "n_sellers":           [2, 0, 1, 1],
    "n_reviews":           [2, 1, 2, 0],
    "avg_review_score":    [3.0, 1.0, 4.0, None],
    "min_review_score":    [2, 1, 3, None],
    "share_reviews_with_comment": [0.5, 0.0, 0.5, None],
    "preferred_payment_type": ["credit_card", "credit_card", "debit_card", "voucher"],
    "avg_installments":    [1.5, 2.0, 1.0, 1.0],
    "uses_voucher":        [1, 0, 0, 1],
    "n_delivered":         [1, 0, 2, 0],
    "avg_delivery_days":   [10.0, None, 7.5, None],
    "avg_delay_days":      [-(4 + 14 / H), None, (1.375 - 12.25) / 2, None],
    "late_share":          [0.0, None, 0.5, None],
    "customer_state":      ["RJ", "SC", "PE", "AM"],
    "bought_again":        [1, 0, 1, 0],
    "future_spend":        [500.0, 0.0, 40.0, 0.0],
}
# fmt: on
