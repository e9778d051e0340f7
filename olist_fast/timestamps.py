"""Timestamps as shops write them: Olist's ``YYYY-MM-DD HH:MM:SS`` and ISO 8601.

A column's shape is read from its first non-empty values (:func:`detect_shape`) and the
whole column is then parsed strictly with that one shape, never guessed value by value:
``2018-01-11 14:01:40``, ``2018-01-11T14:01:40``, ``2018-01-11T14:01``, fractions of a
second, a date alone (midnight), and an offset (``Z``, ``+02:00``, ``-0300``). Values
with an offset are converted to UTC and the offset dropped, so every parsed timestamp is
naive. A column whose values mix shapes is refused at the first value that does not fit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import polars as pl

from olist_fast.errors import OlistUsageError

OLIST_FORMAT = "%Y-%m-%d %H:%M:%S"
"""The Olist files' format, and the fast path."""

_SHAPE = re.compile(
    r"^\d{4}-\d{2}-\d{2}"
    r"(?:(?P<sep>[ T])\d{2}:\d{2}(?P<sec>:\d{2}(?:\.\d+)?)?)?"
    r"(?P<tz>Z|[+-]\d{2}:?\d{2})?$"
)


@dataclass(frozen=True)
class TimestampShape:
    """How one column writes its timestamps."""

    iso_t: bool = False
    """A ``T`` between the date and the time."""
    time: str = "seconds"
    """``seconds`` (with or without a fraction), ``minutes`` or ``none`` (a date alone)."""
    offset: bool = False
    """An offset from UTC after the time (``Z`` included)."""

    @property
    def format(self) -> str:
        base = {"seconds": "%Y-%m-%d %H:%M:%S", "minutes": "%Y-%m-%d %H:%M", "none": "%Y-%m-%d"}
        fmt = base[self.time]
        if self.time == "seconds" and self != OLIST:
            fmt += "%.f"
        if self.iso_t:
            fmt = fmt.replace(" ", "T", 1)
        return fmt + ("%z" if self.offset else "")

    def describe(self) -> str:
        """The shape as a user reads it (for error messages)."""
        return {
            "seconds": "YYYY-MM-DD HH:MM:SS",
            "minutes": "YYYY-MM-DD HH:MM",
            "none": "YYYY-MM-DD",
        }[self.time].replace(" ", "T" if self.iso_t else " ") + ("+HH:MM" if self.offset else "")

    def parse(self, column: str | pl.Expr, *, strict: bool = True) -> pl.Expr:
        """The parse of a text column into naive ``Datetime("us")`` (UTC where the text
        carries an offset); ``strict=False`` gives null where a value does not fit."""
        c = pl.col(column) if isinstance(column, str) else column
        if self.offset:  # chrono's %z takes +02:00 and +0200, not Z
            c = c.str.replace(r"Z$", "+00:00")
        # An explicit format is the fast path (faster than the reader's own Datetime
        # parsing); timestamps are nearly all distinct, so the parse cache only costs time.
        out = c.str.to_datetime(self.format, time_unit="us", strict=strict, cache=False)
        if self.offset:
            out = out.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return out


OLIST = TimestampShape()


def shape_of(text: str) -> TimestampShape | None:
    """The shape of one timestamp text, or None if it has none we read."""
    m = _SHAPE.match(text.strip())
    if m is None:
        return None
    if m["sep"] is None:
        return TimestampShape(time="none", offset=m["tz"] is not None)
    return TimestampShape(
        iso_t=m["sep"] == "T",
        time="seconds" if m["sec"] else "minutes",
        offset=m["tz"] is not None,
    )


def detect_shape(values: Iterable[str | None]) -> TimestampShape:
    """The shape of the first non-empty value that has one; Olist's when there is none
    (the strict parse then names the first value that does not fit)."""
    for v in values:
        if v is None or not v.strip():
            continue
        shape = shape_of(v)
        if shape is not None:
            return shape
        break
    return OLIST


def parse_timestamps(
    lf: pl.LazyFrame, shapes: dict[str, TimestampShape] | Iterable[str]
) -> pl.LazyFrame:
    """Parse the text timestamp columns of ``lf``, each with its shape (Olist's for a
    column named without one)."""
    if not isinstance(shapes, dict):
        shapes = dict.fromkeys(shapes, OLIST)
    return lf.with_columns(shape.parse(c).alias(c) for c, shape in shapes.items())


def sample_shapes(
    lf: pl.LazyFrame, columns: Iterable[str], *, rows: int = 200
) -> dict[str, TimestampShape]:
    """The shape of each text column of ``lf`` named, from its first ``rows`` rows."""
    columns = list(columns)
    if not columns:
        return {}
    head = lf.select(columns).head(rows).collect()
    return {c: detect_shape(head[c].to_list()) for c in columns}


def as_datetime(value: date | datetime | str, what: str = "as_of") -> datetime:
    """A ``date`` as midnight of that day; a naive ``datetime`` as it is; an ISO 8601
    string (``2018-06-01``, ``2018-06-01T12:00``) as :meth:`datetime.fromisoformat` reads
    it. A time zone is converted to UTC and dropped, as offsets in the data are. Anything
    else is refused."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise OlistUsageError(
                f"{what} {value!r}: expected an ISO date like 2018-06-01 or 2018-06-01T12:00"
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return value.astimezone(UTC).replace(tzinfo=None)
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    raise OlistUsageError(
        f"{what} must be a date, a datetime or an ISO string, got {type(value).__name__}"
    )
