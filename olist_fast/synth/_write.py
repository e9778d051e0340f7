"""The real files' bytes: the tables written in the conventions of the Kaggle CSVs.

Quoted headers; a text value quoted only when it starts with a digit or holds a quote, a
comma or a line break; CRLF line ends and multi-line comments in reviews; floats with two
decimals (full precision in geolocation); the translation file unquoted, with a BOM and CRLF.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from olist_fast.io import BOM, atomic_path
from olist_fast.schema import TABLES, TIMESTAMP_FORMAT


def _quoted(name: str, dtype: pl.DataType) -> pl.Expr:
    """A text column as the Kaggle export writes it: quoted only when needed or digit-led."""
    c = pl.col(name)
    if dtype != pl.String:
        return c
    needs = c.str.contains(r'^[0-9]|[",\r\n]')
    escaped = pl.lit('"') + c.str.replace_all('"', '""', literal=True) + pl.lit('"')
    return pl.when(needs).then(escaped).otherwise(c).alias(name)


def write_table_csv(df: pl.DataFrame, path: Path, *, name: str) -> None:
    """Write one table in the real file's conventions (atomically)."""
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        if name == "category_translation":
            lines = [",".join(df.columns)] + [f"{a},{b}" for a, b in df.iter_rows()]
            fh.write(BOM + "\r\n".join(lines).encode("utf-8"))
            return
        eol = "\r\n" if name == "order_reviews" else "\n"
        fh.write((",".join(f'"{c}"' for c in df.columns) + eol).encode("utf-8"))
        body = df.select(_quoted(c, t) for c, t in df.schema.items())
        body.write_csv(
            fh,
            include_header=False,
            quote_style="never",
            line_terminator=eol,
            datetime_format=TIMESTAMP_FORMAT,
            float_precision=None if name == "geolocation" else 2,
        )


def write_olist(tables: dict[str, pl.DataFrame], out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write the tables as the nine Kaggle CSV files in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, df in tables.items():
        path = out / f"{TABLES[name].stem}.csv"
        write_table_csv(df, path, name=name)
        paths.append(path)
    return paths
