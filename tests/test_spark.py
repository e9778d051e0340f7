"""The feature plan and the scoring on Spark equal the single-machine results to the bit.

One ``local[2]`` session for the module (Spark takes ~10 s to start). The tests that need
it are marked ``spark`` and skipped only when pyspark or Java is missing; the error tests
that simulate a missing pyspark or Java run everywhere.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from olist_fast import make_olist, pipeline
from olist_fast import spark as S
from olist_fast.config import RunConfig
from olist_fast.features import build_snapshots
from olist_fast.io import OlistDataError, scan_olist
from olist_fast.schema import TABLES
from olist_fast.validation import data_health
from tests.helpers import shop_as_log, write_offset_log

pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)

COVERED = datetime(2018, 3, 1)  # labels: the data runs to 2018-08-31
OPEN = datetime(2018, 8, 15)  # no labels: the window ends after the data
LATE = datetime(2018, 6, 1, 23, 26, 1)  # covered by one second: most slices end earlier
EXACT = S.plan_is_path_invariant()
"""With the plan's divisions path-invariant (docs/spark.md), every comparison is to the bit;
until then to one unit in the last place (integers and text always exactly)."""


def same(got: pl.DataFrame, want: pl.DataFrame) -> None:
    if EXACT:
        assert_frame_equal(got, want, check_exact=True)
    else:
        assert_frame_equal(got, want, rel_tol=4e-16, abs_tol=0.0)


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    pytest.importorskip("pyspark")
    if S.java_executable() is None:
        pytest.skip("Java not found (Spark needs it)")
    session = S.session(
        "local[2]",
        conf={"spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "2"},
    )
    yield session
    session.stop()


@pytest.fixture(scope="module")
def tables(spark, small_csv_dir: Path) -> dict:
    return S.read_tables(spark, small_csv_dir, tables=S.FEATURE_TABLES)


def in_process(data: Path, dates: list[datetime], labels=None) -> list[pl.DataFrame]:
    return build_snapshots(scan_olist(data), dates, labels=labels)


def of_date(df: pl.DataFrame, when: datetime, wanted: pl.DataFrame) -> pl.DataFrame:
    got = df.filter(pl.col(S.AS_OF) == when).drop(S.AS_OF).sort("customer_unique_id")
    return got.select(wanted.columns)


@pytest.mark.spark
def test_global_facts_equal_the_single_machine_rules(tables, small_csv_dir: Path) -> None:
    facts = S.data_facts(tables)
    orders = scan_olist(small_csv_dir)["orders"]
    assert facts.healthy_end == data_health(orders).healthy_end
    latest = orders.select(pl.col("order_purchase_timestamp").max()).collect().item()
    assert facts.latest_purchase == latest
    assert facts.n_orders == orders.select(pl.len()).collect().item()


@pytest.mark.spark
@pytest.mark.parametrize("when", [COVERED, OPEN, LATE], ids=["labels", "no-labels", "edge"])
def test_one_date_equals_build_snapshots(spark, tables, small_csv_dir: Path, when) -> None:
    (want,) = in_process(small_csv_dir, [when])
    got = S.to_polars(S.features(spark, tables, when, partitions=3), sort=["customer_unique_id"])
    same(got, want)
    assert ("bought_again" in got.columns) == (when != OPEN)


@pytest.mark.spark
def test_several_dates_in_one_job(spark, tables, small_csv_dir: Path) -> None:
    dates = [datetime(2017, 9, 1), COVERED, LATE, OPEN]
    wants = in_process(small_csv_dir, dates)
    got = S.to_polars(S.features_many(spark, tables, dates, partitions=4))
    for when, want in zip(dates, wants, strict=True):
        same(of_date(got, when, want), want)
    # forced labels, as the protocol asks for its past snapshots
    forced = [True, False, True, True]
    wants = in_process(small_csv_dir, dates, labels=forced)
    got = S.to_polars(S.features_many(spark, tables, dates, labels=forced, partitions=4))
    for when, want in zip(dates, wants, strict=True):
        same(of_date(got, when, want), want)


@pytest.mark.spark
def test_empty_buckets(spark, small_tables: dict, tmp_path: Path) -> None:
    """Twelve people in 16 partitions: most tasks get nothing and must yield nothing.
    (The repeat customers are kept, so that the whole data has several of them: a frame of
    one row takes another arithmetic path in Polars, see ``spark.with_shadows``.)"""
    from pyspark.sql import functions as F

    from olist_fast.synth import write_olist

    customers = small_tables["customers"]
    per_person = (
        small_tables["orders"]
        .join(customers, on="customer_id")
        .group_by("customer_unique_id")
        .len()
    )
    people = pl.concat(
        [
            per_person.filter(pl.col("len") > 1)["customer_unique_id"].sort().head(6),
            per_person.filter(pl.col("len") == 1)["customer_unique_id"].sort().head(6),
        ]
    )
    few = dict(small_tables)
    few["customers"] = customers.filter(pl.col("customer_unique_id").is_in(people.implode()))
    write_olist(few, tmp_path)
    spark_tables = S.read_tables(spark, tmp_path, tables=S.FEATURE_TABLES)
    dates = [COVERED, OPEN]
    wants = in_process(tmp_path, dates)
    df = S.features_many(spark, spark_tables, dates, partitions=16)
    used = df.select(F.spark_partition_id().alias("p")).distinct().count()
    assert used <= people.len() < 16
    got = S.to_polars(df)
    for when, want in zip(dates, wants, strict=True):
        assert want.height > 0
        same(of_date(got, when, want), want)


@pytest.mark.spark
def test_features_to_writes_a_sorted_parquet_dataset(spark, small_csv_dir: Path, tmp_path) -> None:
    out = tmp_path / "features"
    written = S.features_to(out, small_csv_dir, COVERED, spark=spark, partitions=3)
    (want,) = in_process(small_csv_dir, [COVERED])
    got = pl.read_parquet(sorted(out.glob("*.parquet")))  # part files in order
    same(got, want)
    assert (written.rows, written.columns, written.labels) == (want.height, want.width, True)


# -- run and score: the same model stage, the same scores ----------------------------------
@pytest.fixture(scope="module")
def both_runs(spark, data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    config = RunConfig(data=data_dir, seed=1, n_boot=20)
    local = pipeline.run(config, out=tmp_path_factory.mktemp("run-local"))
    on_spark = S.run_on_spark(
        RunConfig.merged(config, {"out": tmp_path_factory.mktemp("run-spark")}),
        spark=spark,
        partitions=3,
    )
    return local, on_spark


@pytest.mark.spark
def test_run_on_spark_equals_run(both_runs) -> None:
    local, on_spark = both_runs
    assert on_spark.chosen == local.chosen
    assert on_spark.as_of == local.as_of
    manifests = [json.loads(r.files["manifest"].read_text()) for r in (local, on_spark)]
    assert manifests[0]["inputs"] == manifests[1]["inputs"] != {}  # the same files, hashed
    assert on_spark.metrics["selection"] == local.metrics["selection"] or not EXACT
    if EXACT:
        assert_frame_equal(on_spark.scores, local.scores, check_exact=True)
        assert on_spark.files["scores"].read_bytes() == local.files["scores"].read_bytes()
        assert on_spark.metrics == local.metrics
    else:
        assert_frame_equal(on_spark.scores, local.scores, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.spark
def test_saved_model_scored_in_spark_equals_score(spark, both_runs, data_dir, tmp_path) -> None:
    local, _ = both_runs
    model_dir = local.files["model"]
    when = local.as_of  # a model scores its own as_of or later
    want = pipeline.score(model_dir, as_of=when, data=data_dir)
    # the in-process snapshot scored in the executors: row for row, to the bit
    (snap,) = build_snapshots(scan_olist(data_dir), [when], labels=[False])
    snap.write_parquet(tmp_path / "snap.parquet")
    spark_snap = spark.read.parquet(str(tmp_path / "snap.parquet")).repartition(3)
    got = S.to_polars(S.score(spark, model_dir, spark_snap, partitions=4), sort=["rank"])
    assert_frame_equal(got, want, check_exact=True)
    # the whole route: features and scores in Spark, a Parquet dataset sorted by rank
    written = S.score_to(tmp_path / "out", model_dir, data_dir, when, spark=spark, partitions=3)
    got = pl.read_parquet(sorted(Path(written.out).glob("*.parquet")))
    if EXACT:
        assert_frame_equal(got, want, check_exact=True)
    else:
        assert_frame_equal(got, want, rel_tol=1e-9, abs_tol=1e-12)


def test_the_plan_computes_the_same_bits_on_any_slice() -> None:
    """What the exact comparisons above rest on (no Spark needed)."""
    assert EXACT


@pytest.mark.spark
def test_cli_engine_spark_for_features_and_score(
    cli: CliRunner, spark, both_runs, data_dir: Path, tmp_path: Path
) -> None:

    from olist_fast.cli import app

    local, _ = both_runs
    when = f"{local.as_of:%Y-%m-%d}"
    out = tmp_path / "features"
    args = ["--data", str(data_dir), "--as-of", when, "--spark-partitions", "3"]
    r = cli.invoke(app, ["features", "--engine", "spark", "--out", str(out), *args])
    assert r.exit_code == 0, r.output
    (want,) = in_process(data_dir, [local.as_of])
    assert_frame_equal(pl.read_parquet(sorted(out.glob("*.parquet"))), want, check_exact=True)
    r = cli.invoke(app, ["score", "--engine", "spark", "--model", str(local.files["model"]),
                            "--data", str(data_dir), "--as-of", when, "--out",
                            str(tmp_path / "scores")])  # fmt: skip
    assert r.exit_code == 0, r.output
    got = pl.read_parquet(
        sorted((tmp_path / "scores" / "user_propensity_scores.parquet").glob("*.parquet"))
    )
    assert_frame_equal(got, local.scores, check_exact=True)


@pytest.mark.spark
def test_cli_run_engine_spark_on_a_csv_log(cli: CliRunner, spark, tmp_path: Path) -> None:
    """``run --engine spark --transactions``: the log's tables go to a temporary folder that
    Spark reads; the scores are those of the in-process run on the same shop's tables."""
    from olist_fast.cli import app

    log, olist = shop_as_log(make_olist(scale=0.08, random_state=11))
    want = pipeline.run(tables=olist, out=tmp_path / "local", seed=0, n_boot=20).scores
    csv = write_offset_log(log, tmp_path / "log.csv")
    out = tmp_path / "out"
    r = cli.invoke(app, ["run", "--engine", "spark", "--transactions", str(csv),
                            "--customer-col", "client", "--time-col", "ts", "--status-col",
                            "status", "--spark-partitions", "3", "--out", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "Chosen setup:" in r.stdout
    got = pl.read_csv(out / "user_propensity_scores.csv", schema_overrides={
        "customer_unique_id": pl.String})  # fmt: skip
    if EXACT:
        assert_frame_equal(got, want, check_exact=True)
    else:
        assert_frame_equal(got, want, rel_tol=1e-9, abs_tol=1e-12)


# -- bad input ---------------------------------------------------------------------------
def test_no_pyspark_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark -> ImportError
    with pytest.raises(OlistDataError, match=r"pip install 'olist-fast\[spark\]'") as err:
        S.session()
    assert "\n" not in str(err.value)
    with pytest.raises(OlistDataError, match=r"olist-fast\[spark\]"):
        S.read_tables(object(), "/nowhere")  # type: ignore[arg-type]


def test_no_java_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pyspark")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(OlistDataError, match="apt-get install -y openjdk-17-jre-headless"):
        S.session("local[1]")


@pytest.mark.spark
def test_unreadable_url_is_one_line(spark) -> None:
    with pytest.raises(OlistDataError) as err:
        S.read_tables(spark, "nosuch://bucket/olist", tables=["orders"])
    msg = str(err.value)
    assert "nosuch://bucket/olist/olist_orders_dataset.csv" in msg
    assert "No FileSystem for scheme" in msg
    assert "\n" not in msg and "\tat " not in msg


def assert_reads_fail_alike(spark, folder: Path) -> None:
    """Spark's reader refuses ``folder`` with the single machine's one-line message."""
    with pytest.raises(OlistDataError) as want:
        scan_olist(folder)
    with pytest.raises(OlistDataError) as got:
        S.read_tables(spark, folder)
    assert str(got.value) == str(want.value)


@pytest.mark.spark
def test_missing_folder_and_file_as_single_machine(spark, data_copy: Path) -> None:
    assert_reads_fail_alike(spark, data_copy / "nope")
    (data_copy / "olist_customers_dataset.csv").unlink()
    assert_reads_fail_alike(spark, data_copy)


@pytest.mark.spark
def test_missing_column_as_single_machine(spark, data_copy: Path) -> None:
    path = data_copy / "olist_customers_dataset.csv"
    pl.read_csv(path, infer_schema=False).drop("customer_unique_id").write_csv(path)
    assert_reads_fail_alike(spark, data_copy)


@pytest.mark.spark
def test_optional_tables_and_columns_as_single_machine(spark, data_copy: Path) -> None:
    """No reviews, items or products, no payments file (amounts from... nowhere: refused
    alike), header-only payments with items, absent delivery columns: Spark reads what the
    single machine reads and gives the same features."""
    for stem in ("olist_order_reviews_dataset", "olist_products_dataset"):
        (data_copy / f"{stem}.csv").unlink()
    orders = data_copy / "olist_orders_dataset.csv"
    pl.read_csv(orders, infer_schema=False).drop(
        "order_delivered_customer_date", "order_estimated_delivery_date"
    ).write_csv(orders)
    payments = data_copy / "olist_order_payments_dataset.csv"
    payments.write_text(payments.read_text().splitlines()[0] + "\n")  # amounts from items
    (want,) = in_process(data_copy, [COVERED])
    spark_tables = S.read_tables(spark, data_copy, tables=S.FEATURE_TABLES)
    got = S.to_polars(S.features(spark, spark_tables, COVERED, partitions=2),
                      sort=["customer_unique_id"])  # fmt: skip
    same(got, want)
    assert want["n_reviews"].max() == 0 and want["monetary"].sum() > 0
    (data_copy / "olist_order_items_dataset.csv").unlink()
    assert_reads_fail_alike(spark, data_copy)


@pytest.mark.spark
@pytest.mark.parametrize(
    ("table", "column", "value", "expected"),
    [
        ("orders", "order_purchase_timestamp", "2018-02-30 10:00:00", "a timestamp like"),
        ("orders", "order_delivered_customer_date", "02/03/2018", "a timestamp like"),
        ("order_reviews", "review_score", "five", "an integer"),
        ("order_items", "price", "12,50", "a number"),
    ],
)
def test_bad_value_names_file_column_and_value(
    spark, data_copy: Path, table: str, column: str, value: str, expected: str
) -> None:
    path = data_copy / f"{TABLES[table].stem}.csv"
    df = pl.read_csv(path, infer_schema=False)
    df.with_columns(
        pl.when(pl.int_range(pl.len()) == 7)
        .then(pl.lit(value))
        .otherwise(pl.col(column))
        .alias(column)
    ).write_csv(path)
    spark_tables = S.read_tables(spark, data_copy, tables=S.FEATURE_TABLES)
    with pytest.raises(OlistDataError) as err:
        S.to_polars(S.features(spark, spark_tables, COVERED, partitions=2))
    msg = str(err.value)
    assert msg.startswith(f"{path}: column {column!r}: {value!r} is not {expected}")
    assert "\n" not in msg
    # the single-machine path refuses the same value, as a data error too
    with pytest.raises(OlistDataError, match="could not be read"):
        in_process(data_copy, [COVERED])


@pytest.mark.spark
def test_integrity_counts_over_all_the_data_equal_the_single_machine(
    spark, small_tables: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from olist_fast.features.snapshot import collect_snapshots
    from olist_fast.synth import write_olist

    t = dict(small_tables)
    t["order_payments"] = pl.concat([t["order_payments"], t["order_payments"].head(7)])
    t["customers"] = pl.concat([t["customers"], t["customers"].head(2)])
    t["orders"] = pl.concat(
        [t["orders"], t["orders"].head(3).with_columns(customer_id=pl.lit("e" * 32))]
    )
    write_olist(t, tmp_path / "d")
    want = collect_snapshots(scan_olist(tmp_path / "d"), [COVERED]).integrity
    got = S.integrity(S.read_tables(spark, tmp_path / "d", tables=S.FEATURE_TABLES))
    assert got == want and got.duplicate_payments == 7 and got.orphan_orders >= 3
    with pytest.raises(OlistDataError, match="strict mode"):
        S.features_to(tmp_path / "f", tmp_path / "d", COVERED, spark=spark, strict=True)
    with caplog.at_level(logging.WARNING, logger="olist_fast"):
        S.features_to(tmp_path / "f", tmp_path / "d", COVERED, spark=spark, partitions=2)
    assert any("extra order_payments rows repeat" in r.getMessage() for r in caplog.records)
