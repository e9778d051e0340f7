"""A bucketed Parquet layout: the tables split by ranges of ``customer_unique_id``.

``olist-fast convert --buckets N`` writes it. Every row of a customer (the customer's
rows, orders, items, payments and reviews) lands in the same bucket, so the
per-customer feature plan runs on one bucket at a time and the buckets' tables, put one
after the other, are the table of all the data: the buckets are ranges of the id in
its sorted order, so the concatenation is sorted too. The product, seller, geolocation
and category tables are shared by every bucket (written once).

The ids are stored as 128-bit integers when every id the feature plan joins on is 32
lowercase hex digits, as Olist's are (:mod:`olist_fast.features.keys`): the plan then
reads 16 bytes per id instead of parsing 32 characters of text and converting them, in
every bucket of every run. Any other id (``"C17"``, upper case) keeps the layout in
text. :meth:`Layout.scan` gives the tables with text ids as any folder's;
:meth:`Layout.scan_bucket`, for the plan, keeps the integers.

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
from typing import TypeGuard

import polars as pl

from olist_fast.errors import OlistDataError, OlistUsageError
from olist_fast.features.keys import ID_COLUMNS, compact_id, is_not_hex_error, text_id
from olist_fast.io import (
    Coverage,
    Format,
    Location,
    atomic_dir,
    is_url,
    local_path,
    locate_olist,
    parquet_schema,
    payments_from_items,
    reading,
    scan_covered,
    scan_table,
    write_tables,
)
from olist_fast.schema import (
    CUSTOMERS,
    ORDER_ITEMS,
    ORDER_PAYMENTS,
    ORDER_REVIEWS,
    ORDERS,
    PLAN_TABLES,
    PRODUCTS,
    TABLES,
    empty_table,
)
from olist_fast.validation import (
    ValidationReport,
    absent_columns,
    check_frame,
    header_only,
    named_read_errors,
    not_present,
    summarise,
)

LAYOUT_FILE = "olist_layout.json"
FORMAT = "olist-fast bucketed layout"
VERSION = 2
"""Version 2 stores the ids as integers when they allow it (``"ids"`` in the layout file);
version 1 layouts (text ids) are read too."""
READS = (1, 2)
MAX_BUCKETS = 4096
KEY = "customer_unique_id"
BUCKET = "bucket"
BY_ORDER = (ORDER_ITEMS, ORDER_PAYMENTS, ORDER_REVIEWS)
"""Tables that reach their customer through ``order_id``."""
BUCKETED = (CUSTOMERS, ORDERS, *BY_ORDER)
SUBSETS = (PRODUCTS,)
"""Shared tables also written per bucket, as the rows the bucket's items name: the plan
then joins each bucket's items to a few of the products instead of all of them."""
COMPACTED = (*BUCKETED, PRODUCTS)
"""Tables whose plan ids (:data:`olist_fast.features.keys.ID_COLUMNS`) a layout with
integer ids stores as integers: every id the plan joins on, so it converts none."""
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
    subsets: tuple[str, ...] = ()
    """The shared tables (:data:`SUBSETS`) that also have per-bucket subsets."""
    ids: str = "text"
    """How the plan's ids are stored: ``"uint128"`` (128-bit integers), ``"text"`` (not
    all hex), or ``"unknown"`` (text, in a version 1 layout that did not check)."""

    @property
    def compact(self) -> bool:
        """Whether the plan's ids are stored as integers."""
        return self.ids == "uint128"

    @property
    def plan_compact(self) -> bool | None:
        """The feature plan's ``compact`` argument for this layout's buckets: False when
        the ids are known not to be hex (no conversion to try), else None."""
        return False if self.ids == "text" else None

    def bucket_dir(self, name: str, k: int) -> Path:
        return self.path / TABLES[name].stem / f"{BUCKET}={k:05d}"

    def where(self, name: str, k: int | None = None) -> str:
        """The file, or the glob of part files, of table ``name`` (bucket ``k``; None:
        every bucket)."""
        stem = TABLES[name].stem
        if name not in BUCKETED and (name not in self.subsets or k is None):
            return str(self.path / f"{stem}.parquet")  # shared (whole, for all buckets)
        part = f"{BUCKET}=*" if k is None else f"{BUCKET}={k:05d}"
        return str(self.path / stem / part / "*.parquet")

    def located(self, k: int | None = None) -> dict[str, tuple[str | Path, list[str]]]:
        """What :func:`olist_fast.io.locate_olist` returns for a folder, for the whole
        layout (``k`` None) or one bucket."""
        return {name: (self.where(name, k), list(cols)) for name, cols in self.tables.items()}

    def files(self) -> dict[str, str | Path]:
        """The glob of part files (or the file) of each table."""
        return {name: where for name, (where, _) in self.located().items()}

    def scan(self) -> tuple[dict[str, pl.LazyFrame], Coverage]:
        """Every table over all the buckets, typed, with what the source lacked (warned
        once, as for a folder), the ids as text."""
        if not self.compact:
            return scan_covered(self.located())
        return scan_covered(self.located(), scan=lambda name, where, cols: self._scan(name, where))

    def scan_bucket(self, k: int, coverage: Coverage) -> dict[str, pl.LazyFrame]:
        """The plan's tables of bucket ``k``, completed as the whole layout is
        (``coverage``: :meth:`scan`'s), without warning again: a table the source lacked
        is empty, and payments the source lacked come from the items. The ids are as
        stored (integers in a compact layout, which the plan keeps)."""
        out = {
            name: self._scan(name, where, text=False)
            if self.compact
            else scan_table(where, TABLES[name], header=cols)
            for name, (where, cols) in self.located(k).items()
            if name in PLAN_TABLES
        }
        for name in PLAN_TABLES:
            out.setdefault(name, empty_table(name))
        if coverage.amount_from_items:
            out[ORDER_PAYMENTS] = payments_from_items(out[ORDER_ITEMS])
        return out

    def _scan(self, name: str, where: str | Path, *, text: bool = True) -> pl.LazyFrame:
        """A table of a compact layout as written (its columns are :func:`convert`'s
        typed ones), its integer ids turned back into text unless ``text`` is False."""
        if name not in COMPACTED:
            return scan_table(where, TABLES[name])
        lf = pl.scan_parquet(where)
        return lf.with_columns(text_id(c) for c in ID_COLUMNS[name]) if text else lf


