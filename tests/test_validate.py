from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from olist_fast.cli import app
from olist_fast.data import validate
from olist_fast.validation import data_health, every_month, health_of

ORDERS = "olist_orders_dataset.csv"


def run_validate(cli: CliRunner, data: Path):
    return cli.invoke(app, ["validate", "--data", str(data)])


def one_error(result, *fragments: str) -> str:
    """The run failed with exit 1 and exactly one error line holding every fragment."""
    assert result.exit_code == 1, result.output
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for f in fragments:
        assert f in errors[0], errors[0]
    assert "Traceback" not in result.output
    return errors[0]


def edit_line(path: Path, line_no: int, fn) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[line_no - 1] = fn(lines[line_no - 1])
    path.write_bytes(b"\n".join(lines))


def test_generated_data_is_valid(cli: CliRunner, small_csv_dir: Path) -> None:
    result = run_validate(cli, small_csv_dir)
    assert result.exit_code == 0, result.output
    assert "OK:" in result.stdout
    assert "Rows per table:" in result.stdout


def test_real_samples_parse_without_errors(real_samples: Path) -> None:
    report = validate(real_samples)
    assert report.errors == []
    assert any("not in olist_customers_dataset" in w for w in report.warnings)
    assert report.health is not None
    assert report.health.collapse_month == "2018-09"


def test_missing_file(cli: CliRunner, data_copy: Path) -> None:
    (data_copy / "olist_customers_dataset.csv").unlink()
    one_error(run_validate(cli, data_copy), "olist_customers_dataset.csv", "file not found")


def test_optional_tables_may_be_missing_and_say_what_is_lost(
    cli: CliRunner, data_copy: Path
) -> None:
    (data_copy / "olist_order_payments_dataset.csv").unlink()
    (data_copy / "olist_order_reviews_dataset.csv").unlink()
    r = run_validate(cli, data_copy)
    assert r.exit_code == 0, r.output
    assert (
        "olist_order_reviews_dataset: not present: features off, empty for every customer: "
        "n_reviews, avg_review_score, min_review_score, share_reviews_with_comment" in r.stderr
    )
    assert "order amounts are taken from order_items (price + freight_value)" in r.stderr
    (data_copy / "olist_order_items_dataset.csv").unlink()
    one_error(run_validate(cli, data_copy), "no order amounts")


def test_tables_the_plan_does_not_read_may_be_missing(cli: CliRunner, data_copy: Path) -> None:
    (data_copy / "olist_sellers_dataset.csv").unlink()
    (data_copy / "olist_geolocation_dataset.csv").unlink()
    r = run_validate(cli, data_copy)
    assert r.exit_code == 0, r.output
    assert "olist_sellers_dataset: not present (the feature plan does not read it)" in r.stderr


def test_missing_column(cli: CliRunner, data_copy: Path) -> None:
    edit_line(data_copy / ORDERS, 1, lambda b: b.replace(b'"customer_id"', b'"client"'))
    one_error(run_validate(cli, data_copy), ORDERS, "missing column 'customer_id'")


def test_missing_optional_column_is_a_warning(cli: CliRunner, data_copy: Path) -> None:
    edit_line(data_copy / ORDERS, 1, lambda b: b.replace(b'"order_status"', b'"status"'))
    r = run_validate(cli, data_copy)
    assert r.exit_code == 0, r.output
    assert "no column 'order_status': read as empty for every row" in r.stderr


def test_unparseable_timestamp(cli: CliRunner, data_copy: Path) -> None:
    edit_line(
        data_copy / ORDERS, 5, lambda b: b.replace(b",20", b",2O", 1)
    )  # a letter O in the purchase timestamp
    err = one_error(run_validate(cli, data_copy), ORDERS, "order_purchase_timestamp", "row 4")
    assert "is not a timestamp" in err


def test_unparseable_number(cli: CliRunner, data_copy: Path) -> None:
    path = data_copy / "olist_order_items_dataset.csv"
    edit_line(path, 3, lambda b: b.rsplit(b",", 1)[0] + b',"12,5"')
    err = one_error(run_validate(cli, data_copy), path.name, "row 2", "freight_value")
    assert "'12,5' is not a number" in err


def test_extra_field_names_the_row(cli: CliRunner, data_copy: Path) -> None:
    path = data_copy / "olist_order_items_dataset.csv"
    edit_line(path, 4, lambda b: b + b",9.99")
    one_error(run_validate(cli, data_copy), path.name, "row 3", "8 fields (expected 7)")


def test_non_utf8_bytes(cli: CliRunner, data_copy: Path) -> None:
    path = data_copy / "olist_customers_dataset.csv"
    edit_line(path, 7, lambda b: b.replace(b"SP", b"S\xe3o", 1) if b"SP" in b else b + b"\xff")
    one_error(run_validate(cli, data_copy), path.name, "line 7", "invalid UTF-8")


