"""Readers for the nine Olist tables, from CSV or Parquet, as typed LazyFrames."""

from __future__ import annotations

import csv
import io
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl

from olist_fast.errors import OlistDataError
from olist_fast.schema import (
    AMOUNT_TABLES,
    BY_STEM,
    ORDER_ITEMS,
    ORDER_PAYMENTS,
    PLAN_TABLES,
    REQUIRED_TABLES,
    TABLE_NAMES,
    TABLES,
    TableSpec,
    empty_table,
    features_lost,
)
from olist_fast.timestamps import (
    OLIST,
    TimestampShape,
    parse_timestamps,
    sample_shapes,
)

Format = Literal["auto", "csv", "parquet"]
BOM = b"\xef\xbb\xbf"


__all__ = ["OlistDataError"]  # defined in olist_fast.errors, kept importable from here


Location = str | os.PathLike[str]
StorageOptions = dict[str, Any] | None
log = logging.getLogger("olist_fast")


@contextmanager
def reading(what: str = "the input") -> Iterator[None]:
    """Turn Polars' errors on values it cannot parse or cast while reading the tables into
    one-line :class:`OlistDataError` s (``validate`` then names the file and row)."""
    try:
        yield
    except (pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
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
                return path, pl.scan_parquet(path).collect_schema().names()
        return None
    for ext in _extensions(fmt):
        url = str(join_location(location, f"{spec.stem}{ext}"))
        names = _remote_columns(url, storage_options)
        if names is not None:
            return url, names
    return None


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


def with_absent_columns(lf: pl.LazyFrame, spec: TableSpec, absent: Iterable[str]) -> pl.LazyFrame:
    """``lf`` with each absent column of ``spec`` added as all null, in ``spec``'s order."""
    absent = list(absent)
    if absent:
        lf = lf.with_columns(pl.lit(None, dtype=spec.schema[c]).alias(c) for c in absent)
    return lf.select(spec.schema.names())


def csv_has_rows(path: Path) -> bool:
    """Whether a local CSV file holds anything after its header line."""
    with path.open("rb") as fh:
        fh.readline()
        while chunk := fh.read(1 << 16):
            if chunk.strip():
                return True
    return False


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
        schema = lf.collect_schema()
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
    located: Mapping[str, tuple[str | Path, list[str]]], storage_options: StorageOptions = None
) -> tuple[dict[str, pl.LazyFrame], Coverage]:
    """:func:`scan_located`, completed, with what the inputs lack (:class:`Coverage`)."""
    frames = {
        name: scan_table(where, TABLES[name], header=header, storage_options=storage_options)
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


@dataclass
class Coverage:
    """What the inputs lack: tables absent or without rows, and absent columns. The
    features they feed are empty for every customer (the contract's values for "nothing
    to aggregate"), and the model stage leaves them out."""

    tables: dict[str, str] = field(default_factory=dict)
    """Table name -> why it is empty (``no file``, ``header only``, ``no rows``)."""
    columns: dict[str, list[str]] = field(default_factory=dict)
    """Table name -> its absent columns."""
    amount_from_items: bool = False

    def features_off(self) -> dict[str, str]:
        """Each feature switched off, with the reason."""
        off: dict[str, str] = {}
        for table, why in self.tables.items():
            for f in features_lost(table):
                off.setdefault(f, f"{TABLES[table].stem}: {why}")
        for table, columns in self.columns.items():
            for c in columns:
                for f in features_lost(table, c):
                    off.setdefault(f, f"{TABLES[table].stem}: no column {c}")
        return off

    def no_amounts(self, where: str) -> OlistDataError:
        """The error for inputs with neither payments nor items to take amounts from."""
        return OlistDataError(
            f"{where}: no order amounts: {TABLES[ORDER_PAYMENTS].stem} "
            f"({self.tables[ORDER_PAYMENTS]}) and {TABLES[ORDER_ITEMS].stem} "
            f"({self.tables[ORDER_ITEMS]}); expected payment_value or price per order"
        )

    def message(self) -> str | None:
        """One line naming what is off and why, or None when nothing is."""
        by_reason: dict[str, list[str]] = {}
        for f, why in self.features_off().items():
            by_reason.setdefault(why, []).append(f)
        parts = [f"{', '.join(fs)} ({why})" for why, fs in by_reason.items()]
        if self.amount_from_items:
            parts.append("order amounts taken from order_items (price + freight_value)")
        if not parts:
            return None
        return "features off, empty for every customer: " + "; ".join(parts)


def payments_from_items(items: pl.LazyFrame) -> pl.LazyFrame:
    """One payment row per order of ``items``: its price plus freight (for shops that have
    no payments table)."""
    value = pl.col("price") + pl.col("freight_value").fill_null(0.0)
    spec = TABLES[ORDER_PAYMENTS]
    return (
        items.group_by("order_id")
        .agg(value.sum().alias("payment_value"))
        .with_columns(
            pl.lit(1, dtype=pl.Int64).alias("payment_sequential"),
            pl.lit(None, dtype=pl.String).alias("payment_type"),
            pl.lit(None, dtype=pl.Int64).alias("payment_installments"),
        )
        .select(spec.schema.names())
    )


def complete_tables(
    frames: Mapping[str, pl.LazyFrame], coverage: Coverage, *, where: str
) -> dict[str, pl.LazyFrame]:
    """``frames`` with every table of the plan: an absent one as an empty table, absent or
    empty payments derived from the items (:func:`payments_from_items`). Logs the one
    warning of :meth:`Coverage.message`; no amount at all is an :class:`OlistDataError`."""
    out = dict(frames)
    for name in PLAN_TABLES:
        if name not in out:
            out[name] = empty_table(name)
            coverage.tables.setdefault(name, "no file")
    if ORDER_PAYMENTS in coverage.tables:
        if ORDER_ITEMS in coverage.tables:
            raise coverage.no_amounts(where)
        out[ORDER_PAYMENTS] = payments_from_items(out[ORDER_ITEMS])
        coverage.amount_from_items = True
    if (message := coverage.message()) is not None:
        log.warning("%s", message)
    return out


# -- frames already in memory: polars, pyarrow or pandas, typed or read with defaults ----
def _to_lazy(obj: Any, where: str) -> pl.LazyFrame:
    if isinstance(obj, pl.LazyFrame):
        return obj
    if isinstance(obj, pl.DataFrame):
        return obj.lazy()
    module = type(obj).__module__.split(".")[0]
    if module == "pyarrow" and hasattr(obj, "schema"):
        frame = pl.from_arrow(obj)
        return frame.lazy() if isinstance(frame, pl.DataFrame) else frame.to_frame().lazy()
    if module == "pandas" and hasattr(obj, "columns"):
        # missing values read by pandas are NaN in float columns: nulls here, as in a CSV
        return pl.from_pandas(obj, nan_to_null=True).lazy()
    raise OlistDataError(
        f"{where}: a {type(obj).__name__}; expected a polars DataFrame or LazyFrame, "
        "a pyarrow Table or a pandas DataFrame"
    )


def _columns_of(obj: Any) -> list[str]:
    """The column names of a frame of any kind :func:`_to_lazy` takes."""
    if isinstance(obj, pl.LazyFrame):
        return obj.collect_schema().names()
    if hasattr(obj, "column_names"):  # pyarrow
        return list(obj.column_names)
    return [str(c) for c in obj.columns]


def _coerce(
    col: str, have: pl.DataType, want: pl.DataType, shape: TimestampShape = OLIST
) -> pl.Expr | None:
    """The expression that turns column ``col`` of type ``have`` into ``want``: the
    conversions a default CSV reader needs (timestamps left as text, parsed with their
    ``shape``; zip prefixes read as integers, money or integers with gaps read as floats);
    None if there is none."""
    c = pl.col(col)
    if have.is_float() and want != pl.Float64 and not want.is_integer():
        return c.cast(want)  # an all-empty column pandas read as NaN floats (checked by the caller)
    if have == want == pl.String:
        # an empty text is a missing value, as an empty CSV field is (pyarrow's CSV
        # reader keeps it as "")
        return pl.when(c.str.len_bytes() == 0).then(None).otherwise(c)
    if have == want:
        return c
    if have == pl.Null:
        return c.cast(want)
    if want == pl.String:
        if isinstance(have, pl.Categorical | pl.Enum):
            return c.cast(pl.String)
        if have.is_integer():
            text = c.cast(pl.String)
            # a zip prefix read as a number lost its leading zeros: Brazilian prefixes
            # have five digits
            return text.str.zfill(5) if col.endswith("zip_code_prefix") else text
        return None
    if isinstance(want, pl.Datetime):
        if have == pl.String or isinstance(have, pl.Categorical):
            return shape.parse(c.cast(pl.String))
        if isinstance(have, pl.Datetime):
            if have.time_zone is not None:  # an instant: its UTC time, as for offsets in text
                return c.dt.convert_time_zone("UTC").dt.replace_time_zone(None).cast(want)
            return c.cast(want)
        if have == pl.Date:
            return c.cast(want)
        return None
    if want == pl.Int64:
        if have.is_integer() or have.is_float():
            return c.cast(pl.Int64, strict=True)  # floats checked for fractions by the caller
        if have == pl.String:
            return c.cast(pl.Int64, strict=True)  # text that is not an integer is an error
        return None
    if want == pl.Float64 and (have.is_numeric() or have == pl.String):
        return c.cast(pl.Float64, strict=True)
    return None


def conform_table(obj: Any, spec: TableSpec, *, where: str) -> pl.LazyFrame:
    """A frame in memory as the typed LazyFrame :func:`scan_table` would give for the same
    file: the columns of ``spec``, in order, with its types. Extra columns are dropped; a
    missing column, or a type that has no conversion, raises :class:`OlistDataError`."""
    lf = _to_lazy(obj, where)
    schema = lf.collect_schema()
    absent = check_columns(where, spec, schema.names())
    lf = lf.with_columns(pl.lit(None, dtype=spec.schema[c]).alias(c) for c in absent)
    schema = lf.collect_schema()
    texts = [c for c in spec.timestamps if schema[c] in (pl.String, pl.Categorical)]
    shapes = sample_shapes(lf.select(pl.col(texts).cast(pl.String)), texts) if texts else {}
    exprs = []
    fractional = []
    empty_floats = []
    for col, want in spec.schema.items():
        have = schema[col]
        expr = _coerce(col, have, want, shapes.get(col, OLIST))
        if expr is None:
            raise OlistDataError(f"{where}: column {col!r} is {have}; expected {want}")
        if want == pl.Int64 and have.is_float():
            fractional.append(col)
        elif have.is_float() and not want.is_numeric():
            empty_floats.append((col, want))
        exprs.append(expr.alias(col))
    if empty_floats:  # a float column where text or times belong: only if it is all empty
        names = [c for c, _ in empty_floats]
        filled = lf.select(pl.col(c).fill_nan(None).is_not_null().any() for c in names)
        for (col, want), has_value in zip(empty_floats, filled.collect().row(0), strict=True):
            if has_value:
                raise OlistDataError(f"{where}: column {col!r} holds numbers; expected {want}")
        lf = lf.with_columns(pl.col(names).fill_nan(None))
    if fractional:  # floats in an integer column: whole numbers only (a cast would truncate)
        c = [pl.col(f).fill_nan(None) for f in fractional]
        bad = lf.select((x != x.floor()).any() for x in c).collect().row(0)
        for col, is_bad in zip(fractional, bad, strict=True):
            if is_bad:
                raise OlistDataError(
                    f"{where}: column {col!r} has a fractional value; expected an integer"
                )
        lf = lf.with_columns(pl.col(fractional).fill_nan(None))
    return lf.select(exprs)


def as_tables(
    frames: Mapping[str, Any], *, tables: Iterable[str] | None = None
) -> dict[str, pl.LazyFrame]:
    """In-memory tables as typed LazyFrames keyed by table name.

    ``frames`` maps table names (``"orders"``, ``"order_items"``... see
    :data:`olist_fast.schema.TABLES`) or file stems (``"olist_orders_dataset"``) to Polars
    DataFrames or LazyFrames, pyarrow Tables or pandas DataFrames. Frames read with a
    reader's default type inference (``pandas.read_csv(path)``, ``polars.read_csv(path)``)
    are converted: text timestamps parsed (Olist's format or ISO 8601), integer zip
    prefixes zero-padded to five digits, whole floats made integers. ``tables`` None needs
    the orders, the customers and an amount per order (payments or items), as
    :func:`scan_olist` does, and completes the plan's other tables as empty ones; named
    ``tables`` are each required.
    """
    return conform_tables(frames, tables=tables)[0]


def conform_tables(
    frames: Mapping[str, Any], *, tables: Iterable[str] | None = None
) -> tuple[dict[str, pl.LazyFrame], Coverage]:
    """:func:`as_tables`, with what the inputs lack (:class:`Coverage`)."""
    by_name: dict[str, tuple[str, Any]] = {}
    for key, frame in frames.items():
        name = key if key in TABLES else BY_STEM.get(key)
        if name is None:
            raise OlistDataError(
                f"tables[{key!r}]: unknown table; expected one of {', '.join(TABLES)}"
            )
        by_name[name] = (key, frame)
    required = REQUIRED_TABLES if tables is None else tuple(tables)
    missing = [n for n in required if n not in by_name]
    if missing:
        raise OlistDataError(
            f"tables: missing table {missing[0]!r}; every job needs {', '.join(required)}"
        )
    if tables is None and not any(n in by_name for n in AMOUNT_TABLES):
        raise OlistDataError(
            "tables: no order amounts: expected 'order_payments' (payment_value) or "
            "'order_items' (price)"
        )
    names = [*required, *(n for n in by_name if n not in required and tables is None)]
    out = {
        n: conform_table(by_name[n][1], TABLES[n], where=f"tables[{by_name[n][0]!r}]")
        for n in names
    }
    coverage = Coverage()
    if tables is not None:
        return out, coverage
    for n in PLAN_TABLES:
        if n not in by_name:
            continue
        if out[n].head(1).collect().height == 0:
            coverage.tables[n] = "no rows"
        have = set(_columns_of(by_name[n][1]))
        absent = [c for c in TABLES[n].optional_columns if c not in have]
        if absent:
            coverage.columns[n] = absent
    return complete_tables(out, coverage, where="tables"), coverage


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