def bucket_of(starts: tuple[str, ...] | list[str]) -> pl.Expr:
    """The bucket of each ``customer_unique_id``: how many range starts are at or below
    it (0 for ids before the first start)."""
    ends = pl.Series("starts", list(starts), dtype=pl.String)
    found = pl.lit(ends).search_sorted(pl.col(KEY), side="right")
    return found.cast(pl.UInt32).fill_null(0).alias(BUCKET)


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
    frames, tables, files = source_tables(src, fmt)
    # a value that cannot be read: the one line `validate` gives (file, column, row)
    with named_read_errors(files), reading(str(src)):
        return _write_layout(src, dst, buckets, frames, tables, starts, say)


def copy_tables(src: Location, dst: str | os.PathLike[str], *, fmt: Format = "auto") -> list[Path]:
    """``convert`` without buckets: typed Parquet copies of the tables of ``src`` (a
    folder, or a layout with its buckets put back together) in ``dst``, all or none
    (:func:`olist_fast.io.write_tables`); a value that cannot be read is the one line
    ``validate`` gives."""
    if is_layout(src):
        layout = open_layout(local_path(src))
        frames, files = layout.scan()[0], layout.files()
    else:
        located = locate_olist(src, fmt=fmt)
        frames, _ = scan_covered(located)
        files = {name: where for name, (where, _) in located.items()}
    with named_read_errors(files), reading(str(src)):
        return write_tables(frames, dst)


