"""The bucketed layout (olist_fast.layout, olist_fast.bucketed): written atomically,
checked when read, and the feature table computed one bucket at a time equals the
unbucketed plan's exactly, in its order, for any number of buckets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from olist_fast import layout as L
from olist_fast.cli import app
from olist_fast.config import RunConfig
from olist_fast.errors import OlistUsageError
from olist_fast.feature_files import feature_table, write_feature_table
from olist_fast.features.keys import NOT_HEX_ID
from olist_fast.io import OlistDataError, scan_olist
from olist_fast.pipeline import run
from olist_fast.schema import TABLES

DATES = ["2017-09-01", "2018-06-01", None]  # None: the end of the healthy period


@pytest.fixture(scope="module")
def layouts(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    base = tmp_path_factory.mktemp("layouts")
    return {n: L.write_layout(data_dir, base / f"n{n}", n).path for n in (1, 3, 8)}


@pytest.fixture(scope="module")
def tiny(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated shop cut to its first 25 customers (by id), as Parquet."""
    tables = {k: v.collect() for k, v in scan_olist(data_dir).items()}
    people = tables["customers"]["customer_unique_id"].unique().sort().head(25).implode()
    customers = tables["customers"].filter(pl.col("customer_unique_id").is_in(people))
    orders = tables["orders"].filter(
        pl.col("customer_id").is_in(customers["customer_id"].implode())
    )
    ids = orders["order_id"].implode()
    out = tmp_path_factory.mktemp("tiny")
    for name, df in tables.items():
        if name == "customers":
            df = customers
        elif name == "orders":
            df = orders
        elif "order_id" in df.columns:
            df = df.filter(pl.col("order_id").is_in(ids))
        df.write_parquet(out / f"{TABLES[name].stem}.parquet")
    return out


@pytest.mark.parametrize("n", [1, 3, 8])
@pytest.mark.parametrize("as_of", DATES)
def test_bucket_at_a_time_equals_the_whole(data_dir, layouts, n, as_of) -> None:
    want = feature_table(data_dir, as_of=as_of)
    assert want.height > 0
    assert_frame_equal(feature_table(layouts[n], as_of=as_of), want, check_exact=True)


def test_more_buckets_than_customers_and_empty_buckets(tiny: Path, tmp_path: Path) -> None:
    many = L.write_layout(tiny, tmp_path / "many", 64)
    assert many.buckets == 25  # one customer each at most
    ids = pl.read_parquet(tiny / "olist_customers_dataset.parquet")["customer_unique_id"]
    # buckets 0, 1 and 3 hold nobody: every id is hex, so at or after "0", before "g"
    empty = L.write_layout(tiny, tmp_path / "empty", 4, starts=["0", "00", "g"])
    assert ids.min() > "00"
    for as_of in ("2018-06-01", None):
        want = feature_table(tiny, as_of=as_of)
        assert "bought_again" not in want.columns or want["bought_again"].sum() < 25
        for lay in (many, empty):
            assert_frame_equal(feature_table(lay.path, as_of=as_of), want, check_exact=True)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_written_bucket_by_bucket_equals_the_whole_file(data_dir, layouts, tmp_path, suffix):
    want = tmp_path / f"want{suffix}"
    got = tmp_path / f"got{suffix}"
    write_feature_table(want, data_dir, as_of="2018-06-01")
    shape = write_feature_table(got, layouts[8], as_of="2018-06-01")
    read = pl.read_parquet if suffix == ".parquet" else pl.read_csv
    assert_frame_equal(read(got), read(want), check_exact=True)
    if suffix == ".csv":
        assert got.read_bytes() == want.read_bytes()
    assert (shape.rows, shape.labels) == (read(want).height, True)
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_appending_writes_every_frame_with_dictionaries_only_where_they_pay(tmp_path) -> None:
    import pyarrow.parquet as pq

    from olist_fast.bucketed import appending

    rng = np.random.default_rng(7)
    frames = [
        pl.DataFrame(
            {
                "id": [f"{i:032x}" for i in range(k * 1000, k * 1000 + n)],
                "spend": rng.random(n),  # every value distinct: plain
                "orders": rng.integers(1, 4, n),  # three values: a dictionary
                "state": [("SP", "RJ", None)[i % 3] for i in range(n)],
            },
            schema={"id": pl.String, "spend": pl.Float64, "orders": pl.Int64, "state": pl.String},
        )
        for k, n in enumerate([0, 400, 0, 250])  # empty buckets first and between
    ]
    out = tmp_path / "f.parquet"
    with appending(out) as append:
        for f in frames:
            append(f)
    assert_frame_equal(pl.read_parquet(out), pl.concat(frames), check_exact=True)
    meta = pq.ParquetFile(out).metadata
    assert meta.num_row_groups == 2
    for g in range(meta.num_row_groups):
        dictionary = {
            meta.schema.column(c).name: meta.row_group(g).column(c).has_dictionary_page
            for c in range(meta.num_columns)
        }
        assert dictionary == {"id": False, "spend": False, "orders": True, "state": True}
    none = tmp_path / "none.parquet"
    with appending(none) as append:
        append(frames[0])
        append(frames[2])
    assert_frame_equal(pl.read_parquet(none), frames[0])
    assert not list(tmp_path.glob(".*"))


