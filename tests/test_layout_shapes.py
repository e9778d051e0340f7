"""The bucketed layout on shops unlike the generated demo: the shapes docs/your-data.md
lets users bring (ids that are not hex, missing tables and columns, refunds, other
statuses, ISO timestamps, a transaction log) and dirty keys. For each, the feature table
of a layout of 1, 3 and more buckets than customers is the folder's exactly, with the
same warnings (integrity counts, statuses, refunds, features off), and a small ``run``
writes the same scores; `validate` says of a layout what it says of its folder, and
`convert` re-buckets a layout or converts a log. Errors are one line."""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from olist_fast import layout as L
from olist_fast.cli import app
from olist_fast.config import RunConfig
from olist_fast.errors import OlistDataError
from olist_fast.feature_files import feature_table, write_feature_table
from olist_fast.schema import TABLES
from olist_fast.synth import make_olist

Tables = dict[str, pl.DataFrame]
LABELLED = "2018-03-01"  # the label window is covered: the table has labels
AS_OFS = (LABELLED, None)  # None: the end of the healthy period
MANY = 24  # more buckets than the shop has customers
IDS = ("order_id", "customer_id", "customer_unique_id", "product_id", "seller_id")
ORPHAN = "c" * 32  # a customer_id no customer has


# -- the shops ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def repeat_shop() -> Tables:
    """A generated shop where a third of the buyers buy again (about 480 customers, four
    orders each on average), without the geolocation table."""
    tables = make_olist(scale=0.005, random_state=3, repeat_rate=0.35)
    return {k: v for k, v in tables.items() if k != "geolocation"}


def cut(tables: Tables, k: int) -> Tables:
    """The shop's first ``k`` customers (by id) with their rows."""
    people = tables["customers"]["customer_unique_id"].unique().sort().head(k).implode()
    out = dict(tables)
    out["customers"] = tables["customers"].filter(pl.col("customer_unique_id").is_in(people))
    accounts = out["customers"]["customer_id"].implode()
    out["orders"] = tables["orders"].filter(pl.col("customer_id").is_in(accounts))
    orders = out["orders"]["order_id"].implode()
    for name in ("order_items", "order_payments", "order_reviews"):
        out[name] = tables[name].filter(pl.col("order_id").is_in(orders))
    return out


@pytest.fixture(scope="module")
def shop(repeat_shop: Tables) -> Tables:
    """16 customers of ``repeat_shop`` (about 70 orders)."""
    return cut(repeat_shop, 16)


def write(tables: Tables, folder: Path, fmt: str = "parquet") -> Path:
    folder.mkdir(parents=True)
    for name, df in tables.items():
        path = folder / f"{TABLES[name].stem}.{fmt}"
        if fmt == "parquet":
            df.write_parquet(path)
        else:
            df.write_csv(path)
    return folder


def renamed(tables: Tables, names: Callable[[str, pl.Series], dict[str, str]]) -> Tables:
    """Every id column renamed through one mapping per id kind over all tables (so the
    joins still match): ``names(kind, distinct sorted ids)`` gives the mapping."""
    maps = {}
    for kind in IDS:
        seen = [df[kind] for df in tables.values() if kind in df.columns]
        maps[kind] = names(kind, pl.concat(seen).drop_nulls().unique().sort())
    return {
        name: df.with_columns(pl.col(c).replace_strict(maps[c]) for c in IDS if c in df.columns)
        for name, df in tables.items()
    }


def every(n: int) -> pl.Expr:
    """True on every n-th row (0, n, 2n...)."""
    return pl.int_range(pl.len()) % n == 0


# -- the shapes -----------------------------------------------------------------------------
def text_ids(t: Tables) -> tuple[Tables, str]:
    """Ids as shops write them: "C17", "acct-3", "order-0042" (mixed lengths)."""
    prefix = {"order_id": "order-", "customer_id": "acct-", "customer_unique_id": "C"}

    def names(kind: str, ids: pl.Series) -> dict[str, str]:
        if kind not in prefix:
            return {v: v for v in ids}
        width = 4 if kind == "order_id" else 0
        return {v: f"{prefix[kind]}{i * 7:0{width}d}" for i, v in enumerate(ids)}

    return renamed(t, names), "parquet"


def upper_hex(t: Tables) -> tuple[Tables, str]:
    return renamed(t, lambda _, ids: {v: v.upper() for v in ids}), "parquet"


def one_kind_not_hex(t: Tables) -> tuple[Tables, str]:
    """Only the seller ids are not hex: every id is then kept as text."""
    return renamed(t, lambda k, ids: {v: ("S" + v if k == "seller_id" else v) for v in ids}), "csv"


