"""Compact join keys: the Olist ids as 128-bit integers instead of 32-character strings.

Every Olist id (order, customer, product, seller) is 32 lowercase hex digits. As text
each costs a 16-byte view plus 32 bytes of data, and every join and group-by of the
feature plan hashes and compares those 32 bytes; as a ``UInt128`` it is 16 bytes
compared in one step. Every id the plan joins, counts, groups or sorts on is converted
right after parsing (under the streaming engine, chunk by chunk). Measured at scale 10
from CSV (in-memory engine): peak memory 1.44 -> 1.12 GiB, time unchanged or better.
``customer_unique_id``, the one id the plan outputs, is converted too and turned back
into its text once, on the finished table (:func:`text_ids`): its group-bys, the labels'
join and the final sort then work on integers (the numbers: docs/performance.md).

The conversion is exact only for ids of exactly 32 lowercase hex digits (the numeric
order of such ids is their text order, so the latest-order tie on ``order_id`` is
unchanged). Any other id (``"o1"``, upper case, another length) is mapped to a marker
that the strict integer parser rejects, so a plan on such data fails at collect time
instead of aliasing two ids; :func:`build_snapshots` then runs the text-keyed plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

import polars as pl

ID_COLUMNS: dict[str, tuple[str, ...]] = {
    "orders": ("order_id", "customer_id"),
    "customers": ("customer_id", "customer_unique_id"),
    "order_items": ("order_id", "product_id", "seller_id"),
    "order_payments": ("order_id",),
    "order_reviews": ("order_id",),
    "products": ("product_id",),
}
"""The id columns the feature plan joins, counts, groups or sorts on. Of these only
``customer_unique_id`` is output: :func:`text_ids` turns it back into text."""
OUTPUT_IDS: tuple[str, ...] = ("customer_unique_id",)
NOT_HEX_ID = "<an id that is not 32 lowercase hex digits>"


def compact_id(column: str) -> pl.Expr:
    """``column`` (32-lowercase-hex text) as UInt128; other text fails at collect time."""
    c = pl.col(column)
    # the strict parser itself rejects any character but 0-9, a-f, A-F and a leading "+";
    # rejecting those two here as well leaves exactly 32 lowercase hex digits (a full
    # regular expression for that is slower than this check)
    exact = (c.str.len_bytes() == 32) & ~c.str.contains("[A-F+]")
    return (
        pl.when(exact | c.is_null())
        .then(c)
        .otherwise(pl.lit(NOT_HEX_ID))
        .str.to_integer(base=16, dtype=pl.UInt128, strict=True)
    )


def compact_ids(tables: Mapping[str, pl.LazyFrame]) -> dict[str, pl.LazyFrame]:
    """``tables`` with the id columns of :data:`ID_COLUMNS` as UInt128 (LazyFrame in/out).

    The feature plan gives the same result on the converted tables as on the text ones
    when every id is 32 lowercase hex digits (as in the Olist data); otherwise
    collecting fails with an error that :func:`is_not_hex_error` recognises.
    Columns that are not text (already converted) are left as they are.
    """
    out = dict(tables)
    for name, columns in ID_COLUMNS.items():
        if name not in out:
            continue
        schema = out[name].collect_schema()
        text = [c for c in columns if schema.get(c) == pl.String]
        if text:
            out[name] = out[name].with_columns(compact_id(c) for c in text)
    return out


def is_not_hex_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the failure of :func:`compact_id` on an id it cannot convert."""
    return isinstance(exc, pl.exceptions.ComputeError) and NOT_HEX_ID in str(exc)


@cache
def _four_digits() -> pl.Series:
    """Every 16-bit value as its 4 lowercase hex digits, indexed by the value (built as
    the 256 byte values' two digits crossed with themselves, quicker than formatting
    65,536 numbers in Python)."""
    two = pl.DataFrame({"hi": [f"{i:02x}" for i in range(256)]})
    pairs = two.join(two.rename({"hi": "lo"}), how="cross", maintain_order="left_right")
    return pairs.select(pl.concat_str("hi", "lo").alias("digits")).to_series()


def text_id(column: str) -> pl.Expr:
    """``column`` (UInt128 from :func:`compact_id`) back as 32 lowercase hex digits, the
    inverse of :func:`compact_id` (nulls stay null).

    A plain expression: the two 64-bit halves, each cut into four 16-bit pieces, each
    piece's 4 digits looked up by position in a 65,536-entry table, the 8 lookups
    concatenated. Nothing is imported for it: a NumPy version was slower, and its import
    alone showed in a small ``features`` run (docs/performance.md).
    """
    two_64 = pl.lit(1 << 64, dtype=pl.UInt128)
    halves = ((pl.col(column) // two_64).cast(pl.UInt64), (pl.col(column) % two_64).cast(pl.UInt64))
    table = pl.lit(_four_digits())
    pieces = [
        table.gather(((half // (1 << (16 * k))) % (1 << 16)).cast(pl.UInt32))
        for half in halves
        for k in (3, 2, 1, 0)
    ]
    return pl.concat_str(pieces).alias(column)


def text_ids(frame: pl.LazyFrame) -> pl.LazyFrame:
    """``frame`` with the output ids (:data:`OUTPUT_IDS`) that are UInt128 back as text;
    text ids are left as they are. The integers sort as their text does, so a table
    sorted on them stays sorted."""
    schema = frame.collect_schema()
    wide = [c for c in OUTPUT_IDS if schema.get(c) == pl.UInt128]
    return frame.with_columns(text_id(c) for c in wide) if wide else frame
