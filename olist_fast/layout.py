"""A bucketed Parquet layout: the tables split by ranges of ``customer_unique_id``.

``olist-fast convert --buckets N`` writes it. Every row of a customer (the customer's
rows, orders, items, payments and reviews) lands in the same bucket, so the
per-customer feature plan runs on one bucket at a time and the buckets' tables, put one
after the other, are the table of all the data: the buckets are ranges of the id in
its sorted order, so the concatenation is sorted too. The product, seller, geolocation
and category tables are shared by every bucket (written once).

On disk, in the layout's folder::

    olist_layout.json                          the layout: version, N, the ranges, what
                                               the source held (tables, columns)
    olist_orders_dataset/bucket=00000/*.parquet   one folder per bucket and customer table
    ...
    olist_products_dataset.parquet             shared tables, one file each

Writing is atomic (a temporary folder renamed into place, ``olist_layout.json``
written last inside it): a failed ``convert`` leaves no layout that looks complete.
Reading checks the layout first and names, in one line, the table and bucket that do not
match it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from olist_fast.errors import OlistDataError, OlistUsageError
from olist_fast.io import (
    Coverage,
    Format,
    Location,
    atomic_dir,
    is_url,
    local_path,
    locate_olist,
    payments_from_items,
    scan_covered,
    scan_table,
)
from olist_fast.schema import (
    CUSTOMERS,
    ORDER_ITEMS,
    ORDER_PAYMENTS,
    ORDER_REVIEWS,
    ORDERS,
    PLAN_TABLES,
    TABLES,
    empty_table,
)

LAYOUT_FILE = "olist_layout.json"
FORMAT = "olist-fast bucketed layout"
VERSION = 1
MAX_BUCKETS = 4096
KEY = "customer_unique_id"
BUCKET = "bucket"
BY_ORDER = (ORDER_ITEMS, ORDER_PAYMENTS, ORDER_REVIEWS)
"""Tables that reach their customer through ``order_id``."""
BUCKETED = (CUSTOMERS, ORDERS, *BY_ORDER)
SAMPLE_PER_BUCKET = 2_000
"""Ids drawn per bucket to place the ranges' ends (a sample: any ends give the same
result, the sample only balances the buckets)."""


def _quiet(_: str) -> None:
    pass


def is_layout(location: Location | None) -> bool:
    """Whether ``location`` is a local folder holding a bucketed layout."""
    if location is None or is_url(location):
        return False
    return (local_path(location) / LAYOUT_FILE).is_file()


@dataclass(frozen=True)
class Layout:
    """A bucketed layout on disk (:func:`open_layout`): its folder, its number of buckets
    and the ids where each bucket after the first begins, and the columns of each table
    the source held (``None``: a shared table)."""

    path: Path
    buckets: int
    starts: tuple[str, ...]
    tables: Mapping[str, list[str]]
    """Each table the source held, with the columns its file had."""

    def bucket_dir(self, name: str, k: int) -> Path:
        return self.path / TABLES[name].stem / f"{BUCKET}={k:05d}"

    def where(self, name: str, k: int | None = None) -> str:
        """The file, or the glob of part files, of table ``name`` (bucket ``k``; None:
        every bucket)."""
        stem = TABLES[name].stem
        if name not in BUCKETED:
            return str(self.path / f"{stem}.parquet")
        part = f"{BUCKET}=*" if k is None else f"{BUCKET}={k:05d}"
        return str(self.path / stem / part / "*.parquet")

    def located(self, k: int | None = None) -> dict[str, tuple[str | Path, list[str]]]:
        """What :func:`olist_fast.io.locate_olist` returns for a folder, for the whole
        layout (``k`` None) or one bucket."""
        return {name: (self.where(name, k), list(cols)) for name, cols in self.tables.items()}

    def scan(self) -> tuple[dict[str, pl.LazyFrame], Coverage]:
        """Every table over all the buckets, typed, with what the source lacked (warned
        once, as for a folder)."""
        return scan_covered(self.located())

    def scan_bucket(self, k: int, coverage: Coverage) -> dict[str, pl.LazyFrame]:
        """The plan's tables of bucket ``k``, completed as the whole layout is
        (``coverage``: :meth:`scan`'s), without warning again: a table the source lacked
        is empty, and payments the source lacked come from the items."""
        out = {
            name: scan_table(where, TABLES[name], header=cols)
            for name, (where, cols) in self.located(k).items()
            if name in PLAN_TABLES
        }
        for name in PLAN_TABLES:
            out.setdefault(name, empty_table(name))
        if coverage.amount_from_items:
            out[ORDER_PAYMENTS] = payments_from_items(out[ORDER_ITEMS])
        return out


def bucket_of(starts: tuple[str, ...] | list[str]) -> pl.Expr:
    """The bucket of each ``customer_unique_id``: how many range starts are at or below
    it (0 for ids before the first start)."""
    ends = pl.Series("starts", list(starts), dtype=pl.String)
    return pl.lit(ends).search_sorted(pl.col(KEY), side="right").cast(pl.UInt32).fill_null(0)


def range_starts(customers: pl.LazyFrame, buckets: int) -> list[str]:
    """Where buckets 1..N-1 begin: quantiles of a sample of the distinct ids (every id
    when they are few). Any starts give the same tables; these balance the buckets."""
    if buckets == 1:
        return []
    ids = customers.select(pl.col(KEY).drop_nulls().unique())
    n = ids.select(pl.len()).collect().item()
    keep = buckets * SAMPLE_PER_BUCKET
    if n > keep:
        ids = ids.filter(pl.col(KEY).hash(seed=0) % n < keep)
    sample = ids.sort(KEY).collect()[KEY]
    if sample.len() == 0:
        return []
    at = [round(j * sample.len() / buckets) for j in range(1, buckets)]
    return sorted({sample[i] for i in at if 0 < i < sample.len()})


def write_layout(
    src: Location,
    dst: str | os.PathLike[str],
    buckets: int,
    *,
    fmt: Format = "auto",
    starts: Sequence[str] | None = None,
    say: Callable[[str], None] = _quiet,
) -> Layout:
    """Write the tables of ``src`` (a folder of Olist files) as a bucketed layout in
    ``dst`` with ``buckets`` buckets, atomically (``dst`` is replaced only once the
    whole layout is written). The buckets are ranges of ``customer_unique_id`` holding
    about as many customers each (fewer buckets than asked when there are fewer
    customers); ``starts`` gives the N-1 range starts instead (sorted, distinct)."""
    if not 1 <= buckets <= MAX_BUCKETS:
        raise OlistUsageError(f"--buckets must be between 1 and {MAX_BUCKETS}, got {buckets}")
    located = locate_olist(src, fmt=fmt)
    frames = {
        name: scan_table(where, TABLES[name], header=cols)
        for name, (where, cols) in located.items()
    }
    if CUSTOMERS not in frames or ORDERS not in frames:
        raise OlistDataError(f"{src}: a bucketed layout needs the orders and the customers")
    if starts is None:
        starts = range_starts(frames[CUSTOMERS], buckets)
    elif len(starts) != buckets - 1 or list(starts) != sorted(set(starts)):
        raise OlistUsageError(f"{buckets} buckets need {buckets - 1} sorted, distinct starts")
    starts = list(starts)
    n = len(starts) + 1  # fewer buckets when the data has fewer distinct ids than asked
    if n < buckets:
        say(f"{buckets} buckets asked, {n} written: one per customer at most")
    target = Path(dst)
    _check_target(Path(local_path(src)) if not is_url(src) else None, target)
    with atomic_dir(target) as tmp:
        layout = Layout(tmp, n, tuple(starts), {k: list(c) for k, (_, c) in located.items()})
        key = bucket_of(starts)
        customers = frames[CUSTOMERS].with_columns(key.alias(BUCKET))
        # one bucket per customer_id (a repeated customer_id keeps its first row's)
        people = customers.select("customer_id", BUCKET).unique("customer_id", keep="first")
        orders = _tagged(frames[ORDERS], people, "customer_id")
        by_order = orders.select("order_id", BUCKET).unique("order_id", keep="first")
        parts = {CUSTOMERS: customers, ORDERS: orders}
        for name in BY_ORDER:
            if name in frames:
                parts[name] = _tagged(frames[name], by_order, "order_id")
        for name, lf in parts.items():
            say(f"writing {TABLES[name].stem} in {n} buckets")
            _sink_buckets(lf, layout, name)
        for name, lf in frames.items():
            if name not in BUCKETED:
                lf.sink_parquet(layout.where(name))
        (tmp / LAYOUT_FILE).write_text(
            json.dumps(
                {
                    "format": FORMAT,
                    "version": VERSION,
                    "buckets": n,
                    "key": KEY,
                    "starts": starts,
                    "tables": layout.tables,
                },
                indent=1,
            )
        )
    return open_layout(target)


def _check_target(src: Path | None, target: Path) -> None:
    """Refuse a ``--out`` that writing the layout would destroy: the source folder, a
    folder holding it, or a non-empty folder that is not a layout (the layout replaces
    its target whole)."""
    where = target.resolve()
    if src is not None and (where == src.resolve() or where in src.resolve().parents):
        raise OlistUsageError(f"{target}: --out is the data folder or holds it; choose another")
    not_layout = where.exists() and not (where / LAYOUT_FILE).is_file()
    if not_layout and (not where.is_dir() or any(where.iterdir())):
        raise OlistUsageError(
            f"{target}: exists and is not a bucketed layout; the layout replaces its "
            "folder whole, so choose a new or empty folder"
        )


def _tagged(lf: pl.LazyFrame, keys: pl.LazyFrame, on: str) -> pl.LazyFrame:
    """``lf`` with the bucket of its key, rows in their order; rows whose key is not in
    ``keys`` (orphans: left out by the plan, counted by its integrity checks) go to
    bucket 0, so they are counted once."""
    return lf.join(keys, on=on, how="left", maintain_order="left").with_columns(
        pl.col(BUCKET).fill_null(0)
    )


def _sink_buckets(lf: pl.LazyFrame, layout: Layout, name: str) -> None:
    base = layout.path / TABLES[name].stem
    named = pl.col(BUCKET).cast(pl.String).str.zfill(5)
    lf.with_columns(named).sink_parquet(
        pl.PartitionBy(base, key=BUCKET, include_key=False), mkdir=True
    )
    for k in range(layout.buckets):  # a bucket without rows still has its (empty) file
        folder = layout.bucket_dir(name, k)
        if not folder.is_dir():
            folder.mkdir(parents=True)
            empty_table(name).collect().write_parquet(folder / "00000000.parquet")


def open_layout(path: str | os.PathLike[str]) -> Layout:
    """The layout in ``path``, checked: its file's format and version, and a folder of
    part files for every bucket of every table it lists; each mismatch is one line naming
    the table and the bucket."""
    folder = Path(path)
    spec_file = folder / LAYOUT_FILE
    try:
        spec = json.loads(spec_file.read_text())
    except (OSError, ValueError) as exc:
        raise OlistDataError(f"{spec_file}: not a readable layout file ({exc})") from None
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise OlistDataError(f"{spec_file}: not an olist-fast bucketed layout")
    if spec.get("version") != VERSION:
        raise OlistDataError(
            f"{spec_file}: layout version {spec.get('version')!r}, this olist-fast reads "
            f"version {VERSION}; write it again with olist-fast convert --buckets"
        )
    n, starts = spec["buckets"], tuple(spec["starts"])
    if len(starts) != n - 1 or list(starts) != sorted(starts):
        raise OlistDataError(f"{spec_file}: {n} buckets need {n - 1} sorted range starts")
    layout = Layout(folder, n, starts, spec["tables"])
    for name in layout.tables:
        stem = TABLES[name].stem
        if name not in BUCKETED:
            if not Path(layout.where(name)).is_file():
                raise OlistDataError(
                    f"{layout.where(name)}: file not found (listed in {LAYOUT_FILE})"
                )
            continue
        found = sorted(p.name for p in (folder / stem).glob(f"{BUCKET}=*"))
        want = [f"{BUCKET}={k:05d}" for k in range(n)]
        if found != want:
            extra = sorted(set(found) - set(want))
            missing = sorted(set(want) - set(found))
            what = f"bucket {missing[0]} missing" if missing else f"{extra[0]} not in the layout"
            raise OlistDataError(
                f"{folder / stem}: {what} ({LAYOUT_FILE} says {n} buckets); write the layout "
                "again with olist-fast convert --buckets"
            )
        for k in range(n):
            if not any(layout.bucket_dir(name, k).glob("*.parquet")):
                raise OlistDataError(f"{layout.bucket_dir(name, k)}: no Parquet file in the bucket")
    return layout