def unicode_ids(t: Tables) -> tuple[Tables, str]:
    odd = [
        "Ärger",
        "éclair",
        "Zoë",
        "zoe",
        "日本",
        "😀x",
        " lead",
        "trail ",
        "a,b",
        'q"t',
        "10",
        "9",
    ]

    def names(kind: str, ids: pl.Series) -> dict[str, str]:
        if kind != "customer_unique_id":
            return {v: v for v in ids}
        return {v: odd[i] if i < len(odd) else f"n{i}" for i, v in enumerate(ids)}

    return renamed(t, names), "csv"


def integer_ids(t: Tables) -> tuple[Tables, str]:
    """customer_unique_id stored as integers in a Parquet file (read as their text)."""
    ids = t["customers"]["customer_unique_id"].unique().sort()
    numbers = {v: i * 37 for i, v in enumerate(ids)}
    cuid = pl.col("customer_unique_id").replace_strict(numbers, return_dtype=pl.Int64)
    return {**t, "customers": t["customers"].with_columns(cuid)}, "parquet"


def without(*names: str) -> Callable[[Tables], tuple[Tables, str]]:
    def shape(t: Tables) -> tuple[Tables, str]:
        return {k: v for k, v in t.items() if k not in names}, "parquet"

    return shape


def no_delivery_dates(t: Tables) -> tuple[Tables, str]:
    dates = ("order_delivered_customer_date", "order_estimated_delivery_date")
    return {**t, "orders": t["orders"].drop(dates)}, "parquet"


def header_only(t: Tables) -> tuple[Tables, str]:
    """Payments and reviews files with only their header (amounts from the items)."""
    cleared = {n: t[n].clear() for n in ("order_payments", "order_reviews")}
    return {**t, **cleared}, "csv"


def refunds_and_statuses(t: Tables) -> tuple[Tables, str]:
    value = pl.col("payment_value")
    payments = t["order_payments"].with_columns(
        pl.when(every(5)).then(-value).otherwise(value).alias("payment_value")
    )
    k = pl.int_range(pl.len()) % 6
    status = (
        pl.when(k == 0).then(pl.lit("completed"))
        .when(k == 1).then(pl.lit("returned"))
        .when(k == 2).then(pl.lit("refunded"))
        .when(k == 3).then(pl.lit("Completed"))
        .otherwise(pl.col("order_status"))
    )  # fmt: skip
    return {
        **t,
        "order_payments": payments,
        "orders": t["orders"].with_columns(status.alias("order_status")),
    }, "parquet"


def iso_timestamps(t: Tables) -> tuple[Tables, str]:
    """ISO 8601 as exports write it, a shape per table: 'T' and an offset, 'Z', a space
    and fractions with a compact offset, minutes only."""
    shapes = {
        "orders": "%Y-%m-%dT%H:%M:%S+02:00",
        "order_reviews": "%Y-%m-%dT%H:%M:%SZ",
        "order_items": "%Y-%m-%d %H:%M:%S%.3f-0300",
    }

    def text(name: str, df: pl.DataFrame) -> pl.DataFrame:
        fmt = shapes.get(name, "%Y-%m-%dT%H:%M")
        stamps = [c for c, d in df.schema.items() if isinstance(d, pl.Datetime)]
        return df.with_columns(pl.col(c).dt.to_string(fmt) for c in stamps)

    return {name: text(name, df) for name, df in t.items()}, "csv"


def other_parquet_types(t: Tables) -> tuple[Tables, str]:
    """Parquet written by another tool: zoned nanosecond times, float32, int32,
    categorical ids and statuses."""

    def retyped(df: pl.DataFrame) -> pl.DataFrame:
        def one(c: str, d: pl.DataType) -> pl.Expr:
            if isinstance(d, pl.Datetime):
                return pl.col(c).dt.replace_time_zone("UTC").cast(pl.Datetime("ns", "UTC"))
            if d == pl.Float64:
                return pl.col(c).cast(pl.Float32)
            if d == pl.Int64:
                return pl.col(c).cast(pl.Int32)
            if c in (*IDS, "order_status", "payment_type"):
                return pl.col(c).cast(pl.Categorical)
            return pl.col(c)

        return df.select(one(c, d) for c, d in df.schema.items())

    return {name: retyped(df) for name, df in t.items()}, "parquet"


def orphans(t: Tables) -> tuple[Tables, str]:
    """Items and payments of an order that does not exist (one item key repeated), and
    orders whose customer_id matches no customer."""
    gone = "f" * 32
    items = (
        t["order_items"]
        .head(3)
        .with_columns(pl.lit(gone).alias("order_id"), pl.Series("order_item_id", [1, 1, 2]))
    )
    payments = (
        t["order_payments"]
        .head(2)
        .with_columns(
            pl.lit(gone).alias("order_id"), pl.lit(1, pl.Int64).alias("payment_sequential")
        )
    )
    lost = (
        t["orders"]
        .head(2)
        .with_columns(
            pl.Series("order_id", ["e" * 32, "d" * 32]), pl.lit(ORPHAN).alias("customer_id")
        )
    )
    return {
        **t,
        "order_items": pl.concat([t["order_items"], items]),
        "order_payments": pl.concat([t["order_payments"], payments]),
        "orders": pl.concat([t["orders"], lost]),
    }, "parquet"