def source_tables(
    src: Location, fmt: Format = "auto"
) -> tuple[dict[str, pl.LazyFrame], dict[str, list[str]], dict[str, str | Path]]:
    """The tables ``src`` holds (a folder of Olist files, or a layout: re-bucketed) as
    typed lazy frames with text ids, not completed; the columns each table's source had;
    and the file (or glob of parts) of each."""
    if is_layout(src):
        layout = open_layout(local_path(src))
        located = layout.located()
        frames = {
            name: layout._scan(name, where)
            if layout.compact
            else scan_table(where, TABLES[name], header=cols)
            for name, (where, cols) in located.items()
        }
        return frames, {k: list(c) for k, c in layout.tables.items()}, layout.files()
    located = locate_olist(src, fmt=fmt)
    frames = {
        name: scan_table(where, TABLES[name], header=cols)
        for name, (where, cols) in located.items()
    }
    return (
        frames,
        {k: list(c) for k, (_, c) in located.items()},
        {k: w for k, (w, _) in located.items()},
    )


def _write_layout(
    src: Location,
    dst: str | os.PathLike[str],
    buckets: int,
    frames: dict[str, pl.LazyFrame],
    tables: dict[str, list[str]],
    starts: Sequence[str] | None,
    say: Callable[[str], None],
) -> Layout:
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
        subsets = tuple(t for t in SUBSETS if t in tables and ORDER_ITEMS in tables)
        try:  # the ids as integers; text if any is not 32 lowercase hex digits
            layout = _write_tables(
                frames, Layout(tmp, n, tuple(starts), tables, subsets, "uint128"), say
            )
        except pl.exceptions.ComputeError as exc:
            if not is_not_hex_error(exc):
                raise
            say("the ids are not all 32 lowercase hex digits: stored as text")
            for name in tables:
                _remove(tmp, name)
            layout = _write_tables(
                frames, Layout(tmp, n, tuple(starts), tables, subsets, "text"), say
            )
        (tmp / LAYOUT_FILE).write_text(
            json.dumps(
                {
                    "format": FORMAT,
                    "version": VERSION,
                    "buckets": n,
                    "key": KEY,
                    "ids": layout.ids,
                    "subsets": list(layout.subsets),
                    "starts": starts,
                    "tables": layout.tables,
                },
                indent=1,
            )
        )
    return open_layout(target)


def _write_tables(
    frames: Mapping[str, pl.LazyFrame], layout: Layout, say: Callable[[str], None]
) -> Layout:
    """Write every table of ``frames`` into ``layout``'s folder: the customer tables by
    bucket, the others once; with ``layout.compact``, the plan's ids as integers (a
    :class:`polars.exceptions.ComputeError` that
    :func:`~olist_fast.features.keys.is_not_hex_error` recognises when one is not hex)."""
    # the bucket from the id's text (the range starts are text)
    frames = {**frames, CUSTOMERS: frames[CUSTOMERS].with_columns(bucket_of(layout.starts))}
    if layout.compact:
        frames = {
            name: lf.with_columns(compact_id(c) for c in ID_COLUMNS[name])
            if name in COMPACTED
            else lf
            for name, lf in frames.items()
        }
    customers = frames[CUSTOMERS]
    # a null key joins nothing (the plan leaves such rows out and counts them): it never
    # ties rows of two buckets together
    people = customers.select("customer_id", BUCKET).drop_nulls("customer_id").unique()
    by_order = (
        frames[ORDERS]
        .select("order_id", "customer_id")
        .drop_nulls("order_id")
        .join(people, on="customer_id")
        .select("order_id", BUCKET)
        .unique()
    )  # the orders of known customers
    _refuse_spanning(
        [(CUSTOMERS, "customer_id", people), (ORDERS, "order_id", by_order)], layout.compact
    )
    # an order of no known customer (an orphan, counted by the plan) goes where its
    # order_id's customer is, with the order it repeats; else to bucket 0
    orders = _tagged(
        _tagged(frames[ORDERS], people, "customer_id", fill=None),
        by_order.rename({BUCKET: "by_order"}),
        "order_id",
        fill=pl.col("by_order"),
    ).drop("by_order")
    parts = {CUSTOMERS: customers, ORDERS: orders}
    for name in BY_ORDER:
        if name in frames:
            parts[name] = _tagged(frames[name], by_order, "order_id")
    for name, lf in parts.items():
        say(f"writing {TABLES[name].stem} in {layout.buckets} buckets")
        _sink_buckets(lf, layout, name)
    for name, lf in frames.items():
        if name not in BUCKETED:
            lf.sink_parquet(layout.where(name))
    if PRODUCTS in layout.subsets:
        # each bucket's subset: the products its items name (a product in several buckets
        # is in each; rows in the table's order)
        named = parts[ORDER_ITEMS].select("product_id", BUCKET).unique()
        subsets = frames[PRODUCTS].join(named, on="product_id", maintain_order="left")
        say(f"writing {TABLES[PRODUCTS].stem} subsets in {layout.buckets} buckets")
        _sink_buckets(subsets, layout, PRODUCTS)
    return layout


