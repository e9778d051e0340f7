"""The per-customer feature table as the ``features`` command makes it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
from polars._typing import EngineType

from olist_fast.data import (
    Source,
    Tables,
    default_as_of,
    named_read_errors,
    read_source,
)
from olist_fast.errors import OlistDataError
from olist_fast.features import FEATURES, build_snapshots
from olist_fast.features.orders import PURCHASE
from olist_fast.io import Location, StorageOptions, is_url, local_path, write_frame

log = logging.getLogger("olist_fast")


def feature_table(
    data: Location | None = None,
    *,
    tables: Tables | None = None,
    as_of: date | datetime | str | None = None,
    horizon_days: int = 90,
    engine: EngineType | None = None,
    strict: bool = False,
    storage_options: StorageOptions = None,
) -> pl.DataFrame:
    """The per-customer feature table (the feature contract) as of a date, as the
    ``features`` command writes it: ``as_of`` None is the end of the healthy period;
    labels where the data covers their window. An ``as_of`` before the first purchase is
    an error (the table would be empty); a label window that runs past the end of the
    healthy period is a warning (its labels are mostly zeros by construction). A bucketed
    layout (:mod:`olist_fast.layout`) is computed one bucket at a time; the table is the
    same."""
    source = read_source(data, as_of, tables=tables, storage_options=storage_options)
    return _whole_table(source, horizon_days, engine=engine, strict=strict)[0]


def _whole_table(
    source: Source, horizon_days: int, *, engine: EngineType | None, strict: bool
) -> tuple[pl.DataFrame, FeatureShape]:
    """:func:`feature_frames`' pieces put together as one table, with its shape."""
    frames: list[pl.DataFrame] = []
    shape = feature_frames(source, horizon_days, frames.append, engine=engine, strict=strict)
    return (frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")), shape


@dataclass(frozen=True)
class FeatureShape:
    """What a feature table came to: rows, columns, and whether it carries labels."""

    rows: int
    columns: int
    labels: bool


def feature_frames(
    source: Source,
    horizon_days: int,
    consume: Callable[[pl.DataFrame], None],
    *,
    engine: EngineType | None = None,
    strict: bool = False,
) -> FeatureShape:
    """The feature table of ``source`` at its ``as_of``, handed to ``consume`` in pieces
    that, one after the other, are the table in its order: the whole table at once, or
    one bucket at a time for a bucketed layout. The checks of :func:`feature_table` run
    over the whole table."""
    constant = _Constant()
    shape: list[tuple[int, bool]] = []

    def take(frame: pl.DataFrame) -> None:
        constant.see(frame, source.features_off)
        shape.append((frame.width, "bought_again" in frame.columns))
        consume(frame)

    with named_read_errors(source.files):
        if source.layout is None:
            (snap,) = build_snapshots(
                source.tables,
                [source.as_of],
                horizon_days=horizon_days,
                engine=engine or source.engine,
                strict=strict,
            )
            take(snap)
            rows = snap.height
        else:
            from olist_fast.bucketed import BUCKET_ENGINE, snapshots_by_bucket

            done = snapshots_by_bucket(
                source.layout,
                source.coverage,
                source.tables["orders"],
                [source.as_of],
                lambda _, frames: take(frames[0]),
                horizon_days=horizon_days,
                engine=engine or BUCKET_ENGINE,
            )
            done.warn(strict=strict)
            rows = done.rows[0]
        if constant.names() and rows > 1:
            log.warning(
                "features with one value for every customer (their inputs hold nothing "
                "before as_of): %s",
                ", ".join(constant.names()),
            )
        if rows == 0:
            first = source.tables["orders"].select(pl.col(PURCHASE).min()).collect().item()
            raise OlistDataError(
                f"--as-of {source.as_of:%Y-%m-%d} is before the first purchase in the data "
                f"({first or 'none'}): no customer has a history order; choose a later --as-of"
            )
        width, labelled = shape[0]
        if labelled:
            end = source.as_of + timedelta(days=horizon_days)
            healthy_end = default_as_of(source.tables["orders"])
            if end > healthy_end:
                log.warning(
                    "the label window [%s, %s) runs past the end of the healthy period "
                    "(%s): orders there are sparse, so its labels are mostly zeros by "
                    "construction; choose an --as-of at least %d days before %s",
                    f"{source.as_of:%Y-%m-%d}",
                    f"{end:%Y-%m-%d}",
                    f"{healthy_end:%Y-%m-%d}",
                    horizon_days,
                    f"{healthy_end:%Y-%m-%d}",
                )
    return FeatureShape(rows, width, labelled)


class _Constant:
    """Features with one value (null counts as one) over every piece of a table."""

    def __init__(self) -> None:
        self.values: dict[str, set[Any]] = {f: set() for f in FEATURES}

    def see(self, frame: pl.DataFrame, off: frozenset[str]) -> None:
        for f, seen in self.values.items():
            if f in off or len(seen) > 1 or frame.height == 0:
                continue
            seen.update(frame[f].unique(maintain_order=True).head(2).to_list())

    def names(self) -> list[str]:
        return [f for f, seen in self.values.items() if len(seen) == 1]


def write_feature_table(
    out: Location,
    data: Location | None = None,
    *,
    tables: Tables | None = None,
    as_of: date | datetime | str | None = None,
    horizon_days: int = 90,
    engine: EngineType | None = None,
    strict: bool = False,
    storage_options: StorageOptions = None,
) -> FeatureShape:
    """:func:`feature_table` written to ``out`` (.parquet or .csv, a path or a URL), as
    the ``features`` command does: from a bucketed layout to a local file one bucket at a
    time (the whole table is never in memory), renamed into place once complete."""
    source = read_source(data, as_of, tables=tables, storage_options=storage_options)
    if source.layout is None or is_url(out):
        table, shape = _whole_table(source, horizon_days, engine=engine, strict=strict)
        write_frame(table, out, storage_options=storage_options)
        return shape
    from olist_fast.bucketed import appending

    with appending(local_path(out)) as append:
        return feature_frames(source, horizon_days, append, engine=engine, strict=strict)