def repeated_rows(t: Tables) -> tuple[Tables, str]:
    """Rows repeated within one customer: orders, customers, payments, items."""
    again = {"orders": 3, "customers": 2, "order_payments": 2, "order_items": 2}
    return {**t, **{n: pl.concat([t[n], t[n].tail(k)]) for n, k in again.items()}}, "csv"


def null_keys(t: Tables) -> tuple[Tables, str]:
    """Customers without a customer_unique_id; orders without a customer or a purchase
    time (orphan and undated: counted, left out)."""

    def blank(c: str, n: int, offset: int = 0) -> pl.Expr:
        hit = (pl.int_range(pl.len()) + offset) % n == 0
        return pl.when(hit).then(None).otherwise(pl.col(c)).alias(c)

    return {
        **t,
        "customers": t["customers"].with_columns(blank("customer_unique_id", 9)),
        "orders": t["orders"].with_columns(
            blank("customer_id", 11), blank("order_purchase_timestamp", 13, 5)
        ),
    }, "parquet"


def customers_without_orders(t: Tables) -> tuple[Tables, str]:
    extra = pl.DataFrame(
        {
            "customer_id": [f"{i:032x}" for i in range(5)],
            "customer_unique_id": [f"{'f' * 31}{i}" for i in range(5)],
        }
    )
    extra = extra.join(
        t["customers"].drop("customer_id", "customer_unique_id").head(1), how="cross"
    )
    customers = pl.concat([t["customers"], extra.select(t["customers"].columns)])
    return {**t, "customers": customers}, "parquet"


SHAPES = {
    "text_ids": text_ids,
    "upper_case_hex": upper_hex,
    "one_kind_of_id_not_hex": one_kind_not_hex,
    "unicode_ids_csv": unicode_ids,
    "integer_ids": integer_ids,
    "no_reviews": without("order_reviews"),
    "no_payments": without("order_payments"),
    "no_items_products": without("order_items", "products"),
    "no_delivery_dates": no_delivery_dates,
    "header_only_payments_reviews": header_only,
    "refunds_and_statuses": refunds_and_statuses,
    "iso_timestamps_csv": iso_timestamps,
    "other_parquet_types": other_parquet_types,
    "orphans": orphans,
    "repeated_rows": repeated_rows,
    "null_keys": null_keys,
    "customers_without_orders": customers_without_orders,
}


# -- comparing ------------------------------------------------------------------------------
def warned(caplog: pytest.LogCaptureFixture, fn: Callable[[], pl.DataFrame]):
    """``fn()`` and the warnings it logged."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="olist_fast"):
        out = fn()
    return out, [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def assert_same_tables(
    folder: Path, layouts: Path | list[Path], caplog, as_ofs=AS_OFS
) -> list[list[str]]:
    """Each layout's feature table and warnings are the folder's at each date; returns
    the folder's warnings."""
    said = []
    for as_of in as_ofs:
        want, want_said = warned(caplog, lambda a=as_of: feature_table(folder, as_of=a))
        assert want.height > 0
        for lay in layouts if isinstance(layouts, list) else [layouts]:
            got, got_said = warned(caplog, lambda a=as_of, p=lay: feature_table(p, as_of=a))
            assert_frame_equal(got, want, check_exact=True)
            assert got_said == want_said
        said.append(want_said)
    return said


def integrity(location: Path, as_of: str):
    """The integrity counts and unknown statuses the features stage sums (a layout: over
    its buckets, as :mod:`olist_fast.bucketed` does)."""
    from olist_fast.bucketed import snapshots_by_bucket
    from olist_fast.data import read_source
    from olist_fast.features.snapshot import collect_snapshots

    src = read_source(location, as_of)
    if src.layout is None:
        got = collect_snapshots(src.tables, [src.as_of])
        return got.integrity, got.statuses
    done = snapshots_by_bucket(
        src.layout, src.coverage, src.tables["orders"], [src.as_of], lambda *_: None
    )
    return done.summary.integrity, done.summary.statuses


# -- features on each shape -----------------------------------------------------------------
@pytest.mark.parametrize("name", list(SHAPES))
def test_a_shop_shape_gives_the_folders_table(name, shop, tmp_path, caplog) -> None:
    tables, fmt = SHAPES[name](shop)
    folder = write(tables, tmp_path / "shop", fmt)
    people = tables["customers"]["customer_unique_id"].drop_nulls().n_unique()
    lays = {n: L.write_layout(folder, tmp_path / f"n{n}", n) for n in (1, 3, MANY)}
    assert [lay.buckets for lay in lays.values()] == [1, 3, people]
    paths = [lay.path for lay in lays.values()]
    assert_same_tables(folder, paths, caplog, as_ofs=(LABELLED,))
    # a bucket per customer costs a plan per customer: one date is enough there
    assert_same_tables(folder, paths[:2], caplog, as_ofs=(None,))