def test_layout_tables_read_whole_are_the_source_tables(data_dir, layouts) -> None:
    source = scan_olist(data_dir)
    from olist_fast.data import open_tables

    opened = open_tables(layouts[3], None)
    assert opened.layout is not None and opened.engine == "streaming"
    for name in ("orders", "customers", "order_items", "order_payments", "order_reviews"):
        whole = opened.tables[name].collect()
        want = source[name].collect()
        key = [c for c in TABLES[name].schema if c.endswith("_id")][:2]
        assert_frame_equal(
            whole.sort(key, maintain_order=True), want.sort(key, maintain_order=True)
        )


def test_run_on_a_layout_scores_as_on_the_folder(data_dir, layouts, tmp_path) -> None:
    config = RunConfig(n_boot=20, models=("logistic",), as_of="2018-06-01")
    on_folder = run(config, data=data_dir, out=tmp_path / "a")
    on_layout = run(config, data=layouts[3], out=tmp_path / "b")
    assert on_layout.files["scores"].read_bytes() == on_folder.files["scores"].read_bytes()
    manifest = json.loads(on_layout.files["manifest"].read_text())
    orders = manifest["inputs"]["olist_orders_dataset"]
    assert orders["file"].endswith("bucket=*/*.parquet") and len(orders["sha256"]) == 64


def test_mismatched_layouts_are_one_line_errors(layouts, tmp_path: Path) -> None:
    def broken(change) -> Path:
        copy = tmp_path / f"c{len(list(tmp_path.iterdir()))}"
        shutil.copytree(layouts[3], copy)
        change(copy)
        return copy

    def missing_bucket(p: Path) -> None:
        shutil.rmtree(p / "olist_order_items_dataset" / "bucket=00001")

    def extra_bucket(p: Path) -> None:
        shutil.copytree(
            p / "olist_orders_dataset" / "bucket=00002", p / "olist_orders_dataset" / "bucket=00003"
        )

    def old_version(p: Path) -> None:
        spec = json.loads((p / L.LAYOUT_FILE).read_text())
        (p / L.LAYOUT_FILE).write_text(json.dumps({**spec, "version": 0}))

    def other_n(p: Path) -> None:
        spec = json.loads((p / L.LAYOUT_FILE).read_text())
        (p / L.LAYOUT_FILE).write_text(json.dumps({**spec, "buckets": 4}))

    cases = [
        (missing_bucket, r"items_dataset: bucket bucket=00001 missing \(olist_layout.json says 3"),
        (extra_bucket, r"olist_orders_dataset: bucket=00003 not in the layout"),
        (old_version, r"layout version 0, this olist-fast reads versions 1, 2"),
        (lambda p: (p / L.LAYOUT_FILE).write_text(json.dumps({"format": L.FORMAT, "version": 2})),
         r'not a complete layout file \("buckets" missing\)'),
        (lambda p: (p / L.LAYOUT_FILE).write_text(json.dumps({
             **json.loads((p / L.LAYOUT_FILE).read_text()), "ids": "base64"})),
         r'not a complete layout file \("ids": expected "uint128" or "text", got .base64.\)'),
        (other_n, r"4 buckets need 3 sorted range starts"),
    ]  # fmt: skip
    for change, message in cases:
        with pytest.raises(OlistDataError, match=message) as err:
            feature_table(broken(change), as_of="2018-06-01")
        assert "\n" not in str(err.value)