def test_zero_byte_file(cli: CliRunner, data_copy: Path) -> None:
    (data_copy / "olist_order_payments_dataset.csv").write_bytes(b"")
    one_error(run_validate(cli, data_copy), "olist_order_payments_dataset.csv", "0 bytes")


def test_header_only_file(cli: CliRunner, data_copy: Path) -> None:
    path = data_copy / ORDERS
    path.write_bytes(path.read_bytes().split(b"\n", 1)[0] + b"\n")
    one_error(run_validate(cli, data_copy), path.name, "no data rows")


def test_truncated_last_line(cli: CliRunner, data_copy: Path) -> None:
    path = data_copy / ORDERS
    text = path.read_bytes().rstrip(b"\n")
    n_rows = text.count(b"\n")
    path.write_bytes(text[: text.rindex(b",", 0, text.rindex(b",") - 1)])
    one_error(run_validate(cli, data_copy), ORDERS, f"row {n_rows}", "truncated")


def test_duplicated_order_id(cli: CliRunner, data_copy: Path) -> None:
    path = data_copy / ORDERS
    lines = path.read_bytes().rstrip(b"\n").split(b"\n")
    path.write_bytes(b"\n".join([*lines, lines[3]]) + b"\n")
    one_error(run_validate(cli, data_copy), ORDERS, "duplicated key")


def test_unclosed_quote_is_a_parse_error(cli: CliRunner, data_copy: Path) -> None:
    path = data_copy / "olist_sellers_dataset.csv"
    path.write_bytes(path.read_bytes() + b'"abc,"01234,x,SP\n')
    one_error(run_validate(cli, data_copy), path.name)


def test_data_health_finds_the_collapse() -> None:
    def month(y: int, m: int, n: int, status: str = "delivered") -> list[dict]:
        return [
            {"order_status": status, "order_purchase_timestamp": datetime(y, m, 1 + i % 27)}
            for i in range(n)
        ]

    rows = (
        month(2018, 1, 100)
        + month(2018, 2, 50)
        + month(2018, 3, 12)  # above 10 % of 100: still healthy
        + month(2018, 4, 9)  # below: the collapse
        + month(2018, 5, 80)
        + month(2018, 6, 500, "canceled")  # ineligible orders do not count
    )
    health = data_health(pl.LazyFrame(rows))
    assert health.busiest_month == "2018-01"
    assert health.collapse_month == "2018-04"
    assert health.healthy_end == datetime(2018, 4, 1)


def test_data_health_without_collapse_ends_after_the_data() -> None:
    rows = [
        {"order_status": None, "order_purchase_timestamp": datetime(2018, 1, 3, 10)},
        {"order_status": "delivered", "order_purchase_timestamp": datetime(2018, 2, 3, 10)},
    ]
    health = data_health(pl.LazyFrame(rows))
    assert health.collapse_month is None
    assert health.healthy_end == datetime(2018, 2, 4)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_validate_reads_csv_and_parquet(
    cli: CliRunner, small_csv_dir: Path, tmp_path: Path, fmt: str
) -> None:
    """The same verdict and counts from the CSV files and from their Parquet copies."""
    from olist_fast.io import convert

    folder = small_csv_dir
    if fmt == "parquet":
        convert(small_csv_dir, tmp_path)
        assert sorted(p.suffix for p in tmp_path.iterdir()) == [".parquet"] * 9
        folder = tmp_path
    r = run_validate(cli, folder)
    assert r.exit_code == 0, r.output
    assert "Data health:" in r.stdout
    assert r.stdout == run_validate(cli, small_csv_dir).stdout.replace(
        str(small_csv_dir), str(folder)
    )


@pytest.mark.parametrize("unit", ["us", "ms", "ns"])
def test_a_month_without_orders_ends_the_healthy_period(unit: str) -> None:
    """A month with no row at all (how Spark's and a sparse shop's counts arrive) counts as
    zero orders: here it is the first month after the busiest below the threshold."""
    monthly = pl.DataFrame(
        {
            "month": [datetime(2018, 1, 1), datetime(2018, 3, 1), datetime(2018, 4, 1)],
            "eligible": [100, 100, 100],
        }
    ).with_columns(pl.col("month").cast(pl.Datetime(unit)))
    health = health_of(monthly, lambda: None)
    assert (health.busiest_month, health.collapse_month) == ("2018-01", "2018-02")
    assert health.healthy_end == datetime(2018, 2, 1)
    filled = every_month(monthly.lazy()).collect()
    assert filled["eligible"].to_list() == [100, 0, 100, 100]
    assert filled["month"].dtype == pl.Datetime(unit)
