"""The library as an ETL job embeds it: frames in, frames out, no silent mistakes.

Each test here guards one silent mistake and fails without its fix:
frames read with default type inference, duplicate and orphan rows, a saved model that
scores the past or mixes files, a skops file naming a foreign type, errors misreported
as the user's, progress printed by a library.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import zipfile
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow.csv as pacsv
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

import olist_fast
from olist_fast.cli import app
from olist_fast.config import RunConfig
from olist_fast.errors import OlistDataError, OlistUsageError
from olist_fast.features import build_snapshots
from olist_fast.features.snapshot import collect_snapshots
from olist_fast.fitting import FittedModel
from olist_fast.io import as_tables, scan_olist
from olist_fast.models import all_setups, fit_setup, make_spend_regressor
from olist_fast.persist import SKOPS_TRUSTED
from olist_fast.pipeline import run, score, train
from olist_fast.schema import PLAN_TABLES, TABLES

AS_OF = datetime(2018, 9, 1)


@pytest.fixture(scope="module")
def model_dir(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("api-model")
    train(data=data_dir, as_of=AS_OF, model_dir=out, setup="logistic", seed=1)
    return out


def read_all(data_dir: Path, reader: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for name in PLAN_TABLES:
        path = data_dir / f"{TABLES[name].stem}.csv"
        if reader == "pandas":
            out[name] = pd.read_csv(path)
        elif reader == "polars":
            out[name] = pl.read_csv(path)
        else:
            out[name] = pacsv.read_csv(path)
    return out


# -- frames in ------------------------------------------------------------------------
@pytest.mark.parametrize("reader", ["pandas", "polars", "pyarrow"])
def test_frames_read_with_default_inference_give_the_folder_tables(
    small_csv_dir: Path, reader: str
) -> None:
    frames = read_all(small_csv_dir, reader)
    if reader == "pandas":  # the default reader really did guess other types
        assert frames["customers"]["customer_zip_code_prefix"].dtype.kind == "i"  # type: ignore[index]
    converted = as_tables(frames)
    folder = scan_olist(small_csv_dir)
    for name in PLAN_TABLES:
        assert_frame_equal(converted[name].collect(), folder[name].collect())


def test_run_on_pandas_frames_gives_the_folder_scores(data_dir: Path, tmp_path: Path) -> None:
    frames = read_all(data_dir, "pandas")
    a = run(tables=frames, as_of=date(2018, 6, 1), out=tmp_path / "a", n_boot=20)
    b = run(data=data_dir, as_of=date(2018, 6, 1), out=tmp_path / "b", n_boot=20)
    assert a.chosen == b.chosen
    assert_frame_equal(a.scores, b.scores)
    manifest = json.loads(a.files["manifest"].read_text())
    assert manifest["resolved"]["data"] == "in-memory tables"
    assert set(manifest["inputs"]) == {TABLES[n].stem for n in PLAN_TABLES}


def test_bad_frames_are_one_line_errors(small_csv_dir: Path) -> None:
    frames = read_all(small_csv_dir, "polars")
    with pytest.raises(OlistDataError, match=r"tables: missing table 'customers'"):
        as_tables({k: v for k, v in frames.items() if k != "customers"})
    no_amount = {k: v for k, v in frames.items() if k not in ("order_items", "order_payments")}
    with pytest.raises(OlistDataError, match=r"tables: no order amounts"):
        as_tables(no_amount)
    bad = dict(frames, orders=frames["orders"].drop("order_purchase_timestamp"))  # type: ignore[attr-defined]
    with pytest.raises(
        OlistDataError, match=r"tables\['orders'\]: missing column 'order_purchase_timestamp'"
    ):
        as_tables(bad)
    items = frames["order_items"].with_columns(order_item_id=pl.col("order_item_id") + 0.5)  # type: ignore[attr-defined]
    with pytest.raises(OlistDataError, match="'order_item_id' has a fractional value"):
        as_tables(dict(frames, order_items=items))
    with pytest.raises(OlistDataError, match="expected a polars DataFrame"):
        as_tables(dict(frames, products=[1, 2, 3]))
    with pytest.raises(OlistUsageError, match="not both"):
        run(data=small_csv_dir, tables=frames)


# -- integrity: counted in the same collection, warned, strict -------------------------
def test_duplicates_and_orphans_are_counted_warned_and_strict(
    small_csv_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    t = {k: v.collect() for k, v in scan_olist(small_csv_dir).items()}
    clean = collect_snapshots(t, [AS_OF]).integrity
    assert not clean.problems()
    dirty = dict(
        t,
        order_payments=pl.concat([t["order_payments"], t["order_payments"]]),
        customers=pl.concat([t["customers"], t["customers"].head(3)]),
        orders=pl.concat(
            [
                t["orders"],
                t["orders"]
                .head(2)
                .with_columns(order_id=pl.lit("f" * 32), customer_id=pl.lit("e" * 32)),
            ]
        ).with_columns(
            order_purchase_timestamp=pl.when(pl.int_range(pl.len()) == 0)
            .then(None)
            .otherwise(pl.col("order_purchase_timestamp"))
        ),
    )
    got = collect_snapshots(dirty, [AS_OF]).integrity
    assert got.duplicate_payments == t["order_payments"].height  # a file loaded twice
    assert got.duplicate_customers == 3 and got.orphan_orders == 2
    assert got.duplicate_orders == 1 and got.undated_orders == 1 and got.duplicate_items == 0
    items = dict(dirty, order_items=pl.concat([t["order_items"], t["order_items"].tail(4)]))
    assert collect_snapshots(items, [AS_OF]).integrity.duplicate_items == 4
    with caplog.at_level(logging.WARNING, logger="olist_fast"):
        build_snapshots(dirty, [AS_OF])
    warned = [r.getMessage() for r in caplog.records]
    assert any("extra order_payments rows repeat" in w and "future_spend" in w for w in warned)
    with pytest.raises(OlistDataError, match=r"data integrity: .* \(strict mode\)"):
        build_snapshots(dirty, [AS_OF], strict=True)


def test_cli_warns_on_a_payments_file_loaded_twice_and_strict_fails(
    cli: CliRunner, data_copy: Path, tmp_path: Path
) -> None:
    path = data_copy / f"{TABLES['order_payments'].stem}.csv"
    body = path.read_bytes().split(b"\n", 1)[1]
    path.write_bytes(path.read_bytes() + body)
    args = ["features", "--data", str(data_copy), "--out", str(tmp_path / "f.parquet")]
    r = cli.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "warning: data integrity:" in r.stderr and "order_payments rows repeat" in r.stderr
    r = cli.invoke(app, [*args, "--strict"])
    (line,) = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert r.exit_code == 1 and "strict mode" in line
    r = cli.invoke(app, ["validate", "--data", str(data_copy)])
    assert r.exit_code == 1 and "order_id+payment_sequential" in r.stderr


def test_validate_flags_a_missing_purchase_time(cli: CliRunner, data_copy: Path) -> None:
    path = data_copy / f"{TABLES['orders'].stem}.csv"
    lines = path.read_text().split("\n")
    fields = lines[3].split(",")
    fields[3] = ""  # order_purchase_timestamp
    lines[3] = ",".join(fields)
    path.write_text("\n".join(lines))
    r = cli.invoke(app, ["validate", "--data", str(data_copy)])
    assert r.exit_code == 1
    assert "column 'order_purchase_timestamp', row 3: empty value" in r.stderr


# -- saved models ---------------------------------------------------------------------
def test_model_records_its_dates_features_and_versions(model_dir: Path) -> None:
    meta = json.loads((model_dir / "model.json").read_text())
    assert meta["as_of"] == "2018-09-01T00:00:00" and meta["label_end"] == "2018-09-01T00:00:00"
    model = FittedModel.load(model_dir)
    assert meta["features"] == model.encoding.names and meta["n_features"] == len(meta["features"])
    assert {"scikit-learn", "polars", "olist-fast"} <= set(meta["versions"])


def test_score_refuses_a_date_the_labels_reach_past(
    cli: CliRunner, data_dir: Path, model_dir: Path
) -> None:
    with pytest.raises(
        OlistDataError, match="before 2018-09-01, the end of the model's last label"
    ):
        score(model_dir, data=data_dir, as_of=date(2018, 3, 1))
    r = cli.invoke(app, ["score", "--model", str(model_dir), "--data", str(data_dir),
                            "--as-of", "2018-03-01"])  # fmt: skip
    assert r.exit_code == 1 and "leakage" in r.stderr and r.stderr.count("\n") == 1
    assert score(model_dir, data=data_dir, as_of=AS_OF).height > 0  # the end itself is fine


def test_a_model_folder_that_mixes_files_or_versions_is_refused(
    model_dir: Path, tmp_path: Path
) -> None:
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    meta = json.loads((bad / "model.json").read_text())
    meta["features"] = meta["features"][:-1]
    meta["n_features"] -= 1
    (bad / "model.json").write_text(json.dumps(meta))
    with pytest.raises(OlistDataError, match="features differ"):
        FittedModel.load(bad)
    enc = json.loads((model_dir / "encoding.json").read_text())
    first = next(iter(enc["categories"]))
    enc["categories"][first] = [*enc["categories"][first], "zz-not-seen"]
    (bad / "encoding.json").write_text(json.dumps(enc))
    from olist_fast.encode import Encoding

    names = Encoding(categories=enc["categories"], dropped=enc["dropped"]).names
    meta.update(features=names, n_features=len(names))
    (bad / "model.json").write_text(json.dumps(meta))
    with pytest.raises(OlistDataError, match=r"classifier was fitted on \d+ columns but"):
        FittedModel.load(bad)
    meta.pop("format")
    (bad / "model.json").write_text(json.dumps(meta))
    with pytest.raises(OlistDataError, match="model format None"):
        FittedModel.load(bad)


def test_skops_allowlist_is_exactly_what_save_writes(tmp_path: Path) -> None:
    import skops.io as sio

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 6))
    X[rng.random(X.shape) < 0.05] = np.nan
    y = (rng.random(600) < 0.2).astype(int)
    found: set[str] = set()
    from olist_fast.persist import save_model

    for c in all_setups():
        folder = tmp_path / c.name
        for p in save_model(fit_setup(c, X, y, 0), folder):
            if p.suffix == ".skops":
                found |= set(sio.get_untrusted_types(file=p))
    sio.dump(
        make_spend_regressor(random_state=0).fit(X[:100], rng.random(100)), tmp_path / "s.skops"
    )
    found |= set(sio.get_untrusted_types(file=tmp_path / "s.skops"))
    assert found == SKOPS_TRUSTED


def test_a_skops_file_naming_a_foreign_type_is_refused(model_dir: Path, tmp_path: Path) -> None:
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    spend = bad / "spend.skops"
    with zipfile.ZipFile(spend) as z:
        files = {n: z.read(n) for n in z.namelist()}
    schema = json.loads(files["schema.json"])
    schema["__module__"], schema["__class__"] = "os", "system"
    files["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(spend, "w") as z:
        for n, b in files.items():
            z.writestr(n, b)
    with pytest.raises(
        OlistDataError, match=r"refers to type 'os\.system', which olist-fast never"
    ):
        FittedModel.load(bad)


@pytest.mark.parametrize("setup", [c.name for c in all_setups()])
def test_every_setup_round_trips_through_its_model_folder(
    data_dir: Path, tmp_path: Path, setup: str
) -> None:
    model = train(data=data_dir, as_of=AS_OF, model_dir=tmp_path / "m", setup=setup, folds=0)
    files = {p.name for p in (tmp_path / "m").iterdir()}
    assert ("classifier.ubj" in files) == (setup == "xgboost")
    direct = score(model, data=data_dir, as_of=AS_OF)
    loaded = score(tmp_path / "m", data=data_dir, as_of=AS_OF)
    assert_frame_equal(direct, loaded)


# -- errors, logging, signatures --------------------------------------------------------
def test_a_bug_is_an_internal_error_not_the_users(
    cli: CliRunner, small_csv_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import olist_fast.feature_files as feature_files

    def broken(*args, **kwargs):
        raise KeyError("a bug in our code")

    monkeypatch.setattr(feature_files, "build_snapshots", broken)
    args = ["features", "--data", str(small_csv_dir), "--out", str(tmp_path / "f.parquet")]
    r = cli.invoke(app, args)
    assert r.exit_code == 2
    (line,) = [ln for ln in r.stderr.splitlines() if "error" in ln]
    assert line.startswith("internal error: KeyError") and "--debug" in line
    r = cli.invoke(app, ["--debug", *args])
    assert isinstance(r.exception, KeyError)


def test_the_library_prints_nothing(small_csv_dir: Path) -> None:
    """Warnings and progress go to the "olist_fast" logger, silent until configured."""
    code = f"""
