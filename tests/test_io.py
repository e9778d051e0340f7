from __future__ import annotations

import csv
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from olist_fast.io import (
    OlistDataError,
    atomic_path,
    convert,
    preferred_engine,
    scan_olist,
    write_frame,
)
from olist_fast.schema import TABLES

SAMPLE_ROWS = {
    "orders": 4071,
    "customers": 200,
    "order_items": 5154,
    "order_payments": 4733,
    "order_reviews": 6123,
    "products": 32951,
    "sellers": 3095,
    "category_translation": 71,
    "geolocation": 88,
}


def python_csv(path: Path) -> list[dict[str, str]]:
    """The standard library's reading of a file: the reference for what the bytes say."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_real_sample_parses_with_the_declared_schema(real_samples: Path) -> None:
    tables = scan_olist(real_samples)
    assert set(tables) == set(TABLES)
    for name, lf in tables.items():
        df = lf.collect()
        assert df.schema == TABLES[name].schema, name
        assert df.height == SAMPLE_ROWS[name], name


@pytest.mark.parametrize("name", list(TABLES))
def test_real_sample_values_match_the_stdlib_csv_reading(real_samples: Path, name: str) -> None:
    """Every cell, as text, equals what Python's csv module reads; empty means null."""
    spec = TABLES[name]
    df = scan_olist(real_samples, tables=[name])[name].collect()
    ref = python_csv(real_samples / f"{spec.stem}.csv")
    assert len(ref) == df.height
    for col, dtype in spec.schema.items():
        expected = [r[col] for r in ref]
        got = df[col]
        if dtype == pl.String:
            assert got.to_list() == [v if v != "" else None for v in expected], col
        elif col in spec.timestamps:
            text = got.dt.strftime("%Y-%m-%d %H:%M:%S").to_list()
            assert text == [v or None for v in expected], col
        else:
            parsed = [None if v == "" else float(v) for v in expected]
            assert got.cast(pl.Float64).to_list() == parsed, col


def test_real_format_quirks_survive(real_samples: Path) -> None:
    t = {k: v.collect() for k, v in scan_olist(real_samples).items()}
    # zip prefixes keep leading zeros
    assert "09790" in t["customers"]["customer_zip_code_prefix"].to_list()
    assert t["sellers"]["seller_zip_code_prefix"].str.len_chars().min() == 5
    # the BOM is not part of the first column's name
    assert t["category_translation"].columns[0] == "product_category_name"
    # multi-line comments keep their CRLF inside; the row's last field has no stray CR
    msgs = t["order_reviews"]["review_comment_message"].drop_nulls()
    assert msgs.str.contains("\r\n").sum() > 100
    assert t["order_reviews"]["review_answer_timestamp"].null_count() == 0
    # empty fields are null, nothing else is
    assert t["products"]["product_category_name"].null_count() == 610
    assert t["order_reviews"]["review_comment_title"].null_count() > 0
    # the misspelt columns are kept as they are
    assert "product_name_lenght" in t["products"].columns


def test_missing_file_and_missing_column_raise_one_line(tmp_path: Path) -> None:
    with pytest.raises(OlistDataError, match=r"olist_orders_dataset\.csv: file not found"):
        scan_olist(tmp_path)
    (tmp_path / "olist_orders_dataset.csv").write_text('"order_id"\n1\n')
    with pytest.raises(OlistDataError, match=r"missing column 'customer_id' \(and 1 more\)"):
        scan_olist(tmp_path, tables=["orders"])
    (tmp_path / "olist_orders_dataset.csv").write_text(
        '"order_id","customer_id","order_purchase_timestamp"\n1,2,2018-01-11T14:01:40Z\n'
    )
    orders = scan_olist(tmp_path, tables=["orders"])["orders"].collect()  # the rest is null
    assert orders.columns == list(TABLES["orders"].schema)
    assert orders["order_status"].null_count() == 1


def test_parquet_copies_read_the_same(small_csv_dir: Path, tmp_path: Path) -> None:
    written = convert(small_csv_dir, tmp_path)
    assert len(written) == 9
    a = scan_olist(small_csv_dir)
    b = scan_olist(tmp_path, fmt="parquet")
    for name in TABLES:
        assert_frame_equal(a[name].collect(), b[name].collect())


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("keep me")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "keep me"
    assert list(tmp_path.iterdir()) == [target]


def test_write_frame_rejects_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(OlistDataError, match="unsupported output extension"):
        write_frame(pl.DataFrame({"a": [1]}), tmp_path / "x.json")


def test_engine_follows_format(small_csv_dir: Path, tmp_path: Path) -> None:
    assert preferred_engine(small_csv_dir) == "in-memory"
    convert(small_csv_dir, tmp_path / "pq")
    assert preferred_engine(tmp_path / "pq") == "streaming"
    (tmp_path / "pq" / "olist_orders_dataset.parquet").unlink()
    with pytest.raises(OlistDataError, match="olist_orders_dataset"):
        preferred_engine(tmp_path / "pq")