def test_hex_ids_are_stored_as_integers_and_read_back_as_text(data_dir, layouts) -> None:
    layout = L.open_layout(layouts[3])
    assert layout.ids == "uint128"
    stored = pl.read_parquet(layout.where("orders", 1)).schema
    assert stored["order_id"] == stored["customer_id"] == pl.UInt128
    frames, _ = layout.scan()
    assert frames["orders"].collect_schema()["order_id"] == pl.String


def test_text_ids_and_version_1_layouts(data_dir, tmp_path, monkeypatch) -> None:
    # a shop whose ids are not all hex keeps them as text; a layout of version 1 (text ids,
    # no "ids" entry) is read as before
    def not_hex(column: str) -> pl.Expr:
        marker = pl.lit(NOT_HEX_ID).str.to_integer(base=16, dtype=pl.UInt128, strict=True)
        return pl.when(pl.col(column).is_null()).then(None).otherwise(marker).alias(column)

    monkeypatch.setattr(L, "compact_id", not_hex)
    text = L.write_layout(data_dir, tmp_path / "text", 3)
    monkeypatch.undo()
    assert text.ids == "text" and text.plan_compact is False
    stored = pl.read_parquet(text.where("orders", 1)).schema
    assert stored["order_id"] == pl.String
    want = feature_table(data_dir, as_of="2018-06-01")
    assert_frame_equal(feature_table(text.path, as_of="2018-06-01"), want, check_exact=True)
    spec = json.loads((text.path / L.LAYOUT_FILE).read_text())
    del spec["ids"]
    (text.path / L.LAYOUT_FILE).write_text(json.dumps({**spec, "version": 1}))
    assert L.open_layout(text.path).ids == "unknown"
    assert_frame_equal(feature_table(text.path, as_of="2018-06-01"), want, check_exact=True)


@pytest.mark.parametrize("key", ["customer_id", "order_id"])
def test_a_key_under_customers_of_two_buckets_is_refused_in_one_line(tiny, tmp_path, key) -> None:
    # customer_id: one account under two customer_unique_ids; order_id: one order under
    # two accounts. Their rows cannot all be in one customer's bucket: convert says so.
    customers = pl.read_parquet(tiny / "olist_customers_dataset.parquet")
    orders = pl.read_parquet(tiny / "olist_orders_dataset.parquet")
    first, last = customers.sort("customer_unique_id")[[0, -1]].iter_rows(named=True)
    if key == "customer_id":
        customers = pl.concat(
            [customers, pl.DataFrame([{**last, "customer_id": first["customer_id"]}])]
        )
    else:
        order = orders.filter(pl.col("customer_id") == first["customer_id"]).row(0, named=True)
        orders = pl.concat([orders, pl.DataFrame([{**order, "customer_id": last["customer_id"]}])])
    dirty = tmp_path / "dirty"
    shutil.copytree(tiny, dirty)
    customers.write_parquet(dirty / "olist_customers_dataset.parquet")
    orders.write_parquet(dirty / "olist_orders_dataset.parquet")
    shown = first["customer_id"] if key == "customer_id" else order["order_id"]
    with pytest.raises(
        OlistDataError, match=f"{key} '{shown}' belongs to customers in different buckets"
    ) as err:
        L.write_layout(dirty, tmp_path / "lay", 4)
    assert "\n" not in str(err.value) and not (tmp_path / "lay").exists()
    L.write_layout(dirty, tmp_path / "one", 1)  # one bucket holds every row: fine