import polars as pl, olist_fast
from datetime import date
t = {{k: v.collect() for k, v in olist_fast.scan_olist({str(small_csv_dir)!r}).items()}}
t["order_payments"] = pl.concat([t["order_payments"], t["order_payments"]])
olist_fast.build_snapshots(t, [date(2018, 6, 1)])
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout == "" and r.stderr == ""


def test_config_and_overrides_merge_and_unknown_names_are_refused() -> None:
    base = RunConfig(horizon_days=60, seed=3)
    merged = RunConfig.merged(base, {"seed": 4, "as_of": date(2018, 6, 1)})
    assert merged.horizon_days == 60 and merged.seed == 4
    assert merged.as_of == datetime(2018, 6, 1)
    with pytest.raises(OlistUsageError, match="unknown setting 'sede'"):
        RunConfig.merged(base, {"sede": 4})
    with pytest.raises(OlistUsageError, match="n_jobs"):
        RunConfig(n_jobs=0)


def test_dir_lists_the_public_names() -> None:
    names = dir(olist_fast)
    assert set(olist_fast.__all__) <= set(names)
    assert {"FittedModel", "score_customers", "as_tables", "OlistError"} <= set(names)


def test_fitted_model_fits_and_scores_a_snapshot_as_train_and_score_do(
    data_dir: Path, model_dir: Path
) -> None:
    tables = scan_olist(data_dir)
    model = FittedModel.fit(tables, as_of=AS_OF, setup="logistic", seed=1)
    (snap,) = build_snapshots(tables, [AS_OF], labels=[False])
    assert_frame_equal(model.scores(snap), score(model_dir, data=data_dir, as_of=AS_OF))


