"""Rows whose own timestamp is at or after ``as_of`` never change a feature."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from olist_fast.features import build_snapshot
from tests.helpers import features

AS_OF = datetime(2018, 3, 1)
PURCHASE = "order_purchase_timestamp"
ANSWER = "review_answer_timestamp"


def future_order_ids(t: dict[str, pl.DataFrame]) -> pl.Series:
    return t["orders"].filter(pl.col(PURCHASE) >= AS_OF)["order_id"]


def mutate(t: dict[str, pl.DataFrame], seed: int, drop: float, edit: float, add: int):
    """Delete, change and append rows whose own timestamp is >= AS_OF."""
    rng = np.random.default_rng(seed)
    t = dict(t)
    future = future_order_ids(t)
    doomed = future.filter(pl.Series(rng.random(future.len()) < drop))
    # delete: future orders with their items and payments, late-answered reviews
    for name in ("orders", "order_items", "order_payments"):
        t[name] = t[name].filter(~pl.col("order_id").is_in(doomed.implode()))
    late_review = pl.col(ANSWER) >= AS_OF
    keep = pl.Series(rng.random(t["order_reviews"].height) >= drop)
    t["order_reviews"] = t["order_reviews"].filter(~late_review | keep)
    # change: statuses, values and scores of future rows
    future = future_order_ids(t).implode()
    flip = pl.Series(rng.random(t["orders"].height) < edit)
    t["orders"] = t["orders"].with_columns(
        pl.when(pl.col("order_id").is_in(future) & flip)
        .then(pl.lit("canceled"))
        .otherwise(pl.col("order_status"))
        .alias("order_status")
    )
    bump = pl.Series(rng.random(t["order_payments"].height) < edit)
    t["order_payments"] = t["order_payments"].with_columns(
        pl.when(pl.col("order_id").is_in(future) & bump)
        .then(pl.col("payment_value") * 3 + 1)
        .otherwise(pl.col("payment_value"))
    )
    rescore = pl.Series(rng.random(t["order_reviews"].height) < edit)
    t["order_reviews"] = t["order_reviews"].with_columns(
        pl.when(late_review & rescore)
        .then(6 - pl.col("review_score"))
        .otherwise("review_score")
        .alias("review_score")
    )
    # append: new orders of existing people at or after AS_OF, with items, payments, reviews
    people = t["customers"].sample(add, with_replacement=True, seed=seed)
    new_ids = [f"{seed:016x}{i:016x}" for i in range(add)]  # new, and hex like the real ids
    when = [AS_OF + timedelta(seconds=int(s)) for s in rng.integers(0, 200 * 86400, add)]
    cust = people.with_columns(customer_id=pl.Series(new_ids))
    t["customers"] = pl.concat([t["customers"], cust])
    t["orders"] = pl.concat([t["orders"], t["orders"].head(add).with_columns(
        order_id=pl.Series(new_ids), customer_id=pl.Series(new_ids),
        order_purchase_timestamp=pl.Series(when, dtype=pl.Datetime("us")),
        order_status=pl.lit("delivered"),
    )])  # fmt: skip
    for name in ("order_items", "order_payments"):
        t[name] = pl.concat([t[name], t[name].head(add).with_columns(order_id=pl.Series(new_ids))])
    old_orders = t["orders"]["order_id"].sample(add, with_replacement=True, seed=seed)
    t["order_reviews"] = pl.concat([t["order_reviews"], t["order_reviews"].head(add).with_columns(
        order_id=old_orders, review_score=pl.lit(1, dtype=pl.Int64),
        review_answer_timestamp=pl.Series(when, dtype=pl.Datetime("us")),
    )])  # fmt: skip
    return t


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    drop=st.floats(0, 1),
    edit=st.floats(0, 1),
    add=st.integers(0, 40),
)
def test_rows_at_or_after_as_of_never_change_features(
    small_tables: dict[str, pl.DataFrame], seed: int, drop: float, edit: float, add: int
) -> None:
    changed = mutate(small_tables, seed, drop, edit, add)
    before = features(small_tables, AS_OF)
    assert before.equals(features(changed, AS_OF))
    assert before.equals(features(changed, AS_OF, compact=True))  # and integer keys agree


def test_the_mutation_does_change_labels(small_tables: dict[str, pl.DataFrame]) -> None:
    """Guard: the mutations reach rows that matter (the labels move)."""
    lazy = {k: v.lazy() for k, v in small_tables.items()}
    a = build_snapshot(lazy, as_of=AS_OF, horizon_days=90).collect()
    changed = {k: v.lazy() for k, v in mutate(small_tables, 1, 0.5, 0.5, 30).items()}
    b = build_snapshot(changed, as_of=AS_OF, horizon_days=90).collect()
    assert not a["future_spend"].equals(b["future_spend"])