def _refuse_spanning(keyed: Sequence[tuple[str, str, pl.LazyFrame]], compact: bool) -> None:
    """Refuse, in one line, a ``customer_id`` whose rows name customer_unique_ids in two
    buckets, or an ``order_id`` whose rows belong to customers in two: the rows that
    reach a customer through that key could not all be in the customer's bucket, so a
    layout could not give the folder's table. (Repeated keys within one bucket are fine:
    the plan counts them there as it does in a folder.)"""
    checks = [
        pairs.group_by(key)
        .agg(pl.len().alias("buckets"))
        .filter(pl.col("buckets") > 1)
        .select(pl.len().alias("keys"), pl.col(key).min())
        for _, key, pairs in keyed
    ]
    for (name, key, _), found in zip(keyed, pl.collect_all(checks), strict=True):
        n = found["keys"].item()
        if n:
            example = found.select(text_id(key) if compact else pl.col(key)).item()
            raise OlistDataError(
                f"{TABLES[name].stem}: {key} {example!r} belongs to customers in different "
                f"buckets ({n:,} such {key}s: one account under two customer_unique_ids, or "
                "one order under two accounts); a bucketed layout needs each under one "
                "customer: remove the repeated rows, or read the folder without a layout"
            )


def _remove(folder: Path, name: str) -> None:
    """Whatever :func:`_write_tables` wrote of table ``name`` in ``folder``."""
    import shutil

    stem = TABLES[name].stem
    shutil.rmtree(folder / stem, ignore_errors=True)
    (folder / f"{stem}.parquet").unlink(missing_ok=True)


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


def _tagged(
    lf: pl.LazyFrame, keys: pl.LazyFrame, on: str, *, fill: pl.Expr | None = pl.lit(0)
) -> pl.LazyFrame:
    """``lf`` with the bucket of its key (``keys``: one bucket per key), rows in their
    order; rows whose key is not in ``keys`` (orphans: left out by the plan, counted by
    its integrity checks) get ``fill``, bucket 0 by default, so they are counted once."""
    tagged = lf.join(keys, on=on, how="left", maintain_order="left")
    if fill is None:
        return tagged
    return tagged.with_columns(pl.coalesce(BUCKET, fill, 0).cast(pl.UInt32).alias(BUCKET))


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
            empty = pl.DataFrame(schema=lf.collect_schema()).drop(BUCKET)
            empty.write_parquet(folder / "00000000.parquet")