def test_parquet_written_by_pandas_reads_as_the_csv_folder(
    small_csv_dir: Path, tmp_path: Path
) -> None:
    """A data lake written by ``pandas.read_csv(path).to_parquet(...)``: text timestamps,
    integer zip prefixes; converted as frames in memory are."""
    for name in PLAN_TABLES:
        stem = TABLES[name].stem
        pd.read_csv(small_csv_dir / f"{stem}.csv").to_parquet(tmp_path / f"{stem}.parquet")
    got = scan_olist(tmp_path)
    want = scan_olist(small_csv_dir)
    for name in PLAN_TABLES:
        assert_frame_equal(got[name].collect(), want[name].collect())


def test_an_all_empty_column_read_as_floats_is_converted(small_csv_dir: Path) -> None:
    frames = read_all(small_csv_dir, "pandas")
    reviews = frames["order_reviews"].copy()  # type: ignore[attr-defined]
    reviews["review_comment_title"] = float("nan")  # what pandas reads for an empty column
    got = as_tables(dict(frames, order_reviews=reviews))["order_reviews"].collect()
    assert got["review_comment_title"].null_count() == got.height
    reviews["review_comment_title"] = 1.5
    with pytest.raises(OlistDataError, match="'review_comment_title' holds numbers"):
        as_tables(dict(frames, order_reviews=reviews))


