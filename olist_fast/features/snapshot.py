"""Snapshots: the feature table at one ``as_of`` plus its labels when the data covers them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import polars as pl
from polars._typing import EngineType

from olist_fast.features.customers import build_customer_grain
from olist_fast.features.keys import compact_ids, is_not_hex_error
from olist_fast.features.labels import (
    LABELS,
    add_labels,
    build_labels,
    label_window_covered,
    latest_purchase,
)
from olist_fast.features.orders import build_order_grain, with_shared_facts


def _snapshot_plan(
    tables: Mapping[str, pl.LazyFrame], *, as_of: datetime, horizon_days: int, covered: bool
) -> pl.LazyFrame:
    tables = tables if "customer_orders" in tables else with_shared_facts(tables)
    features = build_customer_grain(build_order_grain(tables, as_of=as_of), as_of=as_of)
    if not covered:
        return features
    return add_labels(features, build_labels(tables, as_of=as_of, horizon_days=horizon_days))


def _check(as_of: datetime, horizon_days: int) -> None:
    if not isinstance(as_of, datetime):
        raise TypeError(f"as_of must be a datetime, got {type(as_of).__name__}")
    if horizon_days < 1:
        raise ValueError(f"horizon_days must be >= 1, got {horizon_days}")


def build_snapshot(
    tables: Mapping[str, pl.LazyFrame], *, as_of: datetime, horizon_days: int = 90
) -> pl.LazyFrame:
    """The snapshot at ``as_of`` as one lazy plan.

    The label columns ``bought_again`` and ``future_spend`` are present only when the
    latest purchase in the data is at or after ``as_of + horizon_days``; deciding that
    reads the purchase column once, eagerly.
    """
    _check(as_of, horizon_days)
    latest = latest_purchase(tables["orders"]).collect().item()
    covered = label_window_covered(latest, as_of=as_of, horizon_days=horizon_days)
    return _snapshot_plan(tables, as_of=as_of, horizon_days=horizon_days, covered=covered)


def build_snapshots(
    tables: Mapping[str, pl.LazyFrame],
    as_ofs: Sequence[datetime],
    *,
    horizon_days: int = 90,
    labels: Sequence[bool | None] | None = None,
    engine: EngineType = "auto",
    compact: bool | None = None,
) -> list[pl.DataFrame]:
    """Snapshots at several dates, collected together with ``pl.collect_all``: the inputs
    are parsed once, and the date-independent parts (item and payment facts, the latest
    purchase that decides label coverage) are computed once.

    ``labels`` (one entry per date) forces the label columns on (True) or off (False);
    None keeps the contract's rule (present when the latest purchase reaches the window's
    end). Forcing them on is for callers who know the data is complete up to the window's
    end, such as a backtest that treats its own ``as_of`` as "now".

    ``compact`` joins on the ids as 128-bit integers (:mod:`olist_fast.features.keys`):
    True requires every id to be 32 lowercase hex digits, False keeps them text, None
    (the default) tries the integers and falls back to text for other ids. The result
    is the same either way.
    """
    for a in as_ofs:
        _check(a, horizon_days)
    wanted = list(labels) if labels is not None else [None] * len(as_ofs)
    if len(wanted) != len(as_ofs):
        raise ValueError(f"labels has {len(wanted)} entries for {len(as_ofs)} dates")

    def collect(keyed: Mapping[str, pl.LazyFrame]) -> list[pl.DataFrame]:
        keyed = with_shared_facts(keyed)  # the latest purchase comes from the same orders scan
        plans = [
            _snapshot_plan(keyed, as_of=a, horizon_days=horizon_days, covered=w is not False)
            for a, w in zip(as_ofs, wanted, strict=True)
        ]
        return pl.collect_all([latest_purchase(keyed["orders"]), *plans], engine=engine)

    if compact is False:
        latest, *snaps = collect(tables)
    else:
        try:
            latest, *snaps = collect(compact_ids(tables))
        except pl.exceptions.ComputeError as exc:
            if not is_not_hex_error(exc):
                raise
            if compact:
                raise ValueError(
                    "compact=True needs every order, customer, product and seller id to be"
                    " 32 lowercase hex digits, as in the Olist data; pass compact=None"
                ) from None
            latest, *snaps = collect(tables)
    last = latest.item()
    out = []
    for a, w, snap in zip(as_ofs, wanted, snaps, strict=True):
        keep = (
            w if w is not None else label_window_covered(last, as_of=a, horizon_days=horizon_days)
        )
        out.append(snap if keep or w is False else snap.drop(LABELS))
    return out