def test_which_shapes_keep_integer_ids(shop, tmp_path) -> None:
    """Any id that is not 32 lowercase hex digits keeps the whole layout in text."""
    for name, want in [("text_ids", "text"), ("upper_case_hex", "text"),
                       ("one_kind_of_id_not_hex", "text"), ("no_reviews", "uint128")]:  # fmt: skip
        tables, fmt = SHAPES[name](shop)
        lay = L.write_layout(write(tables, tmp_path / name, fmt), tmp_path / f"{name}-lay", 3)
        assert lay.ids == want, name


@pytest.mark.parametrize("name", ["orphans", "repeated_rows", "null_keys", "refunds_and_statuses"])
def test_dirty_rows_are_counted_as_in_the_folder(name, shop, tmp_path, caplog) -> None:
    """Integrity counts, refunds and unknown statuses summed over the buckets are the
    folder's (and the warnings say them the same way)."""
    tables, fmt = SHAPES[name](shop)
    folder = write(tables, tmp_path / "shop", fmt)
    want_counts, want_statuses = integrity(folder, LABELLED)
    assert want_counts.problems() or want_counts.notes()  # the shape is dirty
    for n in (3, MANY):
        lay = L.write_layout(folder, tmp_path / f"n{n}", n)
        counts, statuses = integrity(lay.path, LABELLED)
        assert counts == want_counts
        assert_frame_equal(statuses, want_statuses)
    (said,) = assert_same_tables(folder, tmp_path / "n3", caplog, as_ofs=(LABELLED,))
    assert any("data integrity" in s or "refunds" in s for s in said)


# -- keys whose rows would be in two buckets ------------------------------------------------
def _spanning(shop: Tables, key: str) -> tuple[Tables, str]:
    """``customer_id``: the first customer's account also under the last customer;
    ``order_id``: the first customer's order also under the last customer. Returns the
    tables and the key shown in the refusal."""
    customers, orders = shop["customers"], shop["orders"]
    first, last = customers.sort("customer_unique_id")[[0, -1]].iter_rows(named=True)
    if key == "customer_id":
        row = pl.DataFrame([{**last, "customer_id": first["customer_id"]}])
        return {**shop, "customers": pl.concat([customers, row])}, first["customer_id"]
    order = orders.filter(pl.col("customer_id") == first["customer_id"]).row(0, named=True)
    row = pl.DataFrame([{**order, "customer_id": last["customer_id"]}])
    return {**shop, "orders": pl.concat([orders, row])}, order["order_id"]


@pytest.mark.parametrize("key", ["customer_id", "order_id"])
def test_a_key_of_two_buckets_one_bucket_is_the_folder_more_are_refused(
    key, shop, tmp_path, caplog
) -> None:
    tables, shown = _spanning(shop, key)
    folder = write(tables, tmp_path / "shop")
    one = L.write_layout(folder, tmp_path / "one", 1)
    (said, _) = assert_same_tables(folder, one.path, caplog)
    assert any("data integrity" in s for s in said)
    assert integrity(one.path, LABELLED)[0] == integrity(folder, LABELLED)[0]
    for n in (3, MANY):
        with pytest.raises(OlistDataError, match=f"{key} '{shown}' belongs to customers") as e:
            L.write_layout(folder, tmp_path / f"n{n}", n)
        assert "\n" not in str(e.value) and not (tmp_path / f"n{n}").exists()


def test_an_orphan_order_repeating_an_order_id_of_another_bucket(shop, tmp_path, caplog):
    customers = shop["customers"].sort("customer_unique_id")
    last = customers.row(-1, named=True)  # in the last bucket; the orphan goes to bucket 0
    order = shop["orders"].filter(pl.col("customer_id") == last["customer_id"]).row(0, named=True)
    copy = pl.DataFrame([{**order, "customer_id": ORPHAN}])
    folder = write({**shop, "orders": pl.concat([shop["orders"], copy])}, tmp_path / "shop")
    counts = integrity(folder, LABELLED)[0]
    assert (counts.duplicate_orders, counts.orphan_orders) == (1, 1)
    lay = L.write_layout(folder, tmp_path / "lay", 3)
    assert_same_tables(folder, lay.path, caplog)
    assert integrity(lay.path, LABELLED)[0] == counts


