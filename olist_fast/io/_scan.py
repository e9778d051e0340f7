"""Typed lazy readers: the tables' files (CSV, Parquet, local or URL) as LazyFrames."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Literal

import polars as pl

from olist_fast.io._coverage import Coverage, complete_tables
from olist_fast.io._frames import conform_table
from olist_fast.io._locate import (
    Format,
    Location,
    StorageOptions,
    check_columns,
    has_rows,
    locate_olist,
    parquet_schema,
    read_csv_header,
    table_path,
)
from olist_fast.schema import PLAN_TABLES, TABLES, TableSpec
from olist_fast.timestamps import parse_timestamps, sample_shapes


def with_absent_columns(lf: pl.LazyFrame, spec: TableSpec, absent: Iterable[str]) -> pl.LazyFrame:
    """``lf`` with each absent column of ``spec`` added as all null, in ``spec``'s order."""
    absent = list(absent)
    if absent:
        lf = lf.with_columns(pl.lit(None, dtype=spec.schema[c]).alias(c) for c in absent)
    return lf.select(spec.schema.names())


def scan_table(
    path: str | Path,
    spec: TableSpec,
    *,
    header: list[str] | None = None,
    storage_options: StorageOptions = None,
) -> pl.LazyFrame:
    """One table as a typed LazyFrame with exactly the columns of ``spec``, in order.
    ``path`` is a local file or an object-store URL; ``header`` its columns if known."""
    where = str(path)
    if where.endswith(".parquet"):
        lf = pl.scan_parquet(path, storage_options=storage_options)
        schema = parquet_schema(path, storage_options)
        absent = check_columns(where, spec, schema.names())
        if all(schema[c] == t for c, t in spec.schema.items() if c in schema):
            return with_absent_columns(lf, spec, absent)  # typed, as `convert` writes it
        # written by another tool (pandas' to_parquet of a default read_csv, Spark, ...):
        # the same conversions and checks as frames in memory
        return conform_table(lf, spec, where=where)
    if header is None:
        header = read_csv_header(Path(path))
    absent = check_columns(where, spec, header)
    present = [c for c in spec.raw_schema.names() if c not in absent]
    overrides = {c: t for c, t in spec.raw_schema.items() if t != pl.String and c in present}
    lf = pl.scan_csv(
        path,
        infer_schema=False,
        schema_overrides=overrides,
        raise_if_empty=False,
        storage_options=storage_options,
    ).select(present)
    stamps = [c for c in spec.timestamps if c in present]
    shapes = sample_shapes(lf, stamps) if stamps else {}
    return with_absent_columns(parse_timestamps(lf, shapes), spec, absent)


def scan_olist(
    path: Location,
    *,
    tables: Iterable[str] | None = None,
    fmt: Format = "auto",
    storage_options: StorageOptions = None,
) -> dict[str, pl.LazyFrame]:
    """The Olist tables in ``path`` (a folder or an object-store URL such as
    ``s3://bucket/olist``) as typed LazyFrames keyed by table name.

    Files are ``<stem>.csv`` or ``<stem>.parquet`` with the Kaggle stems (see
    :data:`olist_fast.schema.TABLES`). ``tables`` None needs the orders, the customers and
    an amount per order (``order_payments``, or else ``order_items``: price + freight);
    every other table is optional, and an absent or header-only one is read as empty, its
    features switched off with one warning (:class:`Coverage`). Named ``tables`` are each
    required. Columns that only feed features may be absent (read as null). Timestamps
    are Olist's ``YYYY-MM-DD HH:MM:SS`` or ISO 8601 (offsets converted to UTC: see
    :mod:`olist_fast.timestamps`). ``storage_options`` go to Polars' cloud readers. Only
    an empty CSV field is null; ids and zip prefixes stay text. Missing files or columns
    raise :class:`OlistDataError` at once; bad values surface when the frame is collected
    (``olist-fast validate`` names them).
    """
    located = locate_olist(path, tables=tables, fmt=fmt, storage_options=storage_options)
    return scan_located(located, storage_options, complete=tables is None)


def scan_located(
    located: Mapping[str, tuple[str | Path, list[str]]],
    storage_options: StorageOptions = None,
    *,
    complete: bool = True,
) -> dict[str, pl.LazyFrame]:
    """The typed LazyFrames of tables found by :func:`locate_olist`; ``complete`` adds the
    plan's absent tables as empty ones (:func:`complete_tables`)."""
    if not complete:
        return {
            name: scan_table(where, TABLES[name], header=header, storage_options=storage_options)
            for name, (where, header) in located.items()
        }
    return scan_covered(located, storage_options)[0]


def scan_covered(
    located: Mapping[str, tuple[str | Path, list[str]]],
    storage_options: StorageOptions = None,
    *,
    scan: Callable[[str, str | Path, list[str]], pl.LazyFrame] | None = None,
) -> tuple[dict[str, pl.LazyFrame], Coverage]:
    """:func:`scan_located`, completed, with what the inputs lack (:class:`Coverage`);
    ``scan(name, where, header)`` reads each table instead of :func:`scan_table`."""
    frames = {
        name: scan(name, where, header)
        if scan is not None
        else scan_table(where, TABLES[name], header=header, storage_options=storage_options)
        for name, (where, header) in located.items()
    }
    coverage = Coverage()
    for name in PLAN_TABLES:
        if name not in located:
            coverage.tables[name] = "no file"
            continue
        where, header = located[name]
        if not has_rows(where, storage_options):
            coverage.tables[name] = "header only"
        absent = [c for c in TABLES[name].optional_columns if c not in set(header)]
        if absent:
            coverage.columns[name] = absent
    where = str(next(iter(located.values()))[0])
    return complete_tables(frames, coverage, where=where), coverage


def preferred_engine(data_dir: str | os.PathLike[str]) -> Literal["in-memory", "streaming"]:
    """The polars engine measured better for the feature plan on this folder's files
    (by the format of its orders table).

    Parquet: streaming (less memory). CSV: in-memory, faster at every scale tried
    (docs/performance.md, "Choices in the code, measured"). ``--engine`` overrides.
    """
    return engine_for(table_path(Path(data_dir), TABLES["orders"]))


def engine_for(orders: str | Path) -> Literal["in-memory", "streaming"]:
    """:func:`preferred_engine`'s rule for the file (or URL) the orders come from."""
    return "streaming" if str(orders).endswith(".parquet") else "in-memory"
