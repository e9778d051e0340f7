"""From a snapshot to a numpy matrix: a fitted encoding kept as plain data (JSON-safe).

Numeric features pass through with nulls as NaN (the tree models split on missing
values; the linear model imputes), plus a 0/1 indicator for each feature that can be
empty (no reviews, no deliveries, ...). Categorical features are one-hot encoded with
the categories seen in the training snapshot (rare ones folded into ``other``). A
column that takes one value (or is missing) for every training row is left out: a shop
without reviews or delivery dates has such columns, and some estimators cannot take
them. The fitted encoding is a list of polars expressions with the learned categories
and the columns left out baked in as literals, so applying it stays one lazy projection,
and a saved model encodes new data exactly as its training data was encoded.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from olist_fast.features import CATEGORICAL, FEATURES

NUMERIC: tuple[str, ...] = tuple(f for f in FEATURES if f not in CATEGORICAL)
# features that are null when there is nothing to aggregate (the contract's empty cases)
NULLABLE: tuple[str, ...] = (
    "avg_item_price",
    "freight_ratio",
    "avg_review_score",
    "min_review_score",
    "share_reviews_with_comment",
    "avg_installments",
    "avg_delivery_days",
    "avg_delay_days",
    "late_share",
)
OTHER = "other"


@dataclass(frozen=True, kw_only=True)
class Encoding:
    """The learned part of the encoding: the categories kept per categorical feature."""

    categories: dict[str, list[str]]
    dropped: list[str] = field(default_factory=list)
    """Encoded columns left out: one value, or missing, for every training row."""

    @classmethod
    def fit(cls, snapshot: pl.DataFrame | pl.LazyFrame, *, min_count: int = 20) -> Encoding:
        """Learn the encoding from training rows (a frame, or a lazy one that is read
        without being collected whole)."""
        return cls.from_stats(EncodingStats.of(snapshot), min_count=min_count)

    @classmethod
    def from_stats(cls, stats: EncodingStats, *, min_count: int = 20) -> Encoding:
        """The encoding :meth:`fit` learns from rows whose :class:`EncodingStats` these
        are (summed over pieces of the rows, it is the encoding of all of them)."""
        cats = {
            col: sorted(v for v, n in stats.counts[col].items() if v is not None and n >= min_count)
            for col in CATEGORICAL
        }
        rows = stats.rows
        # a column is left out when it takes one value or is missing for every row (NaN
        # counts as missing); a 0/1 column, when its ones are none or every row
        constant = [
            c
            for c in NUMERIC
            if stats.missing[c] == rows or (stats.missing[c] == 0 and stats.low[c] == stats.high[c])
        ]
        ones = {f"{c}_missing": stats.nulls[c] for c in NULLABLE}
        for col in CATEGORICAL:
            counts = stats.counts[col]
            ones.update({f"{col}={v}": counts.get(v, 0) for v in cats[col]})
            ones[f"{col}={OTHER}"] = rows - sum(counts.get(v, 0) for v in cats[col])
        constant += [name for name, n in ones.items() if n in (0, rows)]
        full = cls(categories=cats)
        return cls(categories=cats, dropped=[n for n in full.names if n in set(constant)])

    @property
    def names(self) -> list[str]:
        return [n for n in self._all_names() if n not in set(self.dropped)]

    def _all_names(self) -> list[str]:
        out = list(NUMERIC) + [f"{c}_missing" for c in NULLABLE]
        for col in CATEGORICAL:  # a fixed order, whatever order the JSON kept
            out += [f"{col}={v}" for v in self.categories[col]] + [f"{col}={OTHER}"]
        return out

    def features_left_out(self) -> list[str]:
        """The features none of whose encoded columns is kept."""
        kept = {n.split("=")[0] for n in self.names}
        return [f for f in FEATURES if f not in kept]

    def expressions(self) -> list[pl.Expr]:
        dropped = set(self.dropped)
        return [e for e in self._all_expressions() if e.meta.output_name() not in dropped]

    def _all_expressions(self) -> list[pl.Expr]:
        exprs = [pl.col(c).cast(pl.Float64).fill_null(float("nan")) for c in NUMERIC]
        exprs += [pl.col(c).is_null().cast(pl.Float64).alias(f"{c}_missing") for c in NULLABLE]
        for col in CATEGORICAL:
            values = self.categories[col]
            c = pl.col(col)
            exprs += [
                (c == v).fill_null(False).cast(pl.Float64).alias(f"{col}={v}") for v in values
            ]
            known = c.is_in(values) if values else pl.lit(False)
            exprs.append((~known.fill_null(False)).cast(pl.Float64).alias(f"{col}={OTHER}"))
        return exprs

    def transform(self, snapshot: pl.DataFrame | pl.LazyFrame) -> np.ndarray:
        """The feature matrix, float64, one row per snapshot row, columns ``names``."""
        frame = snapshot.lazy().select(self.expressions()).collect()
        return frame.to_numpy(order="c").astype(np.float64, copy=False)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> Encoding:
        return cls(**json.loads(path.read_text()))  # saved before ``dropped``: none dropped


@dataclass(frozen=True)
class EncodingStats:
    """What :meth:`Encoding.fit` learns from, as sums that add up over pieces of the rows
    (the buckets of a layout): the rows, per categorical feature the rows of each value
    (``None``: missing), per numeric feature the rows missing (null or NaN) and the
    smallest and largest value, per nullable feature the rows where it is null."""

    rows: int
    counts: dict[str, dict[str | None, int]]
    missing: dict[str, int]
    low: dict[str, float | None]
    high: dict[str, float | None]
    nulls: dict[str, int]

    @classmethod
    def empty(cls) -> EncodingStats:
        return cls(
            0,
            {c: {} for c in CATEGORICAL},
            dict.fromkeys(NUMERIC, 0),
            dict.fromkeys(NUMERIC),
            dict.fromkeys(NUMERIC),
            dict.fromkeys(NULLABLE, 0),
        )

    @classmethod
    def of(cls, snapshot: pl.DataFrame | pl.LazyFrame) -> EncodingStats:
        """The sums of ``snapshot``'s rows, in one pass (min and max stream, where counting
        distinct values of millions of rows hashes them)."""
        lazy = snapshot.lazy()
        values = {c: pl.col(c).cast(pl.Float64).fill_nan(None) for c in NUMERIC}
        numbers, *groups = pl.collect_all(
            [
                lazy.select(
                    pl.len().alias("rows"),
                    *(e.null_count().alias(f"missing:{c}") for c, e in values.items()),
                    *(e.min().alias(f"low:{c}") for c, e in values.items()),
                    *(e.max().alias(f"high:{c}") for c, e in values.items()),
                    *(pl.col(c).is_null().sum().alias(f"nulls:{c}") for c in NULLABLE),
                ),
                *(lazy.group_by(col).len() for col in CATEGORICAL),
            ]
        )
        row = numbers.row(0, named=True)
        return cls(
            rows=row["rows"],
            counts={
                col: dict(g.select(col, "len").iter_rows())
                for col, g in zip(CATEGORICAL, groups, strict=True)
            },
            missing={c: row[f"missing:{c}"] for c in NUMERIC},
            low={c: row[f"low:{c}"] for c in NUMERIC},
            high={c: row[f"high:{c}"] for c in NUMERIC},
            nulls={c: row[f"nulls:{c}"] for c in NULLABLE},
        )

    def __add__(self, other: EncodingStats) -> EncodingStats:
        def lowest(a: float | None, b: float | None) -> float | None:
            return b if a is None else a if b is None else min(a, b)

        def highest(a: float | None, b: float | None) -> float | None:
            return b if a is None else a if b is None else max(a, b)

        counts = {}
        for col in CATEGORICAL:
            merged = dict(self.counts[col])
            for v, n in other.counts[col].items():
                merged[v] = merged.get(v, 0) + n
            counts[col] = merged
        return EncodingStats(
            self.rows + other.rows,
            counts,
            {c: self.missing[c] + other.missing[c] for c in NUMERIC},
            {c: lowest(self.low[c], other.low[c]) for c in NUMERIC},
            {c: highest(self.high[c], other.high[c]) for c in NUMERIC},
            {c: self.nulls[c] + other.nulls[c] for c in NULLABLE},
        )
