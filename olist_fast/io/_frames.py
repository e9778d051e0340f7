"""Frames already in memory (polars, pyarrow, pandas) as the typed tables a scan gives."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl

from olist_fast.errors import OlistDataError
from olist_fast.io._coverage import Coverage, complete_tables
from olist_fast.io._locate import check_columns
from olist_fast.schema import (
    AMOUNT_TABLES,
    BY_STEM,
    PLAN_TABLES,
    REQUIRED_TABLES,
    TABLES,
    TableSpec,
)
from olist_fast.timestamps import OLIST, TimestampShape, sample_shapes


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