@pytest.mark.parametrize("key", ["order_id", "customer_id"])
def test_null_keys_in_two_buckets_are_named_as_empty(key, shop, tmp_path, caplog) -> None:
    # the key left empty on rows of the first customer and of the last (by id)
    customers = shop["customers"].sort("customer_unique_id")
    ends = pl.concat([customers.head(1), customers.tail(1)])["customer_id"].implode()
    table = "orders" if key == "order_id" else "customers"
    df = shop[table]
    blank = pl.when(pl.col("customer_id").is_in(ends)).then(None).otherwise(pl.col(key))
    folder = write({**shop, table: df.with_columns(blank.alias(key))}, tmp_path / "shop")
    try:
        lay = L.write_layout(folder, tmp_path / "lay", 3)
    except OlistDataError as exc:  # refused: then in words that fit an empty key
        assert "\n" not in str(exc) and f"{key} None" not in str(exc)
    else:
        assert_same_tables(folder, lay.path, caplog)


# -- small shops and empty buckets ----------------------------------------------------------
def test_a_shop_of_one_customer(repeat_shop, tmp_path, caplog) -> None:
    orders = repeat_shop["orders"].join(repeat_shop["customers"], on="customer_id")
    most = orders.group_by("customer_unique_id").len().sort("len", "customer_unique_id")[-1]
    people = repeat_shop["customers"].filter(
        pl.col("customer_unique_id") == most["customer_unique_id"].item()
    )
    one = cut({**repeat_shop, "customers": people}, 1)
    assert one["orders"].height > 2  # a customer who bought again
    folder = write(one, tmp_path / "shop")
    first = one["orders"]["order_purchase_timestamp"].min()
    for n in (1, 3, 8):
        lay = L.write_layout(folder, tmp_path / f"n{n}", n)
        assert lay.buckets == 1 and lay.starts == ()
        assert_same_tables(folder, lay.path, caplog, as_ofs=(first + timedelta(days=1), None))
        with pytest.raises(OlistDataError, match="before the first purchase") as err:
            feature_table(lay.path, as_of=first)
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_bucket_of_customers_who_never_bought(where, shop, tmp_path, caplog) -> None:
    """Every order of one bucket's customers is canceled: the bucket gives no row; the
    table, and the files written bucket by bucket, are the folder's."""
    ids = shop["customers"]["customer_unique_id"].unique().sort()
    starts = [ids[5], ids[10]]
    lo, hi = {"first": ("", starts[0]), "middle": starts, "last": (starts[1], "g")}[where]
    inside = pl.col("customer_unique_id").is_between(pl.lit(lo), pl.lit(hi), closed="left")
    accounts = shop["customers"].filter(inside)["customer_id"].implode()
    canceled = pl.when(pl.col("customer_id").is_in(accounts)).then(pl.lit("canceled"))
    orders = shop["orders"].with_columns(canceled.otherwise("order_status").alias("order_status"))
    folder = write({**shop, "orders": orders}, tmp_path / "shop")
    lay = L.write_layout(folder, tmp_path / "lay", 3, starts=starts)
    assert_same_tables(folder, lay.path, caplog)
    for suffix in (".csv", ".parquet"):
        want, got = tmp_path / f"want{suffix}", tmp_path / f"got{suffix}"
        write_feature_table(want, folder, as_of=LABELLED)
        write_feature_table(got, lay.path, as_of=LABELLED)
        if suffix == ".csv":
            assert got.read_bytes() == want.read_bytes()
        else:
            assert_frame_equal(pl.read_parquet(got), pl.read_parquet(want), check_exact=True)


# -- the transaction log --------------------------------------------------------------------
def _order_lines(shop: Tables, path: Path) -> Path:
    """The shop as a CSV log of order lines (two per order), customers under a text
    column ``client``, times as ISO 8601 with a +02:00 offset."""
    from tests.helpers import shop_as_log

    log, _ = shop_as_log(shop)
    local = pl.col("order_purchase_timestamp") + timedelta(hours=2)
    lines = pl.concat(
        [log.with_columns(pl.col("payment_value") * share) for share in (0.25, 0.75)]
    ).select(
        pl.col("order_id").alias("order"),
        pl.concat_str(pl.lit("client-"), pl.col("customer_unique_id").str.slice(0, 6)).alias(
            "client"
        ),
        local.dt.to_string("%Y-%m-%dT%H:%M:%S+02:00").alias("ts"),
        pl.col("payment_value").alias("amount"),
        pl.col("order_status").alias("status"),
    )
    lines.write_csv(path)
    return path


LOG_COLUMNS = dict(customer_id="client", timestamp="ts", amount="amount", order_id="order")
LOG_OPTIONS = ["--customer-col", "client", "--time-col", "ts", "--order-col", "order",
               "--status-col", "status"]  # fmt: skip


def test_a_transaction_log_through_a_layout(shop, tmp_path, caplog) -> None:
    """A log has no convert of its own: its tables written as a folder
    (:func:`olist_fast.transactions.olist_folder`) and converted give the table of the
    log itself."""
    from olist_fast.transactions import from_transactions, olist_folder

    log = _order_lines(shop, tmp_path / "log.csv")
    tables = from_transactions(log, **LOG_COLUMNS, status="status")
    with olist_folder(tables) as folder:
        for n in (1, 3, MANY):
            lay = L.write_layout(folder, tmp_path / f"n{n}", n)
            assert lay.ids == "text"
            for as_of in AS_OFS if n < MANY else (LABELLED,):
                want = feature_table(tables=tables, as_of=as_of)
                assert_frame_equal(feature_table(lay.path, as_of=as_of), want, check_exact=True)
        assert_same_tables(folder, tmp_path / "n3", caplog)


