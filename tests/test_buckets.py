"""The property the Spark engine rests on, in Polars alone: cut the customers into any
buckets, run the unchanged plan on each bucket's rows with the label coverage decided on
the whole data, concatenate and sort, and the result is the whole data's snapshot."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from olist_fast.features import build_snapshots
from olist_fast.features.labels import label_window_covered
from olist_fast.spark import DataFacts, coverage, plan_is_path_invariant

DATES = [datetime(2017, 6, 1), datetime(2018, 3, 1), datetime(2018, 6, 1, 23, 26, 1),
         datetime(2018, 8, 15)]  # fmt: skip
EXACT = plan_is_path_invariant()


def slice_of(tables: dict[str, pl.DataFrame], people: pl.Series) -> dict[str, pl.LazyFrame]:
    """The rows of ``tables`` that concern ``people``, as the Spark engine ships them."""
    customers = tables["customers"].filter(pl.col("customer_unique_id").is_in(people.implode()))
    orders = tables["orders"].filter(
        pl.col("customer_id").is_in(customers["customer_id"].implode())
    )
    ids = orders["order_id"].implode()
    items = tables["order_items"].filter(pl.col("order_id").is_in(ids))
    products = tables["products"].filter(pl.col("product_id").is_in(items["product_id"].implode()))
    return {
        "orders": orders.lazy(),
        "customers": customers.lazy(),
        "order_items": items.lazy(),
        "order_payments": tables["order_payments"].filter(pl.col("order_id").is_in(ids)).lazy(),
        "order_reviews": tables["order_reviews"].filter(pl.col("order_id").is_in(ids)).lazy(),
        "products": products.lazy(),
    }


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    buckets=st.integers(min_value=1, max_value=6),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    picks=st.lists(st.sampled_from(range(len(DATES))), min_size=1, max_size=3, unique=True),
)
def test_any_split_concatenated_equals_the_whole(small_tables, buckets, seed, picks) -> None:
    dates = [DATES[i] for i in sorted(picks)]
    whole = {n: df.lazy() for n, df in small_tables.items()}
    latest = small_tables["orders"]["order_purchase_timestamp"].max()
    covered = [label_window_covered(latest, as_of=a, horizon_days=90) for a in dates]
    want = build_snapshots(whole, dates, labels=covered)
    people = small_tables["customers"]["customer_unique_id"].unique().sort()
    which = np.random.default_rng(seed).integers(0, buckets, people.len())
    parts = [slice_of(small_tables, people.filter(which == b)) for b in range(buckets)]
    got = [build_snapshots(p, dates, labels=covered) for p in parts]  # empty buckets too
    for j, w in enumerate(want):
        joined = pl.concat([g[j] for g in got], how="vertical").sort("customer_unique_id")
        if EXACT:
            assert_frame_equal(joined, w, check_exact=True)
        else:  # one unit in the last place: see olist_fast.spark.plan_is_path_invariant
            assert_frame_equal(joined, w, rel_tol=4e-16, abs_tol=0.0)


def test_coverage_is_decided_on_all_orders(small_tables) -> None:
    latest = small_tables["orders"]["order_purchase_timestamp"].max()
    facts = DataFacts(latest, small_tables["orders"].height, datetime(2018, 9, 1))
    assert coverage(facts, DATES, 90, None) == [True, True, True, False]
    assert coverage(facts, DATES, 90, [None, False, None, True]) == [True, False, True, True]
