"""Snapshots: the feature table at one ``as_of`` plus its labels when the data covers them."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime

import polars as pl
from polars._typing import EngineType

from olist_fast.errors import OlistDataError, OlistUsageError
from olist_fast.features.customers import build_customer_grain
from olist_fast.features.keys import ID_COLUMNS, compact_ids, is_not_hex_error, text_ids
from olist_fast.features.labels import (
    LABELS,
    add_labels,
    build_labels,
    label_window_covered,
    latest_purchase,
)
from olist_fast.features.orders import SharedFacts, build_order_grain, with_shared_facts
from olist_fast.schema import NOT_PURCHASE_STATUSES, OLIST_STATUSES, is_eligible
from olist_fast.timestamps import as_datetime

log = logging.getLogger("olist_fast")


@dataclass(frozen=True)
class Integrity:
    """Rows that change the numbers without failing: counted in the same ``collect_all``
    as the snapshots. Each is a count of rows; all zero on clean data."""

    duplicate_orders: int = 0
    """orders rows repeating an ``order_id`` seen in an earlier row: the order counts twice."""
    duplicate_customers: int = 0
    """customers rows repeating a ``customer_id``: its orders multiply in the join."""
    duplicate_payments: int = 0
    """payments rows repeating an (``order_id``, ``payment_sequential``): ``monetary`` and
    the label ``future_spend`` count them twice."""
    duplicate_items: int = 0
    """order_items rows repeating an (``order_id``, ``order_item_id``)."""
    orphan_orders: int = 0
    """orders whose ``customer_id`` is not in customers: left out of every snapshot."""
    undated_orders: int = 0
    """orders without a purchase timestamp: left out of every snapshot."""
    refund_rows: int = 0
    """Negative payment rows (refunds): not a problem, a note (they are net in the sums)."""
    refund_cents: int = 0

    def problems(self) -> list[str]:
        """One phrase per non-zero count."""
        what = {
            "duplicate_orders": "extra orders rows repeat an order_id",
            "duplicate_customers": "extra customers rows repeat a customer_id (its orders "
            "multiply in the join)",
            "duplicate_payments": "extra order_payments rows repeat an (order_id, "
            "payment_sequential) (monetary and future_spend count them twice)",
            "duplicate_items": "extra order_items rows repeat an (order_id, order_item_id)",
            "orphan_orders": "orders have no customer in customers (left out)",
            "undated_orders": "orders have no order_purchase_timestamp (left out)",
        }
        return [f"{n:,} {what[k]}" for k, n in asdict(self).items() if n and k in what]

    def notes(self) -> list[str]:
        """What the data holds that real shops have and the Olist data does not."""
        if not self.refund_rows:
            return []
        return [
            f"{self.refund_rows:,} order_payments rows are negative (refunds), "
            f"{self.refund_cents / 100:,.2f} in all: monetary, avg_order_value and "
            "future_spend are net of them, and a net-negative spend counts as zero for the "
            "spend model"
        ]

    def check(self, *, strict: bool) -> None:
        """Log a warning per problem; with ``strict``, raise on the first instead. The
        notes are warnings either way."""
        for note in self.notes():
            log.warning("%s", note)
        for problem in self.problems():
            if strict:
                raise OlistDataError(f"data integrity: {problem} (strict mode)")
            log.warning("data integrity: %s", problem)


def _repeats(key: str) -> pl.Expr:
    """Rows beyond the first of each non-null ``key`` (a null key repeats nothing; the
    Spark engine counts them the same way)."""
    return (pl.col(key).count() - pl.col(key).drop_nulls().n_unique()).cast(pl.Int64)


def integrity_plan(keyed: SharedFacts) -> pl.LazyFrame:
    """One row of :class:`Integrity` counts over the frames of
    :func:`~olist_fast.features.orders.with_shared_facts`, so no input is read twice.

    Repeated keys are counted as rows beyond the first of each key, so a file loaded
    twice reports its own row count. Items and payments are counted inside the per-order
    group-bys the plan already runs; orders and customers on their cached frames (a
    separate ``is_duplicated`` pass would parse three files a second time)."""
    orders = keyed["orders"]
    people = keyed.people
    matched = orders.join(people.select("customer_id"), on="customer_id", how="semi")
    return pl.concat(
        [
            orders.select(
                _repeats("order_id").alias("duplicate_orders"),
                pl.col("order_purchase_timestamp")
                .null_count()
                .cast(pl.Int64)
                .alias("undated_orders"),
                pl.len().cast(pl.Int64).alias("_orders"),
            ),
            people.select(_repeats("customer_id").alias("duplicate_customers")),
            keyed.payment_repeats.select(
                pl.first().fill_null(0).cast(pl.Int64).alias("duplicate_payments")
            ),
            keyed.item_repeats.select(
                pl.first().fill_null(0).cast(pl.Int64).alias("duplicate_items")
            ),
            matched.select(pl.len().cast(pl.Int64).alias("_matched")),
            keyed.payment_refunds.select(
                pl.all().fill_null(0).cast(pl.Int64).name.map(lambda c: c.lstrip("_"))
            ),
        ],
        how="horizontal",
    ).select(
        "duplicate_orders",
        "duplicate_customers",
        "duplicate_payments",
        "duplicate_items",
        (pl.col("_orders") - pl.col("_matched")).alias("orphan_orders"),
        "undated_orders",
        "refund_rows",
        "refund_cents",
    )


def status_counts(orders: pl.LazyFrame) -> pl.LazyFrame:
    """Orders per status not in the Olist data dictionary (null statuses left out)."""
    status = pl.col("order_status")
    return (
        orders.filter(status.is_not_null() & ~status.is_in(OLIST_STATUSES))
        .group_by("order_status")
        .agg(pl.len().alias("orders"), is_eligible().first().alias("purchase"))
        .sort("orders", "order_status", descending=[True, False])
    )


def status_note(counts: pl.DataFrame) -> str | None:
    """One warning naming the statuses the Olist data dictionary does not know, with their
    counts and how each is treated."""
    if counts.height == 0:
        return None
    parts = [
        f"{r['order_status']!r} ({r['orders']:,} orders, "
        f"{'counted as purchases' if r['purchase'] else 'not purchases'})"
        for r in counts.iter_rows(named=True)
    ]
    return (
        "order statuses not in the Olist data dictionary: "
        + ", ".join(parts)
        + f"; only {', '.join(sorted({s.lower() for s in NOT_PURCHASE_STATUSES}))} are not "
        "purchases (README: Your shop's data)"
    )


def _snapshot_plan(
    tables: Mapping[str, pl.LazyFrame], *, as_of: datetime, horizon_days: int, covered: bool
) -> pl.LazyFrame:
    tables = with_shared_facts(tables)
    grain = build_order_grain(tables, as_of=as_of)
    features = build_customer_grain(grain, as_of=as_of, text_key=False)
    if covered:
        labels = build_labels(tables, as_of=as_of, horizon_days=horizon_days, text_key=False)
        features = add_labels(features, labels)
    return text_ids(features)  # the integer customer_unique_id back as text, once


def _check(as_of: date | datetime | str, horizon_days: int) -> datetime:
    if horizon_days < 1:
        raise OlistUsageError(f"horizon_days must be >= 1, got {horizon_days}")
    return as_datetime(as_of)


def build_snapshot(
    tables: Mapping[str, pl.LazyFrame], *, as_of: date | datetime | str, horizon_days: int = 90
) -> pl.LazyFrame:
    """The snapshot at ``as_of`` as one lazy plan.

    The label columns ``bought_again`` and ``future_spend`` are present only when the
    latest purchase in the data is at or after ``as_of + horizon_days``; deciding that
    reads the purchase column once, eagerly.
    """
    as_of = _check(as_of, horizon_days)
    latest = latest_purchase(tables["orders"]).collect().item()
    covered = label_window_covered(latest, as_of=as_of, horizon_days=horizon_days)
    return _snapshot_plan(tables, as_of=as_of, horizon_days=horizon_days, covered=covered)


@dataclass(frozen=True)
class Collected:
    """What one ``collect_all`` of the snapshot plans gives: the snapshots, the integrity
    counts of the inputs, and the latest purchase (which decided label coverage)."""

    frames: list[pl.DataFrame]
    integrity: Integrity
    latest_purchase: datetime | None
    statuses: pl.DataFrame
    """Orders per status the Olist data dictionary does not know (:func:`status_counts`)."""

    def warn(self, *, strict: bool) -> None:
        """Log the unknown statuses and the integrity counts (raise under ``strict``)."""
        if (note := status_note(self.statuses)) is not None:
            log.warning("%s", note)
        self.integrity.check(strict=strict)

    @staticmethod
    def summed(parts: Sequence[Collected]) -> tuple[Integrity, pl.DataFrame]:
        """The integrity counts and unknown statuses of several collections over disjoint
        rows (the buckets of a layout), as one collection over all of them gives."""
        counts = Integrity(
            **{
                k: sum(getattr(p.integrity, k) for p in parts)
                for k in Integrity.__dataclass_fields__
            }
        )
        frames = [p.statuses for p in parts if p.statuses.height]
        statuses = (
            pl.concat(frames)
            .group_by("order_status")
            .agg(pl.col("orders").sum(), pl.col("purchase").first())
            .sort("orders", "order_status", descending=[True, False])
            if frames
            else parts[0].statuses
        )
        return counts, statuses


def input_tables(tables: Mapping[str, object]) -> dict[str, pl.LazyFrame]:
    """The plan's input tables: typed LazyFrames pass as they are (their plan ids as text
    or as the integers of :func:`~olist_fast.features.keys.compact_ids`), anything else
    (frames in memory, or lazy frames with other types) is converted by
    :func:`olist_fast.io.as_tables`."""
    from olist_fast.io import as_tables
    from olist_fast.schema import PLAN_TABLES, TABLES

    def typed(name: str) -> bool:
        lf = tables.get(name)
        if not isinstance(lf, pl.LazyFrame):
            return False
        have, ids = lf.collect_schema(), ID_COLUMNS.get(name, ())
        want = TABLES[name].schema
        return list(have) == list(want) and all(
            have[c] == t or (c in ids and have[c] == pl.UInt128) for c, t in want.items()
        )

    if all(typed(n) for n in PLAN_TABLES):
        return dict(tables)  # type: ignore[arg-type]
    return as_tables(tables)


def build_snapshots(
    tables: Mapping[str, object],
    as_ofs: Sequence[date | datetime | str],
    *,
    horizon_days: int = 90,
    labels: Sequence[bool | None] | None = None,
    engine: EngineType = "auto",
    compact: bool | None = None,
    strict: bool = False,
) -> list[pl.DataFrame]:
    """Snapshots at several dates, collected together with ``pl.collect_all``: the inputs
    are parsed once, and the date-independent parts (item and payment facts, the latest
    purchase that decides label coverage) are computed once.

    ``tables`` maps table names to typed LazyFrames (:func:`olist_fast.scan_olist`) or to
    frames in memory (Polars, pyarrow or pandas; converted by
    :func:`olist_fast.io.as_tables`). Rows that change the numbers without failing
    (duplicate keys, orders without a customer or a purchase time) are counted in the
    same collection and logged as warnings; ``strict`` makes them an error
    (:class:`Integrity`).

    ``labels`` (one entry per date) forces the label columns on (True) or off (False);
    None keeps the contract's rule (present when the latest purchase reaches the window's
    end). Forcing them on is for callers who know the data is complete up to the window's
    end, such as a backtest that treats its own ``as_of`` as "now".

    ``compact`` joins on the ids as 128-bit integers (:mod:`olist_fast.features.keys`):
    True requires every id (``order_id``, ``customer_id``, ``customer_unique_id``,
    ``product_id``, ``seller_id``) to be 32 lowercase hex digits, False keeps them text,
    None (the default) tries the integers and falls back to text keys for all of them
    when any is not. The result is the same either way.
    """
    got = collect_snapshots(
        tables, as_ofs, horizon_days=horizon_days, labels=labels, engine=engine, compact=compact
    )
    got.warn(strict=strict)
    return got.frames


def collect_snapshots(
    tables: Mapping[str, object],
    as_ofs: Sequence[date | datetime | str],
    *,
    horizon_days: int = 90,
    labels: Sequence[bool | None] | None = None,
    engine: EngineType = "auto",
    compact: bool | None = None,
) -> Collected:
    """:func:`build_snapshots` without acting on the integrity counts and the unknown
    statuses: they are returned (:meth:`Collected.warn` acts on them)."""
    dates = [_check(a, horizon_days) for a in as_ofs]
    inputs = input_tables(tables)
    wanted = list(labels) if labels is not None else [None] * len(dates)
    if len(wanted) != len(dates):
        raise OlistUsageError(f"labels has {len(wanted)} entries for {len(dates)} dates")

    def collect(keyed: Mapping[str, pl.LazyFrame]) -> list[pl.DataFrame]:
        # the latest purchase comes from the same orders scan
        keyed = with_shared_facts(keyed, dates=len(dates))
        plans = [
            _snapshot_plan(keyed, as_of=a, horizon_days=horizon_days, covered=w is not False)
            for a, w in zip(dates, wanted, strict=True)
        ]
        return pl.collect_all(
            [
                latest_purchase(keyed["orders"]),
                integrity_plan(keyed),
                status_counts(keyed["orders"]),
                *plans,
            ],
            engine=engine,
        )

    from olist_fast.io import reading

    with reading():  # a value Polars cannot parse or cast is the data's fault: one line
        if compact is False:
            latest, counts, statuses, *snaps = collect(inputs)
        else:
            try:
                latest, counts, statuses, *snaps = collect(compact_ids(inputs))
            except pl.exceptions.ComputeError as exc:
                if not is_not_hex_error(exc):
                    raise
                if compact:
                    raise OlistUsageError(
                        "compact=True needs every order_id, customer_id, customer_unique_id,"
                        " product_id and seller_id to be 32 lowercase hex digits, as in the"
                        " Olist data; pass compact=None"
                    ) from None
                latest, counts, statuses, *snaps = collect(inputs)
    last = latest.item()
    out = []
    for a, w, snap in zip(dates, wanted, snaps, strict=True):
        keep = (
            w if w is not None else label_window_covered(last, as_of=a, horizon_days=horizon_days)
        )
        out.append(snap if keep or w is False else snap.drop(LABELS))
    return Collected(out, Integrity(**counts.row(0, named=True)), last, statuses)