def test_bad_values_are_data_errors_in_the_library_too(data_copy: Path) -> None:
    path = data_copy / f"{TABLES['orders'].stem}.csv"
    lines = path.read_text().split("\n")
    lines[5] = lines[5].replace(",20", ",2O", 1)
    path.write_text("\n".join(lines))
    with pytest.raises(OlistDataError, match=r"could not be read.*validate"):
        build_snapshots(scan_olist(data_copy), [AS_OF])


def test_damaged_model_folder_is_a_data_error(
    cli: CliRunner, model_dir: Path, tmp_path: Path
) -> None:
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    meta = json.loads((bad / "model.json").read_text())
    del meta["calibration"]
    (bad / "model.json").write_text(json.dumps(meta))
    with pytest.raises(OlistDataError, match="not a usable model folder"):
        FittedModel.load(bad)
    r = cli.invoke(app, ["score", "--model", str(bad), "--as-of", "2018-09-01"])
    assert r.exit_code == 1


def test_check_can_score_takes_dates_and_urls_are_refused_for_folders(
    cli: CliRunner, model_dir: Path, data_dir: Path
) -> None:
    model = FittedModel.load(model_dir)
    model.check_can_score(date(2018, 9, 1))
    with pytest.raises(OlistDataError, match="leakage"):
        model.check_can_score(date(2018, 8, 31))
    for args in (["run"], ["train"]):
        r = cli.invoke(app, [*args, "--data", str(data_dir), "--out", "s3://bucket/out"])
        assert r.exit_code == 1 and "needs a local folder" in r.stderr, r.output
    r = cli.invoke(app, ["features", "--engine", "spark", "--storage-option", "a=b",
                            "--data", str(data_dir), "--out", "x.parquet"])  # fmt: skip
    assert r.exit_code == 1
    assert "--storage-option is not supported with --engine spark" in r.stderr


def test_validate_and_the_job_count_a_file_loaded_twice_alike(
    cli: CliRunner, data_copy: Path, tmp_path: Path
) -> None:
    path = data_copy / f"{TABLES['order_payments'].stem}.csv"
    rows = path.read_bytes().split(b"\n", 1)[1]
    n = rows.rstrip(b"\n").count(b"\n") + 1
    path.write_bytes(path.read_bytes() + rows)
    r = cli.invoke(app, ["validate", "--data", str(data_copy)])
    assert f"({n} extra rows repeat a key" in r.stderr
    r = cli.invoke(app, ["features", "--data", str(data_copy), "--out",
                            str(tmp_path / "f.parquet")])  # fmt: skip
    assert f"{n:,} extra order_payments rows repeat" in r.stderr
