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
        lazy = snapshot.lazy()
        cats = {}
        for col in CATEGORICAL:
            counts = lazy.group_by(col).len().filter(pl.col(col).is_not_null())
            kept = counts.filter(pl.col("len") >= min_count).select(col).collect()
            cats[col] = kept[col].sort().to_list()
        full = cls(categories=cats)
        # one value or missing everywhere (NaN counts as missing): every row null, or no
        # row null and the smallest value the largest (min and max stream, where counting
        # distinct values of millions of rows hashes them)
        exprs = [e.fill_nan(None) for e in full._all_expressions()]
        stats = (
            lazy.select(
                pl.len().alias("rows"),
                *(e.null_count().alias(f"n{i}") for i, e in enumerate(exprs)),
                *(e.min().alias(f"lo{i}") for i, e in enumerate(exprs)),
                *(e.max().alias(f"hi{i}") for i, e in enumerate(exprs)),
            )
            .collect()
            .row(0, named=True)
        )
        rows = stats["rows"]
        constant = [
            name
            for i, name in enumerate(full._all_names())
            if stats[f"n{i}"] == rows
            or (stats[f"n{i}"] == 0 and stats[f"lo{i}"] == stats[f"hi{i}"])
        ]
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
