"""A generic transaction log as input (:func:`olist_fast.from_transactions`): the mapping
onto the Olist tables, its errors, and the same shop given as a log and as Olist tables
giving the same features and the same scores."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

import olist_fast
from olist_fast import OlistDataError, build_snapshots, from_transactions, make_olist, run
from olist_fast.cli import app
from olist_fast.schema import TABLES
from tests.helpers import shop_as_log, write_offset_log

MAPPED = ("orders", "customers", "order_payments")
AS_OF = datetime(2018, 3, 1)
LOG_COLUMNS = {
    "customer_id": "customer_unique_id",
    "timestamp": "order_purchase_timestamp",
    "amount": "payment_value",
    "status": "order_status",
}


def collected(tables: dict[str, pl.LazyFrame]) -> dict[str, pl.DataFrame]:
    return {name: lf.collect() for name, lf in tables.items()}


@pytest.fixture(scope="module")
def shop() -> dict[str, pl.DataFrame]:
    return make_olist(scale=0.05, random_state=3)


@pytest.fixture(scope="module")
def shop_log(shop: dict[str, pl.DataFrame]) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    return shop_as_log(shop)


@pytest.fixture(scope="module")
def busy_log() -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """A shop with enough buyers for ``run`` (as tests/test_pipeline.py uses)."""
    return shop_as_log(make_olist(scale=0.08, random_state=11))


@pytest.fixture(scope="module")
def olist_scores(busy_log, tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    """The scores of ``run`` on the busy shop given as Olist tables."""
    _, olist = busy_log
    return run(tables=olist, out=tmp_path_factory.mktemp("olist"), seed=0, n_boot=20).scores


def tiny(**columns: list) -> pl.DataFrame:
    base: dict[str, list] = {
        "customer_id": ["a", "a", "b"],
        "timestamp": ["2018-01-11 14:01:40", "2018-02-01 09:00:00", "2018-01-20 10:00:00"],
        "amount": ["10.5", "20", "-3.25"],
    }
    return pl.DataFrame({**base, **columns})


# -- the mapping ---------------------------------------------------------------------------
def test_the_tables_have_exactly_the_olist_schemas(shop_log) -> None:
    log, _ = shop_log
    without_status = {k: v for k, v in LOG_COLUMNS.items() if k != "status"}
    for kwargs in ({**LOG_COLUMNS, "order_id": "order_id"}, without_status):
        tables = from_transactions(log, **kwargs)
        assert tuple(tables) == MAPPED
        for name, lf in tables.items():
            assert isinstance(lf, pl.LazyFrame)
            assert lf.collect_schema() == TABLES[name].schema, name
            assert lf.collect().schema == TABLES[name].schema, name


def test_what_each_table_holds() -> None:
    got = collected(from_transactions(tiny(), customer_id="customer_id",
                                      timestamp="timestamp", amount="amount"))  # fmt: skip
    orders, customers, payments = got["orders"], got["customers"], got["order_payments"]
    assert orders["order_id"].to_list() == [
        "a@2018-01-11T14:01:40.000000",
        "b@2018-01-20T10:00:00.000000",
        "a@2018-02-01T09:00:00.000000",
    ]
    assert orders["customer_id"].to_list() == ["a", "b", "a"]
    assert orders["order_status"].null_count() == 3
    later = orders.select(pl.exclude("order_id", "customer_id", "order_status",
                                     "order_purchase_timestamp"))  # fmt: skip
    assert later.width == 4 and later.null_count().row(0) == (3, 3, 3, 3)
    assert customers["customer_id"].to_list() == ["a", "b"]
    assert customers["customer_unique_id"].to_list() == ["a", "b"]
    assert customers.select(pl.exclude("customer_id", "customer_unique_id")).null_count().row(
        0
    ) == (2, 2, 2)
    assert payments["order_id"].to_list() == orders["order_id"].to_list()
    assert payments["payment_sequential"].to_list() == [1, 1, 1]
    assert payments["payment_value"].to_list() == [10.5, -3.25, 20.0]  # a refund stays negative
    assert payments["payment_type"].null_count() == payments["payment_installments"].null_count()
    assert payments["payment_type"].null_count() == 3


def test_order_lines_and_one_row_per_order_give_the_same_tables(shop) -> None:
    """Several lines per order (the items, each a minute after the last, listed in a
    shuffled order) and the same orders one row each: the same tables."""
    items = (
        shop["order_items"]
        .join(shop["orders"], on="order_id")
        .join(shop["customers"], on="customer_id")
    )
    lines = items.select(
        "order_id",
        "customer_unique_id",
        "order_status",
        (
            pl.col("order_purchase_timestamp") + pl.duration(minutes=pl.col("order_item_id") - 1)
        ).alias("ts"),
        (pl.col("price") + pl.col("freight_value")).alias("amount"),
    ).sample(fraction=1.0, shuffle=True, seed=1)
    assert lines["order_id"].n_unique() < lines.height  # several lines per order
    per_order = lines.group_by("order_id").agg(
        pl.col("customer_unique_id", "order_status").first(),
        pl.col("ts").min(),
        pl.col("amount").sum(),
    )
    cols = {"customer_id": "customer_unique_id", "timestamp": "ts", "amount": "amount",
            "order_id": "order_id", "status": "order_status"}  # fmt: skip
    a = collected(from_transactions(lines, **cols))
    b = collected(from_transactions(per_order, **cols))
    for name in MAPPED:  # sums of floats in another order: equal to rounding
        assert_frame_equal(a[name], b[name])
    assert_frame_equal(a["orders"], b["orders"], check_exact=True)
    # the order's time is its earliest line's
    first = items.group_by("order_id").agg(pl.col("order_purchase_timestamp").first())
    joined = a["orders"].join(first, on="order_id", suffix="_shop")
    assert (joined["order_purchase_timestamp"] == joined["order_purchase_timestamp_shop"]).all()


def test_without_an_order_id_each_customer_and_time_is_one_order() -> None:
    log = pl.DataFrame(
        {
            "who": ["a", "b", "a", "a", "b"],
            "when": ["2018-01-11T14:01:40", "2018-01-11T14:01:40", "2018-01-11T14:01:40",
                     "2018-01-12T08:00:00", "2018-01-11T14:01:41"],
            "paid": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )  # fmt: skip
    cols = {"customer_id": "who", "timestamp": "when", "amount": "paid"}
    got = collected(from_transactions(log, **cols))
    assert got["orders"].height == 4
    values = dict(got["order_payments"].select("order_id", "payment_value").iter_rows())
    assert values == {
        "a@2018-01-11T14:01:40.000000": 4.0,
        "b@2018-01-11T14:01:40.000000": 2.0,
        "b@2018-01-11T14:01:41.000000": 5.0,
        "a@2018-01-12T08:00:00.000000": 4.0,
    }
    # the ids come from the values, never from the row order
    again = collected(from_transactions(log.reverse(), **cols))
    for name in MAPPED:
        assert_frame_equal(got[name], again[name], check_exact=True)


@pytest.mark.parametrize(
    ("ids", "text"),
    [
        ([17, 17, 42], ["17", "17", "42"]),
        (["ana@example.com", "ana@example.com", "Bo.Li+shop@example.org"],
         ["ana@example.com", "ana@example.com", "Bo.Li+shop@example.org"]),
        ([" 007", " 007", "7"], [" 007", " 007", "7"]),  # nothing stripped, zeros kept
    ],
)  # fmt: skip
def test_integer_and_e_mail_ids(ids: list, text: list[str]) -> None:
    got = collected(from_transactions(tiny(customer_id=ids), customer_id="customer_id",
                                      timestamp="timestamp", amount="amount"))  # fmt: skip
    assert sorted(got["customers"]["customer_unique_id"].to_list()) == sorted(set(text))
    assert got["orders"].sort("order_purchase_timestamp")["customer_id"].to_list() == [
        text[0],
        text[2],
        text[1],
    ]


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("2018-01-11 14:01:40", datetime(2018, 1, 11, 14, 1, 40)),
        ("2018-01-11T14:01:40", datetime(2018, 1, 11, 14, 1, 40)),
        ("2018-01-11T14:01:40.250", datetime(2018, 1, 11, 14, 1, 40, 250_000)),
        ("2018-01-11T14:01", datetime(2018, 1, 11, 14, 1)),
        ("2018-01-11T14:01:40Z", datetime(2018, 1, 11, 14, 1, 40)),
        ("2018-01-11T14:01:40+02:00", datetime(2018, 1, 11, 12, 1, 40)),
        ("2018-01-11T14:01:40-0300", datetime(2018, 1, 11, 17, 1, 40)),
        ("2018-01-11", datetime(2018, 1, 11)),
    ],
)
def test_iso_times_are_read_in_utc(text: str, want: datetime) -> None:
    log = pl.DataFrame({"c": ["x"], "t": [text], "a": [1]})
    got = from_transactions(log, customer_id="c", timestamp="t", amount="a")["orders"].collect()
    assert got["order_purchase_timestamp"].to_list() == [want]


def test_datetime_and_date_columns() -> None:
    aware = pl.DataFrame({"c": ["x"], "a": [1.0]}).with_columns(
        pl.lit(datetime(2018, 1, 11, 14, 1, 40)).dt.replace_time_zone("Europe/Paris").alias("t")
    )
    naive = aware.with_columns(pl.col("t").dt.replace_time_zone(None).cast(pl.Datetime("ns")))
    day = aware.with_columns(pl.lit(date(2018, 1, 11)).alias("t"))
    for frame, want in (
        (aware, datetime(2018, 1, 11, 13, 1, 40)),  # CET is UTC+1 in January
        (naive, datetime(2018, 1, 11, 14, 1, 40)),
        (day, datetime(2018, 1, 11)),
    ):
        got = from_transactions(frame, customer_id="c", timestamp="t", amount="a")
        assert got["orders"].collect()["order_purchase_timestamp"].to_list() == [want]


def test_pandas_pyarrow_lazy_and_files_give_the_same_tables(tmp_path: Path) -> None:
    log = tiny(
        timestamp=["2018-01-11T14:01:40+02:00", "2018-02-01T09:00:00Z", "2018-01-20T10:00:00Z"],
        amount=[10.5, 20.0, -3.25],
        customer_id=[1, 1, 2],
        status=["delivered", "canceled", None],
    )
    cols = {"customer_id": "customer_id", "timestamp": "timestamp", "amount": "amount",
            "status": "status"}  # fmt: skip
    want = collected(from_transactions(log, **cols))
    assert want["orders"]["order_purchase_timestamp"][0] == datetime(2018, 1, 11, 12, 1, 40)
    log.write_csv(tmp_path / "log.csv")
    log.write_parquet(tmp_path / "log.parquet")
    for frame in (
        log.to_pandas(),
        log.to_arrow(),
        log.lazy(),
        tmp_path / "log.csv",
        str(tmp_path / "log.parquet"),
        pd.read_csv(tmp_path / "log.csv"),
    ):
        got = collected(from_transactions(frame, **cols))
        for name in MAPPED:
            assert_frame_equal(got[name], want[name], check_exact=True)


def test_pandas_datetimes_with_a_time_zone_and_integer_ids_with_gaps() -> None:
    frame = pd.DataFrame(
        {
            "c": [1.0, 2.0],  # integers as pandas reads them beside a gap elsewhere
            "t": pd.to_datetime(["2018-01-11 14:01:40", "2018-01-12 00:00:00"]).tz_localize("UTC"),
            "a": [1, 2],
        }
    )
    got = collected(from_transactions(frame, customer_id="c", timestamp="t", amount="a"))
    assert got["customers"]["customer_id"].to_list() == ["1", "2"]
    arrow = pa.table({"c": ["x"], "t": pa.array([date(2018, 1, 11)], pa.date32()), "a": [5]})
    got = collected(from_transactions(arrow, customer_id="c", timestamp="t", amount="a"))
    assert got["orders"]["order_purchase_timestamp"].to_list() == [datetime(2018, 1, 11)]


# -- errors --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("log", "kwargs", "message"),
    [
        (tiny(), {"timestamp": "ts"}, "transactions: missing column 'ts'"),
        (tiny(), {"order_id": "order"}, "transactions: missing column 'order'"),
        (tiny(customer_id=["a", "", "b"]), {},
         "transactions: column 'customer_id', row 2: empty value; expected an id"),
        (tiny(customer_id=["a", "b", None]), {},
         "transactions: column 'customer_id', row 3: empty value"),
        (tiny(timestamp=["2018-01-11", None, "2018-01-12"]), {},
         "transactions: column 'timestamp', row 2: empty value; expected a timestamp"),
        (tiny(timestamp=["2018-01-11T10:00:00Z", "2018-01-11T10:00:00Z", "11/01/2018"]), {},
         "transactions: column 'timestamp', row 3: '11/01/2018' is not a timestamp shaped "
         "YYYY-MM-DDTHH:MM:SS+HH:MM"),
        (tiny(amount=["1", "2", "3 EUR"]), {},
         "transactions: column 'amount', row 3: '3 EUR' is not a finite number"),
        (tiny(amount=["1", "", "3"]), {},
         "transactions: column 'amount', row 2: empty value; expected a number"),
        (tiny(amount=[True, False, True]), {}, "transactions: column 'amount' is Boolean"),
        (tiny(order=["o1", "o2", "o1"]), {"order_id": "order"},
         "transactions: column 'customer_id', row 3: order 'o1' has customer 'b' here and 'a' "
         "at row 1; expected one customer per order"),
        (tiny(customer_id=["a", "a", "a"], order=["o1", "o2", "o2"],
              state=["delivered", "delivered", "canceled"]),
         {"order_id": "order", "status": "state"},
         "transactions: column 'state', row 3: order 'o2' has status 'canceled' here and "
         "'delivered' at row 2; expected one status per order"),
        (tiny(customer_id=["a", "a", "b"], timestamp=["2018-01-11"] * 3,
              state=["delivered", "canceled", "canceled"]), {"status": "state"},
         "transactions: column 'state', row 2: order 'a@2018-01-11T00:00:00.000000' has "
         "status 'canceled' here and 'delivered' at row 1"),
        (tiny().head(0), {}, "transactions: no rows"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_naming_the_column_and_row(
    log: pl.DataFrame, kwargs: dict, message: str
) -> None:
    cols = {"customer_id": "customer_id", "timestamp": "timestamp", "amount": "amount", **kwargs}
    with pytest.raises(OlistDataError) as err:
        from_transactions(log, **cols)
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(message), text


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    cols = {"customer_id": "customer_id", "timestamp": "timestamp", "amount": "amount"}
    bad = tmp_path / "log.csv"
    bad.write_text("customer_id,timestamp,amount\nA,2018-01-11T14:01:40+02:00,1.5\nB,,2\n")
    with pytest.raises(OlistDataError, match=r"^\S+log\.csv: column 'timestamp', row 2: empty"):
        from_transactions(bad, **cols)
    with pytest.raises(OlistDataError, match=r"missing\.csv: file not found"):
        from_transactions(tmp_path / "missing.csv", **cols)
    with pytest.raises(OlistDataError, match=r"log\.xlsx: unsupported file type"):
        from_transactions(tmp_path / "log.xlsx", **cols)
    with pytest.raises(OlistDataError, match="transactions: a dict; expected a polars"):
        from_transactions({"customer_id": ["a"]}, **cols)


# -- the same shop as a log and as Olist tables ---------------------------------------------
@pytest.mark.parametrize("order_id", ["order_id", None])
def test_the_same_shop_as_a_log_and_as_olist_tables_gives_the_same_features(
    shop_log, order_id: str | None
) -> None:
    log, olist = shop_log
    mapped = from_transactions(log, **LOG_COLUMNS, order_id=order_id)
    (got,) = build_snapshots(mapped, [AS_OF], horizon_days=90)
    (want,) = build_snapshots(olist, [AS_OF], horizon_days=90)
    assert "bought_again" in got.columns and got["bought_again"].sum() > 0
    assert_frame_equal(got, want, check_exact=True)


def test_the_same_shop_as_a_log_and_as_olist_tables_gives_the_same_scores(
    busy_log, olist_scores: pl.DataFrame, tmp_path: Path
) -> None:
    log, _ = busy_log
    got = run(tables=from_transactions(log, **LOG_COLUMNS), out=tmp_path, seed=0, n_boot=20)
    assert_frame_equal(got.scores, olist_scores, check_exact=True)


# -- the command line ----------------------------------------------------------------------
def test_cli_validate_and_features_on_a_csv_log(cli: CliRunner, shop_log, tmp_path: Path) -> None:
    log, olist = shop_log
    csv = write_offset_log(log, tmp_path / "log.csv")
    cols = ["--customer-col", "client", "--time-col", "ts", "--status-col", "status"]
    r = cli.invoke(app, ["validate", "--transactions", str(csv), *cols])
    assert r.exit_code == 0, r.output
    assert "Rows per table:" in r.stdout and "Orders per month" in r.stdout
    assert "Data health:" in r.stdout and f"OK: {csv} is usable" in r.stdout
    assert f"{olist['orders'].height:,}" in r.stdout
    out = tmp_path / "f.parquet"
    args = ["features", "--transactions", str(csv), *cols, "--as-of", "2018-03-01", "--out"]
    r = cli.invoke(app, [*args, str(out)])
    assert r.exit_code == 0, r.output
    (want,) = build_snapshots(olist, [AS_OF], horizon_days=90)
    assert_frame_equal(pl.read_parquet(out), want, check_exact=True)


def test_cli_run_on_a_csv_log(
    cli: CliRunner, busy_log, olist_scores: pl.DataFrame, tmp_path: Path
) -> None:
    log, _ = busy_log
    csv = write_offset_log(log, tmp_path / "log.csv")
    out = tmp_path / "out"
    args = ["run", "--transactions", str(csv), "--customer-col", "client", "--time-col", "ts",
            "--status-col", "status", "--out", str(out)]  # fmt: skip
    r = cli.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "Chosen setup:" in r.stdout
    scores = pl.read_csv(out / "user_propensity_scores.csv", schema_overrides={
        "customer_unique_id": pl.String})  # fmt: skip
    assert_frame_equal(scores, olist_scores, check_exact=True)


def test_cli_errors_are_one_line(cli: CliRunner, shop_log, tmp_path: Path) -> None:
    log, _ = shop_log
    csv = write_offset_log(log, tmp_path / "log.csv")
    score = ["score", "--model", str(tmp_path), "--as-of", "2018-06-01"]
    features = ["features", "--out", str(tmp_path / "f.parquet")]
    for cmd in (["validate"], features, ["run"], ["train"], score):
        r = cli.invoke(app, [*cmd, "--data", str(tmp_path), "--transactions", str(csv)])
        assert r.exit_code == 1, (cmd, r.output)
        assert r.stderr.strip().count("\n") == 0, r.stderr
        assert r.stderr.startswith("error: --data and --transactions"), r.stderr
    r = cli.invoke(app, ["validate", "--transactions", str(csv)])  # no column 'customer_id'
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith(
        f"error: {csv}: missing column 'customer_id'"
    )
    r = cli.invoke(app, ["features", "--transactions", str(csv), "--customer-col", "client",
                            "--time-col", "ts", "--engine", "spark", "--spark-master",
                            "spark://elsewhere:7077", "--out", str(tmp_path / "f")])  # fmt: skip
    assert r.exit_code == 1
    assert r.stderr.startswith("error: --transactions with --engine spark needs a local master")


def test_cli_train_then_score_on_a_csv_log(cli: CliRunner, busy_log, tmp_path: Path) -> None:
    log, _ = busy_log
    csv = write_offset_log(log, tmp_path / "log.csv")
    cols = ["--transactions", str(csv), "--customer-col", "client", "--time-col", "ts",
            "--status-col", "status"]  # fmt: skip
    model = tmp_path / "model"
    r = cli.invoke(app, ["train", *cols, "--setup", "logistic", "--out", str(model)])
    assert r.exit_code == 0, r.output
    r = cli.invoke(app, ["score", *cols, "--model", str(model), "--as-of", "2018-09-01",
                            "--out", str(tmp_path / "scores")])  # fmt: skip
    assert r.exit_code == 0, r.output
    got = pl.read_csv(tmp_path / "scores" / "user_propensity_scores.csv",
                      schema_overrides={"customer_unique_id": pl.String})  # fmt: skip
    mapped = from_transactions(log, **LOG_COLUMNS)
    want = olist_fast.score(model, tables=mapped, as_of=datetime(2018, 9, 1))
    assert_frame_equal(got, want, check_exact=True)
