"""Where the tables are: locations and URLs, each table's file, its header and columns."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import polars as pl

from olist_fast.errors import OlistDataError
from olist_fast.schema import (
    AMOUNT_TABLES,
    ORDER_ITEMS,
    ORDER_PAYMENTS,
    REQUIRED_TABLES,
    TABLE_NAMES,
    TABLES,
    TableSpec,
)

Format = Literal["auto", "csv", "parquet"]
BOM = b"\xef\xbb\xbf"
Location = str | os.PathLike[str]
StorageOptions = dict[str, Any] | None


@contextmanager
def reading(what: str = "the input") -> Iterator[None]:
    """Turn Polars' errors on values it cannot parse or cast while reading the tables into
    one-line :class:`OlistDataError` s (``validate`` then names the file and row)."""
    try:
        yield
    except (pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if "(os error " in first:  # the disk, not a value: a full disk under a writer
            raise OSError(first) from exc
        raise OlistDataError(
            f"a value in {what} could not be read: {first} (`olist-fast validate` names the "
            "file and row)"
        ) from exc


def is_url(location: Location) -> bool:
    """True for an object-store or web URL (``s3://``, ``gs://``, ``az://``, ``https://``...);
    ``file://`` and plain paths are local."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


def local_path(location: Location) -> Path:
    text = str(location)
    return Path(text[len("file://") :] if text.startswith("file://") else text)


def join_location(base: Location, name: str) -> str | Path:
    if is_url(base):
        return f"{str(base).rstrip('/')}/{name}"
    return local_path(base) / name


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


def _extensions(fmt: Format) -> tuple[str, ...]:
    return {"csv": (".csv",), "parquet": (".parquet",), "auto": (".csv", ".parquet")}[fmt]


def _remote_columns(url: str, storage_options: StorageOptions) -> list[str] | None:
    """The column names of a remote table (one ranged read of its head or footer), or None
    when there is no such object."""
    try:
        if url.endswith(".parquet"):
            return pl.scan_parquet(url, storage_options=storage_options).collect_schema().names()
        names = (
            pl.scan_csv(url, infer_schema=False, storage_options=storage_options, n_rows=0)
            .collect_schema()
            .names()
        )
    except FileNotFoundError:
        return None
    except (OSError, pl.exceptions.PolarsError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise OlistDataError(f"{url}: cannot read ({reason})") from None
    if names and names[0].startswith("\ufeff"):
        names[0] = names[0][1:]
    return names


def locate_table(
    location: Location,
    spec: TableSpec,
    fmt: Format = "auto",
    storage_options: StorageOptions = None,
) -> tuple[str | Path, list[str]] | None:
    """Where ``spec`` lives under ``location`` and its header, or None if it is absent."""
    if not is_url(location):
        folder = local_path(location)
        for ext in _extensions(fmt):
            path = folder / f"{spec.stem}{ext}"
            if path.is_file():
                if ext == ".csv":
                    return path, read_csv_header(path)
                return path, list(parquet_schema(path))
        return None
    for ext in _extensions(fmt):
        url = str(join_location(location, f"{spec.stem}{ext}"))
        names = _remote_columns(url, storage_options)
        if names is not None:
            return url, names
    return None


def parquet_schema(where: str | Path, storage_options: StorageOptions = None) -> pl.Schema:
    """The schema in a Parquet file's footer (a glob: the first file's); a file that is
    not Parquet, or was cut short (no footer), is a one-line :class:`OlistDataError`."""
    try:
        return pl.scan_parquet(where, storage_options=storage_options).collect_schema()
    except pl.exceptions.ComputeError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise OlistDataError(
            f"{where}: not a readable Parquet file ({first}); was it cut short? write it again"
        ) from None


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


def check_columns(path: Path | str, spec: TableSpec, columns: Iterable[str]) -> list[str]:
    """Raise naming the first column of ``spec.core`` that ``columns`` lacks; return the
    optional columns it lacks (read as all null)."""
    have = set(columns)
    missing = [c for c in spec.core if c not in have]
    if missing:
        raise OlistDataError(
            f"{path}: missing column {missing[0]!r}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            + f"; expected at least the columns {', '.join(spec.core)}"
        )
    return [c for c in spec.optional_columns if c not in have]


def csv_has_rows(path: Path) -> bool:
    """Whether a local CSV file holds anything after its header line."""
    with path.open("rb") as fh:
        fh.readline()
        while chunk := fh.read(1 << 16):
            if chunk.strip():
                return True
    return False


def locate_olist(
    path: Location,
    *,
    tables: Iterable[str] | None = None,
    fmt: Format = "auto",
    storage_options: StorageOptions = None,
) -> dict[str, tuple[str | Path, list[str]]]:
    """Where each table of :func:`scan_olist` lives and its columns, found once (a
    remote probe costs a request), so a caller that needs the files too (the engine
    choice, the manifest) does not look again."""
    if not is_url(path) and not local_path(path).is_dir():
        raise OlistDataError(
            f"{local_path(path)}: not a directory (expected the folder of Olist files)"
        )
    required = REQUIRED_TABLES if tables is None else tuple(tables)
    optional = tuple(n for n in TABLE_NAMES if n not in required) if tables is None else ()
    out: dict[str, tuple[str | Path, list[str]]] = {}
    for name in (*required, *optional):
        spec = TABLES[name]
        found = locate_table(path, spec, fmt, storage_options)
        if found is None:
            if name in optional:
                continue
            first = join_location(path, f"{spec.stem}{_extensions(fmt)[0]}")
            wanted = " or ".join(f"{spec.stem}{e}" for e in _extensions(fmt))
            raise OlistDataError(f"{first}: file not found (expected {wanted})")
        out[name] = found
    if tables is None and not any(n in out for n in AMOUNT_TABLES):
        raise OlistDataError(
            f"{path}: no order amounts: neither {TABLES[ORDER_PAYMENTS].stem} (payment_value) "
            f"nor {TABLES[ORDER_ITEMS].stem} (price) is there; expected one of them"
        )
    return out


def has_rows(where: str | Path, storage_options: StorageOptions = None) -> bool:
    """Whether a table file holds any row (a remote CSV is assumed to: finding out would
    download it)."""
    text = str(where)
    if text.endswith(".parquet"):
        lf = pl.scan_parquet(where, storage_options=storage_options)
        return bool(lf.select(pl.len()).collect().item())
    if is_url(where):
        return True
    return csv_has_rows(Path(where))