def test_cli_features_of_a_log_and_of_its_layout(cli: CliRunner, shop, tmp_path) -> None:
    from olist_fast.transactions import from_transactions, olist_folder

    log = _order_lines(shop, tmp_path / "log.csv")
    with olist_folder(from_transactions(log, **LOG_COLUMNS, status="status")) as folder:
        r = cli.invoke(app, ["convert", "--data", str(folder), "--out", str(tmp_path / "lay"),
                             "--buckets", "3"])  # fmt: skip
        assert r.exit_code == 0, r.output
    want, got = tmp_path / "want.csv", tmp_path / "got.csv"
    common = ["features", "--as-of", LABELLED, "--out"]
    r = cli.invoke(app, [*common, str(want), "--transactions", str(log), *LOG_OPTIONS])
    assert r.exit_code == 0, r.output
    r = cli.invoke(app, [*common, str(got), "--data", str(tmp_path / "lay")])
    assert r.exit_code == 0, r.output
    assert got.read_bytes() == want.read_bytes()


def test_cli_convert_of_a_transaction_log(cli: CliRunner, shop, tmp_path) -> None:
    log = _order_lines(shop, tmp_path / "log.csv")
    lay = tmp_path / "lay"
    r = cli.invoke(app, ["convert", "--transactions", str(log), *LOG_OPTIONS, "--out", str(lay),
                         "--buckets", "3"])  # fmt: skip
    assert r.exit_code == 0, r.output  # the layout gives the log's table
    want = feature_table(tables=_log_tables(log), as_of=LABELLED)
    assert_frame_equal(feature_table(lay, as_of=LABELLED), want, check_exact=True)
    assert L.open_layout(lay).buckets == 3


def _log_tables(log: Path):
    from olist_fast.transactions import from_transactions

    return from_transactions(log, **LOG_COLUMNS, status="status")


