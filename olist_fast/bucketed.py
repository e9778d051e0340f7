"""The feature plan over a bucketed layout (:mod:`olist_fast.layout`), one bucket at a time.

The plan is per customer and every row of a customer is in one bucket, so each bucket's
snapshot is exactly the rows of the whole data's snapshot for its customers; the buckets
are ranges of ``customer_unique_id``, so their snapshots, one after the other, are the
whole snapshot in its order. What is decided over all the data is decided once, before
any bucket: the label coverage (the latest purchase) and the default ``as_of`` (the
caller's). The integrity counts and unknown statuses are summed over the buckets, which
hold disjoint rows, and reported once at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import polars as pl
from polars._typing import EngineType

from olist_fast.errors import OlistDataError, OlistUsageError
from olist_fast.features.labels import label_window_covered, latest_purchase
from olist_fast.features.snapshot import Collected, Integrity, collect_snapshots
from olist_fast.io import Coverage, atomic_path, reading
from olist_fast.layout import Layout
from olist_fast.timestamps import as_datetime

Consume = Callable[[int, list[pl.DataFrame]], None]
BUCKET_ENGINE: EngineType = "in-memory"
"""The Polars engine for one bucket's plan: a bucket is small enough to hold, and the
in-memory engine runs it faster than the streaming one (docs/performance.md)."""


@dataclass(frozen=True)
class BucketedRun:
    """What the buckets gave besides their snapshots: the integrity counts and unknown
    statuses over all of them, the latest purchase, the rows per date."""

    summary: Collected
    rows: list[int]

    def warn(self, *, strict: bool) -> None:
        self.summary.warn(strict=strict)


def snapshots_by_bucket(
    layout: Layout,
    coverage: Coverage,
    orders: pl.LazyFrame,
    as_ofs: Sequence[date | datetime | str],
    consume: Consume,
    *,
    horizon_days: int = 90,
    labels: Sequence[bool | None] | None = None,
    engine: EngineType = BUCKET_ENGINE,
) -> BucketedRun:
    """Build the snapshots at ``as_ofs`` one bucket at a time and hand each bucket's
    frames (one per date, sorted) to ``consume(bucket, frames)``, in bucket order.
    ``orders`` are every bucket's orders (the label coverage is decided on them);
    ``coverage`` what the source lacked (:meth:`olist_fast.layout.Layout.scan`)."""
    dates = [as_datetime(a) for a in as_ofs]
    wanted = list(labels) if labels is not None else [None] * len(dates)
    if len(wanted) != len(dates):
        raise OlistUsageError(f"labels has {len(wanted)} entries for {len(dates)} dates")
    with reading("the orders"):
        latest = latest_purchase(orders).collect().item()
    covered = [
        w if w is not None else label_window_covered(latest, as_of=a, horizon_days=horizon_days)
        for a, w in zip(dates, wanted, strict=True)
    ]
    parts: list[Collected] = []
    rows = [0] * len(dates)

    def collect(k: int) -> Collected:
        return collect_snapshots(
            layout.scan_bucket(k, coverage),
            dates,
            horizon_days=horizon_days,
            labels=covered,
            engine=engine,
            compact=layout.plan_compact,
        )

    # the next bucket's plan runs (Polars, without the GIL) while this one's frames are
    # consumed: two buckets in memory at most
    with ThreadPoolExecutor(1) as ahead:
        pending = ahead.submit(collect, 0) if layout.buckets else None
        for k in range(layout.buckets):
            assert pending is not None
            got = pending.result()
            pending = ahead.submit(collect, k + 1) if k + 1 < layout.buckets else None
            consume(k, got.frames)
            rows = [r + f.height for r, f in zip(rows, got.frames, strict=True)]
            parts.append(Collected([], got.integrity, got.latest_purchase, got.statuses))
    counts, statuses = Collected.summed(parts) if parts else (Integrity(), pl.DataFrame())
    return BucketedRun(Collected([], counts, latest, statuses), rows)


@contextmanager
def appending(target: Path) -> Iterator[Callable[[pl.DataFrame], None]]:
    """Yield a function that appends frames to ``target`` (.parquet: one row group or
    more per frame; .csv: the header once), written to a temporary file renamed over
    ``target`` only once every frame is in. The frames share one schema."""
    suffix = target.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise OlistDataError(f"{target}: unsupported output extension (expected .parquet or .csv)")
    with atomic_path(target) as tmp:
        if suffix == ".csv":
            with tmp.open("wb") as fh:
                first = [True]

                def to_csv(frame: pl.DataFrame) -> None:
                    frame.write_csv(fh, include_header=first[0])
                    first[0] = False

                yield to_csv
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        writer: list[pq.ParquetWriter] = []
        schema: list[pa.Schema] = []  # the first frame's, which every frame is cast to

        def open_writer(frame: pl.DataFrame) -> pq.ParquetWriter:
            # the dictionaries are chosen on the first frame with rows
            writer.append(
                pq.ParquetWriter(
                    tmp, schema[0], compression="snappy", use_dictionary=dictionary_columns(frame)
                )
            )
            return writer[0]

        try:

            def to_parquet(frame: pl.DataFrame) -> None:
                table = frame.to_arrow()
                if not schema:
                    schema.append(table.schema)
                if frame.height == 0:
                    return
                (writer[0] if writer else open_writer(frame)).write_table(table.cast(schema[0]))

            yield to_parquet
            if not writer and schema:  # no frame had rows: the file holds the schema
                open_writer(pl.DataFrame())
        finally:
            for w in writer:
                w.close()


def dictionary_columns(frame: pl.DataFrame) -> list[str]:
    """The columns worth a Parquet dictionary: at most half of the frame's rows distinct.
    A column of mostly distinct values (a float feature such as ``recency_days``) is
    written plain: the dictionary the writer would build and then abandon costs several
    times the plain encoding and its file is no smaller (docs/performance.md)."""
    if frame.height == 0:
        return []
    distinct = frame.select(pl.all().n_unique()).row(0)
    return [c for c, n in zip(frame.columns, distinct, strict=True) if 2 * n <= frame.height]
