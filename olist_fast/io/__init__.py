"""Readers for the nine Olist tables, from CSV or Parquet, as typed LazyFrames.

The modules run one way: ``_locate`` (locations and URLs, each table's file, its header
and columns), ``_coverage`` (what the inputs lack and the plan's tables completed without
it), ``_frames`` (frames already in memory conformed to the tables' types), ``_scan``
(the typed lazy readers and the engine for a folder) and ``_write`` (atomic writers and
``convert``).
"""

from olist_fast.errors import OlistDataError  # defined there, kept importable from here
from olist_fast.io._coverage import Coverage, complete_tables, log, payments_from_items
from olist_fast.io._frames import as_tables, conform_table, conform_tables
from olist_fast.io._locate import (
    BOM,
    Format,
    Location,
    StorageOptions,
    check_columns,
    csv_has_rows,
    has_rows,
    is_url,
    join_location,
    local_path,
    locate_olist,
    locate_table,
    parquet_schema,
    read_csv_header,
    reading,
    table_path,
)
from olist_fast.io._scan import (
    engine_for,
    preferred_engine,
    scan_covered,
    scan_located,
    scan_olist,
    scan_table,
    with_absent_columns,
)
from olist_fast.io._write import atomic_dir, atomic_path, convert, write_frame, write_tables

__all__ = [
    "BOM",
    "Coverage",
    "Format",
    "Location",
    "OlistDataError",
    "StorageOptions",
    "as_tables",
    "atomic_dir",
    "atomic_path",
    "check_columns",
    "complete_tables",
    "conform_table",
    "conform_tables",
    "convert",
    "csv_has_rows",
    "engine_for",
    "has_rows",
    "is_url",
    "join_location",
    "local_path",
    "locate_olist",
    "locate_table",
    "log",
    "parquet_schema",
    "payments_from_items",
    "preferred_engine",
    "read_csv_header",
    "reading",
    "scan_covered",
    "scan_located",
    "scan_olist",
    "scan_table",
    "table_path",
    "with_absent_columns",
    "write_frame",
    "write_tables",
]
