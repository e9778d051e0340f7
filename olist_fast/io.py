"""Readers for the nine Olist tables, from CSV or Parquet, as typed LazyFrames."""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import polars as pl

from olist_fast.schema import TABLE_NAMES, TABLES, TIMESTAMP_FORMAT, TableSpec

Format = Literal["auto", "csv", "parquet"]
BOM = b"\xef\xbb\xbf"


class OlistDataError(ValueError):
    """Input data that cannot be used; the message is one line naming the file."""


def table_path(data_dir: Path, spec: TableSpec, fmt: Format = "auto") -> Path:
    """The file that holds ``spec`` in ``data_dir``: CSV first, then Parquet, under ``auto``."""
    csv_path = data_dir / f"{spec.stem}.csv"
    pq_path = data_dir / f"{spec.stem}.parquet"
    candidates = {"csv": [csv_path], "parquet": [pq_path], "auto": [csv_path, pq_path]}[fmt]
    for p in candidates:
        if p.is_file():
            return p
    wanted = " or ".join(p.name for p in candidates)
    raise OlistDataError(f"{data_dir / candidates[0].name}: file not found (expected {wanted})")


def read_csv_header(path: Path) -> list[str]:
    """The header fields of a CSV file, BOM stripped; raises on an empty or non-UTF-8 header."""
    with path.open("rb") as fh:
        first = fh.readline(1 << 20)
    if not first.strip():
        raise OlistDataError(f"{path}: file is empty (expected a header line)")
    if first.startswith(BOM):
        first = first[len(BOM) :]
    try:
        text = first.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OlistDataError(f"{path}: line 1: header is not valid UTF-8 ({exc.reason})") from None
    return next(csv.reader(io.StringIO(text)))


def check_columns(path: Path, spec: TableSpec, columns: Iterable[str]) -> None:
    """Raise naming the first required column that ``columns`` lacks."""
    have = set(columns)
    missing = [c for c in spec.schema.names() if c not in have]
    if missing:
        raise OlistDataError(
            f"{path}: missing column {missing[0]!r}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            + f"; expected columns {', '.join(spec.schema.names())}"
        )


def parse_timestamps(lf: pl.LazyFrame, columns: Iterable[str]) -> pl.LazyFrame:
    """Parse text timestamps with the one explicit Olist format (strict: bad text is an error)."""
    # An explicit format is the fast path (the reader's own Datetime parsing measured 10x
    # slower); timestamps are nearly all distinct, so the parse cache only costs time.
    return lf.with_columns(
        pl.col(c).str.to_datetime(TIMESTAMP_FORMAT, time_unit="us", strict=True, cache=False)
        for c in columns
    )


def scan_table(path: Path, spec: TableSpec) -> pl.LazyFrame:
    """One table as a typed LazyFrame with exactly the columns of ``spec``, in order."""
    if path.suffix == ".parquet":
        lf = pl.scan_parquet(path)
        check_columns(path, spec, lf.collect_schema().names())
        return lf.select(pl.col(c).cast(t) for c, t in spec.schema.items())
    header = read_csv_header(path)
    check_columns(path, spec, header)
    overrides = {c: t for c, t in spec.raw_schema.items() if t != pl.String}
    lf = pl.scan_csv(
        path,
        infer_schema=False,
        schema_overrides=overrides,
        raise_if_empty=False,
    ).select(spec.raw_schema.names())
    return parse_timestamps(lf, spec.timestamps)


def scan_olist(
    path: str | os.PathLike[str],
    *,
    tables: Iterable[str] | None = None,
    fmt: Format = "auto",
) -> dict[str, pl.LazyFrame]:
    """The Olist tables in ``path`` as typed LazyFrames keyed by table name.

    Files are ``<stem>.csv`` or ``<stem>.parquet`` with the Kaggle stems (see
    :data:`olist_fast.schema.TABLES`). Only an empty CSV field is null; ids and
    zip prefixes stay text; timestamps are parsed with one explicit format.
    Missing files or columns raise :class:`OlistDataError` at once; bad values
    surface when the frame is collected (``olist-fast validate`` names them).
    """
    data_dir = Path(path)
    if not data_dir.is_dir():
        raise OlistDataError(f"{data_dir}: not a directory (expected the folder of Olist files)")
    names = TABLE_NAMES if tables is None else tuple(tables)
    out: dict[str, pl.LazyFrame] = {}
    for name in names:
        spec = TABLES[name]
        out[name] = scan_table(table_path(data_dir, spec, fmt), spec)
    return out


def preferred_engine(data_dir: str | os.PathLike[str]) -> Literal["in-memory", "streaming"]:
    """The polars engine measured better for the feature plan on this folder's files
    (by the format of its orders table).

    Parquet: streaming (less memory). CSV: in-memory, measured faster at every scale
    tried (whole command, interleaved): scale 10 4.17 s / 1,064 MiB against streaming's
    5.19-5.35 s / 930-966 MiB (benchmark suite, 5 runs each); scale 20 11.7 against 12.6 s
    at the same 1.7 GiB; scale 1 and 3 about 10 % faster. ``--engine`` overrides.
    """
    orders = table_path(Path(data_dir), TABLES["orders"])
    return "streaming" if orders.suffix == ".parquet" else "in-memory"


@contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` only on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.is_file():  # mkstemp makes 0600 files: give the usual umask permissions
            umask = os.umask(0)
            os.umask(umask)
            tmp.chmod(0o666 & ~umask)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextmanager
def atomic_dir(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; it replaces ``target`` only on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        tmp.chmod(0o755)
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_frame(df: pl.DataFrame, target: str | os.PathLike[str]) -> Path:
    """Write ``df`` atomically as Parquet or CSV, chosen by the file's extension."""
    target = Path(target)
    suffix = target.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise OlistDataError(f"{target}: unsupported output extension (expected .parquet or .csv)")
    with atomic_path(target) as tmp:
        if suffix == ".parquet":
            # snappy: twice as fast to write as zstd here, and what pandas and DuckDB write
            df.write_parquet(tmp, compression="snappy")
        else:
            df.write_csv(tmp)
    return target


def convert(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], *, fmt: Format = "auto"
) -> list[Path]:
    """Write typed Parquet copies of the nine tables of ``src`` into ``dst``."""
    frames = scan_olist(src, fmt=fmt)
    dst_dir = Path(dst)
    written = []
    for name, lf in frames.items():
        target = dst_dir / f"{TABLES[name].stem}.parquet"
        with atomic_path(target) as tmp:
            lf.sink_parquet(tmp)
        written.append(target)
    return written