# -- run ------------------------------------------------------------------------------------
@pytest.fixture
def small_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every cap lowered, so that a layout's compact snapshots keep a sample of a few
    hundred customers (as test_layout.test_compact_snapshots_give_the_same_run does)."""
    import olist_fast.calibration as C
    import olist_fast.models as M
    import olist_fast.sampling as SA
    import olist_fast.selection as SE

    for module, name, value in [
        (M, "SAMPLE_ABOVE_ROWS", 150), (M, "MAX_NEGATIVES", 60), (SE, "FOLD_MAX_NEGATIVES", 100),
        (SA, "TRAIN_KEEP", 150), (SA, "FOLD_KEEP", 200), (SA, "DRIFT_ROWS", 100),
        (C, "DRIFT_ROWS", 100),
    ]:  # fmt: skip
        monkeypatch.setattr(module, name, value)


RUN = RunConfig(n_boot=10, models=("logistic",), as_of="2018-06-01", folds=1, n_jobs=1)


def assert_same_run(tmp_path: Path, layouts: list[Path], **folder) -> None:
    from olist_fast.pipeline import run

    want = run(RUN, out=tmp_path / "want", **folder)
    for k, lay in enumerate(layouts):
        got = run(RUN, data=lay, out=tmp_path / f"got{k}")
        assert got.files["scores"].read_bytes() == want.files["scores"].read_bytes()
        assert got.metrics == want.metrics


def test_run_on_a_real_shops_layout(repeat_shop, tmp_path, small_caps) -> None:
    """Text ids, refunds and other statuses, no reviews, no payments (amounts from the
    items), ISO times with an offset, as CSV."""
    tables, _ = text_ids(repeat_shop)
    tables, _ = refunds_and_statuses(tables)
    tables, _ = iso_timestamps({k: v for k, v in tables.items() if "review" not in k})
    tables.pop("order_payments")
    folder = write(tables, tmp_path / "shop", "csv")
    layouts = [L.write_layout(folder, tmp_path / f"n{n}", n).path for n in (3, 12)]
    assert_same_run(tmp_path, layouts, data=folder)


def test_run_on_a_dirty_layout_with_a_bucket_of_no_buyers(repeat_shop, tmp_path, small_caps):
    tables, _ = orphans(repeat_shop)
    tables, _ = repeated_rows(tables)
    ids = tables["customers"]["customer_unique_id"].unique().sort()
    starts = [ids[150], ids[300]]
    inside = pl.col("customer_unique_id").is_between(pl.lit(starts[0]), pl.lit(starts[1]))
    accounts = tables["customers"].filter(inside)["customer_id"].implode()
    canceled = pl.when(pl.col("customer_id").is_in(accounts)).then(pl.lit("canceled"))
    tables["orders"] = tables["orders"].with_columns(
        canceled.otherwise("order_status").alias("order_status")
    )
    folder = write(tables, tmp_path / "shop")
    layouts = [L.write_layout(folder, tmp_path / "n3", 3, starts=starts).path]
    assert_same_run(tmp_path, layouts, data=folder)


def test_run_on_a_transaction_logs_layout(repeat_shop, tmp_path, small_caps) -> None:
    from olist_fast.transactions import olist_folder

    tables = _log_tables(_order_lines(repeat_shop, tmp_path / "log.csv"))
    with olist_folder(tables) as folder:
        lay = L.write_layout(folder, tmp_path / "n3", 3).path
    assert_same_run(tmp_path, [lay], tables=tables)


# -- errors ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good_layout(shop, tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("good")
    return L.write_layout(write(shop, base / "shop"), base / "lay", 3).path


def _spec(p: Path) -> dict:
    return json.loads((p / L.LAYOUT_FILE).read_text())


@pytest.mark.parametrize(
    ("change", "words"),
    [
        pytest.param(lambda s: {"format": L.FORMAT, "version": 1}, "buckets", id="v1-only"),
        pytest.param(lambda s: {"format": L.FORMAT, "version": 2}, "buckets", id="v2-only"),
        pytest.param(lambda s: {k: v for k, v in s.items() if k != "tables"}, "tables",
                     id="no-tables-key"),
        pytest.param(lambda s: {**s, "buckets": "three"}, "complete", id="buckets-text"),
        pytest.param(lambda s: {**s, "starts": None}, "complete", id="starts-null"),
        pytest.param(lambda s: {**s, "tables": ["orders"]}, "complete", id="tables-list"),
        pytest.param(lambda s: {**s, "subsets": None}, "complete", id="subsets-null"),
        pytest.param(lambda s: [], "not an olist-fast", id="a-list"),
        pytest.param(lambda s: {**s, "tables": {}}, "orders not listed", id="tables-empty"),
        pytest.param(lambda s: {**s, "tables": {**s["tables"], "orders": None}},
                     "orders: expected a list of columns", id="columns-null"),
        pytest.param(lambda s: {**s, "tables": {**s["tables"], "customers": 5}},
                     "customers: expected a list of columns", id="columns-number"),
        pytest.param(lambda s: {**s, "tables": {k: v for k, v in s["tables"].items()
                                                if k != "orders"}},
                     "orders not listed", id="no-orders-listed"),
        pytest.param(lambda s: {**s, "starts": [1, 2]}, '"starts": expected a list',
                     id="starts-numbers"),
    ],
)  # fmt: skip
def test_a_malformed_layout_file_is_one_line(cli, good_layout, tmp_path, change, words) -> None:
    lay = tmp_path / "lay"
    shutil.copytree(good_layout, lay)
    (lay / L.LAYOUT_FILE).write_text(json.dumps(change(_spec(good_layout))))
    r = cli.invoke(app, ["features", "--data", str(lay), "--as-of", LABELLED, "--out",
                         str(tmp_path / "f.csv")])  # fmt: skip
    assert r.exit_code == 1, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("error: ") and words in line
    with pytest.raises(OlistDataError, match=words):
        feature_table(lay, as_of=LABELLED)


def test_convert_names_a_bad_value_in_one_line(cli, shop, tmp_path) -> None:
    stamp = pl.col("order_purchase_timestamp").dt.to_string("%Y-%m-%d %H:%M:%S")
    bad = pl.when(pl.int_range(pl.len()) == 7).then(pl.lit("not a time")).otherwise(stamp)
    orders = shop["orders"].with_columns(bad.alias("order_purchase_timestamp"))
    folder = write({**shop, "orders": orders}, tmp_path / "shop", "csv")
    r = cli.invoke(app, ["features", "--data", str(folder), "--as-of", LABELLED, "--out",
                         str(tmp_path / "f.csv")])  # fmt: skip
    assert r.exit_code == 1 and "row 8: 'not a time'" in r.stderr  # the folder: one line
    r = cli.invoke(app, ["convert", "--data", str(folder), "--out", str(tmp_path / "lay"),
                         "--buckets", "3"])  # fmt: skip
    errors = [ln for ln in r.stderr.splitlines() if "error" in ln]
    assert r.exit_code == 1 and len(errors) == 1 and "row 8: 'not a time'" in errors[0], r.stderr
    assert not (tmp_path / "lay").exists()
    # without buckets: the same line, and no folder left behind (nor any file in one there)
    (tmp_path / "there").mkdir()
    for out in ("copy", "there"):
        r = cli.invoke(app, ["convert", "--data", str(folder), "--out", str(tmp_path / out)])
        assert r.exit_code == 1 and "row 8: 'not a time'" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "copy").exists() and not any((tmp_path / "there").iterdir())


def test_cli_validate_reads_a_layout(cli, good_layout) -> None:
    r = cli.invoke(app, ["validate", "--data", str(good_layout)])
    assert r.exit_code == 0, r.stderr
    assert f"OK: {good_layout} is usable" in r.stdout and "Healthy period ends" in r.stdout


def _said(lines: list[str]) -> list[str]:
    """Report lines without what names a place: the file (or the layout's parts), the row,
    an example key."""
    out = []
    for line in lines:
        line = re.sub(r"^\S+?\.(parquet|csv): ", "", line)
        line = re.sub(r", row \d+", "", line)
        out.append(re.sub(r"(duplicated key|e\.g\.) '[^']*'", r"\1 K", line))
    return sorted(out)


@pytest.mark.parametrize(
    "name", ["null_keys", "orphans", "repeated_rows", "header_only_payments_reviews",
             "no_delivery_dates", "no_reviews"],
)  # fmt: skip
def test_validate_says_of_a_layout_what_it_says_of_its_folder(name, shop, tmp_path) -> None:
    from olist_fast import validate

    tables, fmt = SHAPES[name](shop)
    folder = write(tables, tmp_path / "shop", fmt)
    want = validate(folder)
    got = validate(L.write_layout(folder, tmp_path / "lay", 3).path)
    assert want.errors or want.warnings  # the shape has something to say
    assert _said(got.errors) == _said(want.errors)
    assert _said(got.warnings) == _said(want.warnings)
    assert (got.rows, got.health, got.purchase_range) == (
        want.rows,
        want.health,
        want.purchase_range,
    )
    if want.monthly is None:  # the orders are not usable
        assert got.monthly is None and want.errors
    else:
        assert_frame_equal(got.monthly, want.monthly)


def test_a_parquet_file_cut_short_is_one_line(cli, shop, tmp_path) -> None:
    folder = write(shop, tmp_path / "shop")
    lay = L.write_layout(folder, tmp_path / "lay", 3).path
    part = next((lay / "olist_orders_dataset" / "bucket=00001").glob("*.parquet"))
    whole = folder / "olist_order_payments_dataset.parquet"
    for cut_short in (part, whole):
        cut_short.write_bytes(cut_short.read_bytes()[:-100])
    for data, command in [(folder, "features"), (lay, "features"), (folder, "validate"),
                          (lay, "validate"), (lay, "convert")]:  # fmt: skip
        extra = {"features": ["--out", str(tmp_path / "f.csv"), "--as-of", LABELLED],
                 "convert": ["--out", str(tmp_path / "again"), "--buckets", "2"]}  # fmt: skip
        r = cli.invoke(app, [command, "--data", str(data), *extra.get(command, [])])
        errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error")]
        assert r.exit_code == 1, (command, r.output)
        broken = part if data == lay else whole
        assert len(errors) == 1 and f"{broken}: not a readable Parquet file" in r.stderr, r.stderr
        assert "taken from order_items" not in r.output  # the payments are there, unreadable


def test_cli_convert_of_a_layout(cli, good_layout, tmp_path) -> None:
    out = tmp_path / "again"
    r = cli.invoke(app, ["convert", "--data", str(good_layout), "--out", str(out),
                         "--buckets", "5"])  # fmt: skip
    assert r.exit_code == 0, r.output  # bucketed again: the same table
    assert L.open_layout(out).buckets == 5 and L.open_layout(out).ids == "uint128"
    want = feature_table(good_layout, as_of=LABELLED)
    assert_frame_equal(feature_table(out, as_of=LABELLED), want, check_exact=True)
    # and put back together as a folder of Parquet copies: the same table again
    r = cli.invoke(app, ["convert", "--data", str(good_layout), "--out", str(tmp_path / "pq")])
    assert r.exit_code == 0, r.output
    assert_frame_equal(feature_table(tmp_path / "pq", as_of=LABELLED), want, check_exact=True)


def test_cli_convert_then_features_on_text_ids_from_csv(cli, shop, tmp_path) -> None:
    tables, _ = text_ids(shop)
    tables, _ = iso_timestamps(tables)
    folder = write(tables, tmp_path / "shop", "csv")
    lay = tmp_path / "lay"
    r = cli.invoke(app, ["convert", "--data", str(folder), "--out", str(lay), "--buckets", "3"])
    assert r.exit_code == 0, r.output
    assert "stored as text" in r.stderr
    for data, out in ((folder, "want.csv"), (lay, "got.csv")):
        r = cli.invoke(app, ["features", "--data", str(data), "--as-of", LABELLED, "--out",
                             str(tmp_path / out)])  # fmt: skip
        assert r.exit_code == 0, r.output
    assert (tmp_path / "got.csv").read_bytes() == (tmp_path / "want.csv").read_bytes()