def _spec_fields(
    spec: Mapping[str, object],
) -> tuple[int, tuple[str, ...], dict[str, list[str]], tuple[str, ...], str]:
    """The buckets, range starts, tables with their columns, subsets and ids of a layout
    file's mapping, each checked for its type; a ValueError names the first key that is
    missing or not what :func:`write_layout` writes."""

    def field(key: str, default: object = None) -> object:
        if key not in spec and default is None:
            raise ValueError(f'"{key}" missing')
        return spec.get(key, default)

    def texts(value: object) -> TypeGuard[list[str]]:
        return isinstance(value, list) and all(isinstance(x, str) for x in value)

    n = field("buckets")
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_BUCKETS:
        raise ValueError(f'"buckets": expected a whole number 1-{MAX_BUCKETS}, got {n!r}')
    starts = field("starts")
    if not texts(starts):
        raise ValueError(f'"starts": expected a list of ids (texts), got {starts!r}')
    tables = field("tables")
    if not isinstance(tables, dict):
        raise ValueError(f'"tables": expected a mapping of tables to columns, got {tables!r}')
    for name, cols in tables.items():
        if name not in TABLES:
            raise ValueError(f'"tables": unknown table {name!r}')
        if not texts(cols):
            raise ValueError(f'"tables": {name}: expected a list of columns, got {cols!r}')
    for name in (ORDERS, CUSTOMERS):
        if name not in tables:
            raise ValueError(f'"tables": {name} not listed (a layout holds orders and customers)')
    subsets = field("subsets", [])
    if not texts(subsets) or not set(subsets) <= set(SUBSETS) & set(tables):
        raise ValueError(f'"subsets": expected shared tables of the layout, got {subsets!r}')
    ids = field("ids", "unknown" if spec.get("version") == 1 else None)
    if ids not in ("text", "uint128", "unknown"):
        raise ValueError(f'"ids": expected "uint128" or "text", got {ids!r}')
    return n, tuple(starts), dict(tables), tuple(subsets), str(ids)


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
    if spec.get("version") not in READS:
        raise OlistDataError(
            f"{spec_file}: layout version {spec.get('version')!r}, this olist-fast reads "
            f"versions {', '.join(map(str, READS))}; write it again with olist-fast convert "
            "--buckets"
        )
    try:
        n, starts, tables, subsets, ids = _spec_fields(spec)
    except ValueError as exc:
        raise OlistDataError(
            f"{spec_file}: not a complete layout file ({exc}); write it again with olist-fast "
            "convert --buckets"
        ) from None
    if len(starts) != n - 1 or list(starts) != sorted(starts):
        raise OlistDataError(f"{spec_file}: {n} buckets need {n - 1} sorted range starts")
    layout = Layout(folder, n, starts, tables, subsets, ids)
    for name in layout.tables:
        stem = TABLES[name].stem
        if name not in BUCKETED:
            if not Path(layout.where(name)).is_file():
                raise OlistDataError(
                    f"{layout.where(name)}: file not found (listed in {LAYOUT_FILE})"
                )
            if name not in subsets:
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
            parts = list(layout.bucket_dir(name, k).glob("*.parquet"))
            if not parts:
                raise OlistDataError(f"{layout.bucket_dir(name, k)}: no Parquet file in the bucket")
            for part in parts:  # a footer each: a part cut short is named here
                parquet_schema(part)
    return layout


def validate_layout(path: str | os.PathLike[str]) -> ValidationReport:
    """``validate`` for a layout: the layout's file and parts (:func:`open_layout`), then
    the checks ``validate`` runs on a folder's typed tables, on each table with its
    buckets put together (rows are counted in that order)."""
    report = ValidationReport(data_dir=Path(path))
    try:
        layout = open_layout(path)
    except OlistDataError as exc:
        report.errors.append(str(exc))
        return report
    frames: dict[str, pl.DataFrame] = {}
    absent: set[str] = set()
    for name, spec in TABLES.items():
        if name not in layout.tables:
            absent.add(name)
            not_present(name, report, f"{layout.path}: {spec.stem} not in the layout")
            continue
        where, cols = layout.where(name), layout.tables[name]
        lf = layout._scan(name, where) if layout.compact else scan_table(where, spec)
        with reading(where):
            df = lf.collect()
        missing = [c for c in spec.optional_columns if c not in set(cols)]
        absent_columns(where, spec, missing, report)
        if df.height == 0:
            header_only(where, spec, report)
            continue
        checked = check_frame(df, spec, where, missing, report, rows=False)
        if checked is not None:
            frames[name] = checked
            report.rows[name] = checked.height
    summarise(frames, absent, report)
    return report
