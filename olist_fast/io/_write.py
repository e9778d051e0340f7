"""Atomic writers, and the typed Parquet copies of the tables (:func:`convert`)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from olist_fast.errors import OlistDataError
from olist_fast.io._locate import Format, Location, StorageOptions, is_url, local_path, reading
from olist_fast.io._scan import scan_olist
from olist_fast.schema import TABLES


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


def write_frame(
    df: pl.DataFrame, target: Location, *, storage_options: StorageOptions = None
) -> str | Path:
    """Write ``df`` as Parquet or CSV, chosen by the extension: locally to a temporary
    name renamed into place; to an object-store URL in one upload, which the store makes
    visible only once complete (no partial object is ever read)."""
    where = str(target)
    suffix = where[where.rfind(".") :].lower() if "." in where.rsplit("/", 1)[-1] else ""
    if suffix not in (".parquet", ".csv"):
        raise OlistDataError(f"{target}: unsupported output extension (expected .parquet or .csv)")
    if is_url(target):
        if suffix == ".parquet":
            df.write_parquet(where, compression="snappy", storage_options=storage_options)
        else:
            df.write_csv(where, storage_options=storage_options)
        return where
    path = local_path(target)
    with atomic_path(path) as tmp:
        if suffix == ".parquet":
            # snappy: twice as fast to write as zstd here, and what pandas and DuckDB write
            df.write_parquet(tmp, compression="snappy")
        else:
            df.write_csv(tmp)
    return path


def convert(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], *, fmt: Format = "auto"
) -> list[Path]:
    """Write typed Parquet copies of the nine tables of ``src`` into ``dst``: all of them
    or none (:func:`write_tables`)."""
    with reading(str(src)):
        return write_tables(scan_olist(src, fmt=fmt), dst)


def write_tables(frames: Mapping[str, pl.LazyFrame], dst: str | os.PathLike[str]) -> list[Path]:
    """Write each table of ``frames`` as ``dst/<stem>.parquet``, all or none: every file is
    written in a temporary folder inside ``dst`` first and moved into place once all are
    written; on a failure nothing is moved, and a ``dst`` this call created is removed."""
    dst_dir = Path(dst)
    created = not dst_dir.exists()
    dst_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".olist-fast-convert.", suffix=".tmp", dir=dst_dir))
    umask = os.umask(0)
    os.umask(umask)
    try:
        names = [f"{TABLES[name].stem}.parquet" for name in frames]
        for name, lf in zip(names, frames.values(), strict=True):
            lf.sink_parquet(tmp / name)
        for name in names:
            (tmp / name).chmod(0o666 & ~umask)
            os.replace(tmp / name, dst_dir / name)
    except BaseException:
        if created:
            shutil.rmtree(dst_dir, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [dst_dir / name for name in names]