def test_a_failed_convert_leaves_no_layout(data_dir, tmp_path, monkeypatch) -> None:
    calls = []

    def fail_on_second(lf, layout, name):
        calls.append(name)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(lf, layout, name)

    real = L._sink_buckets
    monkeypatch.setattr(L, "_sink_buckets", fail_on_second)
    with pytest.raises(OSError, match="disk full"):
        L.write_layout(data_dir, tmp_path / "lay", 2)
    assert list(tmp_path.iterdir()) == []  # nothing that looks like a layout, no temporary
    monkeypatch.undo()
    first = L.write_layout(data_dir, tmp_path / "lay", 2)  # a layout there stays whole
    monkeypatch.setattr(L, "_sink_buckets", fail_on_second)
    calls.clear()
    with pytest.raises(OSError):
        L.write_layout(data_dir, tmp_path / "lay", 3)
    assert L.open_layout(first.path).buckets == 2


def test_cli_convert_buckets_then_features(cli, data_dir, tmp_path) -> None:
    lay = tmp_path / "lay"
    result = cli.invoke(
        app, ["convert", "--data", str(data_dir), "--out", str(lay), "--buckets", "4"]
    )
    assert result.exit_code == 0, result.output
    assert "layout of 4 buckets" in result.output
    out = tmp_path / "f.parquet"
    result = cli.invoke(
        app, ["features", "--data", str(lay), "--as-of", "2018-06-01", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    want = feature_table(data_dir, as_of="2018-06-01")
    assert_frame_equal(pl.read_parquet(out), want, check_exact=True)
    bad = cli.invoke(app, ["convert", "--data", str(data_dir), "--out", str(lay), "--buckets", "0"])
    assert bad.exit_code != 0


def test_compact_snapshots_give_the_same_run(data_dir, layouts, tmp_path, monkeypatch) -> None:
    """With every cap lowered so the samples draw from a few hundred of each window's
    thousands of non-buyers, a run on a layout (its older labelled snapshots kept
    compact, every row spilled to disk) writes the same scores, model and metrics as the
    run on the folder (whole snapshots in memory)."""
    import olist_fast.calibration as C
    import olist_fast.models as M
    import olist_fast.sampling as SA
    import olist_fast.selection as SE
    from olist_fast import backtest
    from olist_fast.data import read_source
    from olist_fast.protocol import READ_WHOLE, layout_protocol_snapshots

    for module, name, value in [
        (M, "SAMPLE_ABOVE_ROWS", 1_000), (M, "MAX_NEGATIVES", 300),
        (SE, "FOLD_MAX_NEGATIVES", 1_000), (SA, "TRAIN_KEEP", 400), (SA, "FOLD_KEEP", 1_300),
        (SA, "DRIFT_ROWS", 500), (C, "DRIFT_ROWS", 500),
    ]:  # fmt: skip
        monkeypatch.setattr(module, name, value)
    config = RunConfig(n_boot=20, models=("logistic", "random_forest"), as_of="2018-06-01")
    source = read_source(layouts[3], config.as_of)
    snaps = layout_protocol_snapshots(source, config.protocol(source.as_of), seed=0)
    compact = snaps.compacted[2]
    assert compact.rows > compact.frame.height > 0  # rows were left out of memory ...
    assert compact.train_below < 1 and compact.fold_below < 1
    assert compact.spill is None and compact.stats.rows == compact.rows  # only sampled ...
    assert len(compact.labels) == compact.rows
    with pytest.raises(RuntimeError, match="without a spill"):
        compact.lazy()
    assert set(READ_WHOLE) == {0, backtest.TEST}  # ... the two read again are on disk
    scored = snaps.compacted[0]  # the scored snapshot: its drift sample only, scored from disk
    assert scored.frame.height == 500 < scored.rows
    test = snaps.compacted[1]  # the backtest's window: read from disk for its reports
    assert test.frame.height < test.rows and test.fold_below == -np.inf
    assert test.lazy().collect().height == test.rows
    on_folder = run(config, data=data_dir, out=tmp_path / "a")
    on_layout = run(config, data=layouts[3], out=tmp_path / "b")
    assert on_layout.files["scores"].read_bytes() == on_folder.files["scores"].read_bytes()
    assert on_layout.metrics == on_folder.metrics
    for name in ("model.json",):
        a = (on_folder.files["model"] / name).read_bytes()
        assert (on_layout.files["model"] / name).read_bytes() == a
    manifests = [json.loads(r.files["manifest"].read_text()) for r in (on_folder, on_layout)]
    assert manifests[0]["rows"] == manifests[1]["rows"]
    assert manifests[0]["positives"] == manifests[1]["positives"]
    # another seed would draw rows the compact snapshots did not keep: a usage error
    from olist_fast.protocol import training_set

    with pytest.raises(OlistUsageError, match="kept compact for seed 0, not 1"):
        training_set(snaps, 1, seed=1)
    # compare fits the notebook approach on every row: its snapshots are read whole
    from olist_fast.protocol import read_snapshots

    whole = read_snapshots(RunConfig(data=layouts[3], as_of="2018-06-01", compare=True))
    assert not whole.compacted
    # after the model stage only snapshot 0 and the labelled ones' counts and labels stay
    for snapshots in (snaps, whole):
        counted = snapshots.scored_and_counted()
        assert counted[0] is snapshots[0] and counted.lazy(0).collect().equals(
            snapshots.lazy(0).collect()
        )
        for j in range(1, len(snapshots.frames)):
            assert counted.rows(j) == snapshots.rows(j) > 0
            assert np.array_equal(counted.labels(j), snapshots.labels(j))
            if j in counted.compacted:
                assert counted[j].height == counted.compacted[j].frame.height == 0
            else:
                assert counted[j].columns == ["bought_again"]


def test_the_compact_snapshots_keep_more_than_any_sample_draws() -> None:
    """What a compact snapshot keeps per stream exceeds what the samples draw by far more
    than the draw's noise, so the check in Snapshots.sample_below never fires."""
    import math

    import olist_fast.models as M
    import olist_fast.sampling as SA
    import olist_fast.selection as SE

    for keep, draws in [(SA.TRAIN_KEEP, M.MAX_NEGATIVES), (SA.FOLD_KEEP, SE.FOLD_MAX_NEGATIVES)]:
        assert keep - draws > 50 * math.sqrt(draws)


def test_a_large_folder_gets_one_line_on_the_layout(data_dir, layouts, monkeypatch, caplog):
    import olist_fast.data as D

    D.open_tables(data_dir, None)
    assert "bucketed layout" not in caplog.text  # a small folder: no hint
    monkeypatch.setattr(D, "LARGE_ORDERS_BYTES", 1)
    D.open_tables(data_dir, None)
    (line,) = [r.getMessage() for r in caplog.records if "bucketed layout" in r.getMessage()]
    assert f"olist-fast convert --data {data_dir} --out LAYOUT --buckets 32" in line
    caplog.clear()
    D.open_tables(layouts[3], None)  # a layout is the answer, not a folder to convert
    assert "bucketed layout" not in caplog.text


def test_convert_never_replaces_a_folder_that_is_not_a_layout(data_dir, tmp_path) -> None:
    from olist_fast.errors import OlistUsageError

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("keep me")
    with pytest.raises(OlistUsageError, match="exists and is not a bucketed layout"):
        L.write_layout(data_dir, busy, 2)
    assert (busy / "notes.txt").read_text() == "keep me"
    with pytest.raises(OlistUsageError, match="is the data folder or holds it"):
        L.write_layout(data_dir, data_dir, 2)
    with pytest.raises(OlistUsageError, match="is the data folder or holds it"):
        L.write_layout(data_dir, data_dir.parent, 2)
    assert any(data_dir.iterdir())


def test_a_file_url_output_is_the_local_file(data_dir, layouts, tmp_path) -> None:
    target = tmp_path / "f.parquet"
    write_feature_table(f"file://{target}", layouts[3], as_of="2018-06-01")
    want = feature_table(data_dir, as_of="2018-06-01")
    assert_frame_equal(pl.read_parquet(target), want, check_exact=True)


def test_each_bucket_reads_the_products_its_items_name(tiny: Path, tmp_path: Path) -> None:
    """A bucket's products are the rows its items name (a product sold in several buckets
    is in each; a product listed twice, twice): the table is the folder's."""
    products = pl.read_parquet(tiny / "olist_products_dataset.parquet")
    items = pl.read_parquet(tiny / "olist_order_items_dataset.parquet")
    sold = items["product_id"].value_counts(sort=True)["product_id"][0]
    twice = products.filter(pl.col("product_id") == sold).with_columns(
        pl.lit("another_category").alias("product_category_name")
    )
    dirty = tmp_path / "dirty"
    shutil.copytree(tiny, dirty)
    pl.concat([products, twice]).write_parquet(dirty / "olist_products_dataset.parquet")
    layout = L.write_layout(dirty, tmp_path / "lay", 4)
    assert layout.subsets == ("products",)
    subset_rows = [pl.read_parquet(layout.where("products", k)).height for k in range(4)]
    assert 0 < max(subset_rows) < products.height
    for as_of in ("2018-06-01", None):
        want = feature_table(dirty, as_of=as_of)
        assert_frame_equal(feature_table(layout.path, as_of=as_of), want, check_exact=True)
    frames, _ = layout.scan()  # the whole table is still the source's
    assert frames["products"].collect().height == products.height + twice.height


def test_a_shop_unlike_the_demo_gives_the_folders_table(tiny: Path, tmp_path: Path) -> None:
    """Ids that are not hex (stored as text), no reviews file, refunds: the layout's
    table is still the folder's, at a few buckets and at more buckets than customers."""
    shop = tmp_path / "shop"
    shop.mkdir()
    for path in tiny.glob("*.parquet"):
        if "reviews" in path.name:
            continue  # a shop without reviews
        df = pl.read_parquet(path)
        ids = [c for c in ("order_id", "customer_id", "customer_unique_id") if c in df.columns]
        df = df.with_columns(pl.concat_str(pl.lit("Shop-"), pl.col(c)).alias(c) for c in ids)
        if "payment_value" in df.columns:  # every seventh payment is a refund
            refund = pl.int_range(pl.len()) % 7 == 0
            value = (
                pl.when(refund).then(-pl.col("payment_value")).otherwise(pl.col("payment_value"))
            )
            df = df.with_columns(value.alias("payment_value"))
        df.write_parquet(shop / path.name)
    for n in (3, 64):
        layout = L.write_layout(shop, tmp_path / f"lay{n}", n)
        assert layout.ids == "text" and "order_reviews" not in layout.tables
        for as_of in ("2018-06-01", None):
            want = feature_table(shop, as_of=as_of)
            assert want["customer_unique_id"].str.starts_with("Shop-").all()
            got = feature_table(layout.path, as_of=as_of)
            assert_frame_equal(got, want, check_exact=True)
