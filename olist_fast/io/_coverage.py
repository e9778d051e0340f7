"""What the inputs lack (:class:`Coverage`), and the plan's tables completed without it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from olist_fast.errors import OlistDataError
from olist_fast.schema import (
    ORDER_ITEMS,
    ORDER_PAYMENTS,
    PLAN_TABLES,
    TABLES,
    empty_table,
    features_lost,
)

log = logging.getLogger("olist_fast")


@dataclass
class Coverage:
    """What the inputs lack: tables absent or without rows, and absent columns. The
    features they feed are empty for every customer (the contract's values for "nothing
    to aggregate"), and the model stage leaves them out."""

    tables: dict[str, str] = field(default_factory=dict)
    """Table name -> why it is empty (``no file``, ``header only``, ``no rows``)."""
    columns: dict[str, list[str]] = field(default_factory=dict)
    """Table name -> its absent columns."""
    amount_from_items: bool = False

    def features_off(self) -> dict[str, str]:
        """Each feature switched off, with the reason."""
        off: dict[str, str] = {}
        for table, why in self.tables.items():
            for f in features_lost(table):
                off.setdefault(f, f"{TABLES[table].stem}: {why}")
        for table, columns in self.columns.items():
            for c in columns:
                for f in features_lost(table, c):
                    off.setdefault(f, f"{TABLES[table].stem}: no column {c}")
        return off

    def no_amounts(self, where: str) -> OlistDataError:
        """The error for inputs with neither payments nor items to take amounts from."""
        return OlistDataError(
            f"{where}: no order amounts: {TABLES[ORDER_PAYMENTS].stem} "
            f"({self.tables[ORDER_PAYMENTS]}) and {TABLES[ORDER_ITEMS].stem} "
            f"({self.tables[ORDER_ITEMS]}); expected payment_value or price per order"
        )

    def message(self) -> str | None:
        """One line naming what is off and why, or None when nothing is."""
        by_reason: dict[str, list[str]] = {}
        for f, why in self.features_off().items():
            by_reason.setdefault(why, []).append(f)
        parts = [f"{', '.join(fs)} ({why})" for why, fs in by_reason.items()]
        if self.amount_from_items:
            parts.append("order amounts taken from order_items (price + freight_value)")
        if not parts:
            return None
        return "features off, empty for every customer: " + "; ".join(parts)


def payments_from_items(items: pl.LazyFrame) -> pl.LazyFrame:
    """One payment row per order of ``items``: its price plus freight (for shops that have
    no payments table)."""
    value = pl.col("price") + pl.col("freight_value").fill_null(0.0)
    spec = TABLES[ORDER_PAYMENTS]
    return (
        items.group_by("order_id")
        .agg(value.sum().alias("payment_value"))
        .with_columns(
            pl.lit(1, dtype=pl.Int64).alias("payment_sequential"),
            pl.lit(None, dtype=pl.String).alias("payment_type"),
            pl.lit(None, dtype=pl.Int64).alias("payment_installments"),
        )
        .select(spec.schema.names())
    )


def complete_tables(
    frames: Mapping[str, pl.LazyFrame], coverage: Coverage, *, where: str
) -> dict[str, pl.LazyFrame]:
    """``frames`` with every table of the plan: an absent one as an empty table, absent or
    empty payments derived from the items (:func:`payments_from_items`). Logs the one
    warning of :meth:`Coverage.message`; no amount at all is an :class:`OlistDataError`."""
    out = dict(frames)
    for name in PLAN_TABLES:
        if name not in out:
            out[name] = empty_table(name)
            coverage.tables.setdefault(name, "no file")
    if ORDER_PAYMENTS in coverage.tables:
        if ORDER_ITEMS in coverage.tables:
            raise coverage.no_amounts(where)
        out[ORDER_PAYMENTS] = payments_from_items(out[ORDER_ITEMS])
        coverage.amount_from_items = True
    if (message := coverage.message()) is not None:
        log.warning("%s", message)
    return out
