"""The run pipeline end to end on small generated data: outputs, determinism, no leakage."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from olist_fast.cli import app
from olist_fast.config import RunConfig
from olist_fast.errors import OlistUsageError
from olist_fast.io import OlistDataError, scan_olist
from olist_fast.pipeline import SCORE_COLUMNS, run, score, train
from olist_fast.schema import TABLES
from olist_fast.synth import generate, write_olist
from tests.helpers import truncate

AS_OF = datetime(2018, 9, 1)


@pytest.fixture(scope="module")
def cli_run(
    cli: CliRunner, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("run-out")
    r = cli.invoke(app, ["run", "--data", str(data_dir), "--out", str(out), "--seed", "1"])
    assert r.exit_code == 0, r.output
    return out, r.stdout


def test_run_writes_every_output(cli_run: tuple[Path, str]) -> None:
    out, stdout = cli_run
    for name in ("user_propensity_scores.csv", "metrics.json", "run_manifest.json",
                 "model_plots.png", "model/model.json", "model/encoding.json",
                 "model/spend.skops"):  # fmt: skip
        assert (out / name).is_file(), name
    assert (out / "model_plots.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Backtest:" in stdout and "Chosen setup:" in stdout
    assert "buyers expected/observed in the top deciles:" in stdout and "value: expected" in stdout
    assert not list(out.glob(".*"))  # no temporary files left behind
    bt = json.loads((out / "metrics.json").read_text())["backtest"]
    dec = bt["deciles"]["chosen"]
    assert sum(dec["positives"]) == bt["chosen"]["positives"]
    assert sum(dec["expected_positives"]) == pytest.approx(bt["chosen"]["expected_positives"])
    assert len(bt["value"]["deciles"]) == 10


def test_scores_file(cli_run: tuple[Path, str], data_dir: Path) -> None:
    out, _ = cli_run
    df = pl.read_csv(out / "user_propensity_scores.csv")
    assert tuple(df.columns) == SCORE_COLUMNS
    assert df["rank"].to_list() == list(range(1, df.height + 1))
    assert df["propensity"].is_sorted(descending=True)
    assert df["propensity"].min() >= 0 and df["propensity"].max() <= 1
    assert df["decile"].min() == 1 and df["decile"].max() == 10 and df["decile"].is_sorted()
    assert (df["expected_spend"] >= 0).all()
    diff = (df["expected_value"] - df["propensity"] * df["expected_spend"]).abs().max()
    assert diff < 1e-9
    assert df["customer_unique_id"].n_unique() == df.height
    # every customer with a history order before as_of is scored
    tables = scan_olist(data_dir)
    orders = tables["orders"].filter(
        pl.col("order_purchase_timestamp") < AS_OF,
        ~pl.col("order_status").is_in(["canceled", "unavailable"]),
    )
    people = orders.join(tables["customers"], on="customer_id").select("customer_unique_id")
    assert df.height == people.unique().collect().height


def test_metrics_and_manifest(cli_run: tuple[Path, str], data_dir: Path) -> None:
    out, stdout = cli_run
    m = json.loads((out / "metrics.json").read_text())
    assert m["as_of"] == AS_OF.isoformat()
    snaps = m["protocol"]["snapshots"]
    assert snaps["0"] == "2018-09-01T00:00:00" and snaps["1"] == "2018-06-03T00:00:00"
    assert snaps["6"] == "2017-03-10T00:00:00"  # 3 folds x 2 training snapshots deep
    sel = m["selection"]
    assert sel["simplicity_order"][0] == "logistic"
    assert sel["chosen"] == m["chosen_setup"] in sel["simplicity_order"]
    for f in sel["folds"]:
        assert set(f["roc_auc"]) == set(sel["simplicity_order"])
        assert f["test_date"] < snaps["1"]  # the backtest window is in no fold
        assert max(f["train_dates"]) < f["test_date"]
    assert "Selection: ROC AUC per fold" in stdout
    bt = m["backtest"]
    assert bt["test_date"] == snaps["1"] and bt["train_dates"] == [snaps["2"], snaps["3"]]
    assert bt["chosen"]["roc_auc_low"] <= bt["chosen"]["roc_auc"] <= bt["chosen"]["roc_auc_high"]
    assert bt["baselines"]["naive"]["positives"] == bt["chosen"]["positives"] > 0
    (diff,) = bt["differences"]  # chosen minus naive; the notebook only with --compare
    assert diff["roc_auc_diff_low"] <= diff["roc_auc_diff"] <= diff["roc_auc_diff_high"]
    assert bt["comparison"] == [] and bt["truth"] is None
    assert set(bt["spend"]) == {"hurdle_model", "naive_avg_order_value"}
    man = json.loads((out / "run_manifest.json").read_text())
    orders = data_dir / f"{TABLES['orders'].stem}.csv"
    digest = hashlib.sha256(orders.read_bytes()).hexdigest()
    assert man["inputs"][TABLES["orders"].stem]["sha256"] == digest
    assert man["seed"] == 1 and "xgboost" in man["versions"]
    assert set(man["stage_seconds"]) >= {"features", "select", "backtest", "final_fit"}


def test_same_seed_same_scores_and_saved_model_scores_the_same(
    cli_run: tuple[Path, str], data_dir: Path, tmp_path: Path
) -> None:
    out, _ = cli_run
    again = run(RunConfig(data=data_dir, out=tmp_path / "again", seed=1, n_boot=20))
    first = (out / "user_propensity_scores.csv").read_bytes()
    assert again.files["scores"].read_bytes() == first
    table = score(model=out / "model", data=data_dir, as_of=AS_OF, out=tmp_path / "scored")
    assert (tmp_path / "scored" / "user_propensity_scores.csv").read_bytes() == first
    assert table.write_csv().encode() == first  # the returned frame is what was written
    # train follows the same protocol: the same choice and the same model
    chosen = json.loads((out / "metrics.json").read_text())["chosen_setup"]
    model = train(data=data_dir, model_dir=tmp_path / "trained", seed=1)
    assert model.setup == chosen
    table = score(model=tmp_path / "trained", data=data_dir, as_of=AS_OF)
    assert table.write_csv().encode() == first
    assert score(model=model, data=data_dir, as_of=AS_OF).write_csv().encode() == first
    # ... and so does a setup given by name: the same calibration, drift included
    train(data=data_dir, model_dir=tmp_path / "named", seed=1, setup=chosen)
    table = score(model=tmp_path / "named", data=data_dir, as_of=AS_OF)
    assert table.write_csv().encode() == first


def test_data_at_or_after_as_of_changes_no_score(data_dir: Path, tmp_path: Path) -> None:
    """Cut at an ``as_of`` with three months of orders after it: the scores are the same
    bytes with and without them."""
    as_of = datetime(2018, 6, 1)
    tables = {k: v.collect() for k, v in scan_olist(data_dir).items()}
    cut = truncate(tables, as_of)
    # what the cut removed: every order bought at or after as_of (over a thousand, not an
    # empty tail), with its items, and every review answered then
    later = tables["orders"].filter(pl.col("order_purchase_timestamp") >= as_of)["order_id"]
    assert later.len() > 1_000, later.len()
    assert cut["orders"].height == tables["orders"].height - later.len()
    assert cut["orders"]["order_purchase_timestamp"].max() < as_of  # type: ignore[operator]
    assert not cut["order_items"]["order_id"].is_in(later.implode()).any()
    answered = [t["order_reviews"]["review_answer_timestamp"].max() for t in (cut, tables)]
    assert answered[0] < as_of <= answered[1]  # type: ignore[operator]
    write_olist(cut, tmp_path / "cut")
    files = [
        run(RunConfig(data=folder, as_of=as_of, out=tmp_path / name, seed=1, n_boot=20))
        .files["scores"]
        .read_bytes()
        for folder, name in ((data_dir, "whole"), (tmp_path / "cut", "cut"))
    ]
    assert files[0] == files[1]


def test_too_few_buyers_is_a_clear_error(cli: CliRunner, data_dir: Path, tmp_path: Path) -> None:
    r = cli.invoke(
        app, ["run", "--data", str(data_dir), "--as-of", "2017-06-01", "--out", str(tmp_path)]
    )
    assert r.exit_code == 1
    assert "bought again" in r.stderr and "choose a later --as-of" in r.stderr
    assert "2017-03-03" in r.stderr  # names the snapshot's date
    (message,) = [ln for ln in r.stderr.splitlines() if not ln.startswith("[")]  # one line
    assert message.startswith("error:")
    assert not list(tmp_path.iterdir())


def test_fewer_folds_than_asked_are_dropped_and_said(
    data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Early in the data the oldest folds have no buyers: they are dropped, with a note
    (logged, as progress is); with fewer than two folds left the simplest setup is used."""
    with caplog.at_level(logging.INFO, logger="olist_fast"):
        result = run(RunConfig(data=data_dir, as_of=datetime(2018, 3, 1), out=tmp_path,
                               n_boot=20, folds=3))  # fmt: skip
    lines = [r.getMessage() for r in caplog.records]
    sel = result.metrics["selection"]
    assert len(sel["folds"]) < 3
    assert any("dropped" in line for line in lines)
    assert sel["notes"] and all(n in lines for n in sel["notes"])
    one = run(RunConfig(data=data_dir, out=tmp_path / "one", n_boot=20, folds=1))
    assert len(one.metrics["selection"]["folds"]) == 1
    assert one.chosen == "logistic" and "only 1 usable fold" in one.metrics["selection"]["reason"]


def test_as_of_after_the_data_is_a_clear_error(
    cli: CliRunner, data_dir: Path, tmp_path: Path
) -> None:
    r = cli.invoke(
        app, ["run", "--data", str(data_dir), "--as-of", "2019-03-01", "--out", str(tmp_path)]
    )
    assert r.exit_code == 1
    assert "after the last purchase" in r.stderr and "2019-03-01" in r.stderr


def test_named_setups_are_compared_simplest_first(data_dir: Path, tmp_path: Path) -> None:
    result = run(RunConfig(data=data_dir, out=tmp_path, n_boot=20,
                           models=("random_forest", "xgboost", "logistic")))  # fmt: skip
    assert result.metrics["selection"]["simplicity_order"] == [
        "logistic", "xgboost", "random_forest"]  # fmt: skip


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="unknown model setup 'svm'"):
        RunConfig(models=("svm",))
    with pytest.raises(ValueError, match="horizon_days"):
        RunConfig(horizon_days=0)
    with pytest.raises(ValueError, match="folds"):
        RunConfig(folds=-1)


def test_score_needs_a_model_folder(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(OlistDataError, match=r"model\.json: not found"):
        score(model=tmp_path, data=data_dir, as_of=AS_OF, out=tmp_path)


def test_encoding_survives_a_json_round_trip(tmp_path: Path, small_tables) -> None:
    import numpy as np

    from olist_fast.encode import Encoding
    from olist_fast.features import build_snapshot

    snap = build_snapshot({k: v.lazy() for k, v in small_tables.items()}, as_of=AS_OF).collect()
    enc = Encoding.fit(snap, min_count=1)
    shuffled = Encoding(
        categories=dict(reversed(list(enc.categories.items()))), dropped=enc.dropped
    )
    shuffled.save(tmp_path / "e.json")
    back = Encoding.load(tmp_path / "e.json")
    assert back.names == enc.names
    assert np.array_equal(back.transform(snap), enc.transform(snap), equal_nan=True)


def test_a_random_forest_run_is_reproducible(data_dir: Path, tmp_path: Path) -> None:
    """Forests predict on threads; the scores must not depend on their order."""
    outs = []
    for k in range(2):
        cfg = RunConfig(data=data_dir, out=tmp_path / str(k), seed=2, n_boot=20,
                        models=("random_forest",))  # fmt: skip
        outs.append(run(cfg).files["scores"].read_bytes())
    assert outs[0] == outs[1]


@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_run_on_shops_that_repeat_more_than_olist(rate: float, tmp_path: Path) -> None:
    """At 10 % and 30 % non-buyers are not plentiful: nothing is sampled; weights and
    SMOTE (up to 1:4, never shrinking a class) only while the classes are further apart
    than that; the run completes (it used to crash in SMOTE at 18 %)."""
    data = tmp_path / "data"
    generate(data, scale=0.03, random_state=5, repeat_rate=rate)
    result = run(RunConfig(data=data, out=tmp_path / "out", n_boot=20))
    m = result.metrics
    final = m["training"]["final"]
    assert final["negative_rate"] == 1.0
    imbalanced = final["ratio_after_sampling"] < 0.25
    assert final["class_weights"] is imbalanced
    assert ("logistic+smote" in m["selection"]["simplicity_order"]) is imbalanced
    assert imbalanced is (rate == 0.1)
    assert len(m["selection"]["folds"]) >= 2
    ch = m["backtest"]["chosen"]
    assert ch["positives"] > 100
    if rate == 0.3:  # enough buyers in the older windows to measure the rate's trend
        assert m["backtest"]["calibration_drift"] is not None
        assert m["final_calibration_drift"] is not None
    assert abs(ch["expected_positives"] / ch["positives"] - 1) < 0.10  # the bar
    assert result.scores.height > 0 and result.scores["propensity"].is_finite().all()
    # the scored window expects the combined level: the mean in logs of the trend's and
    # the calibration window's rate's forecasts (within the clamp)
    d = m["final_calibration_drift"]
    eb = d["expected_buyers"]
    assert not d["clamped"]
    assert eb["combined"] == pytest.approx(math.sqrt(eb["trend"] * eb["rate"]), rel=1e-9)
    assert eb["combined"] == pytest.approx(eb["model"] * d["expected_buyers_factor"], rel=1e-9)
    assert result.scores["propensity"].sum() == pytest.approx(eb["combined"], rel=1e-3)


def test_compare_adds_the_notebook_the_other_setups_and_the_ceilings(
    data_dir: Path, tmp_path: Path
) -> None:
    result = run(RunConfig(data=data_dir, out=tmp_path, n_boot=20, compare=True))
    bt = result.metrics["backtest"]
    names = {r["name"] for r in bt["comparison"]}
    assert {"notebook:logistic+smote", "notebook:gradient_boosting+smote"} <= names
    assert set(result.metrics["selection"]["simplicity_order"]) - {result.chosen} <= names
    assert any("not stacked" in n for n in names)
    assert bt["baselines"]["notebook_best"]["name"].startswith("notebook:")
    assert [d["b"] for d in bt["differences"]][1].startswith("notebook:")
    truth = bt["truth"]  # the data folder was generated: its truth is known
    assert 0.5 < truth["feature_ceiling_auc"] < truth["oracle_auc"] <= 1
    assert truth["buyers"] == bt["chosen"]["positives"]
    e = truth["expected_auc"]  # the chosen model's, beside the ceiling's, without noise
    assert 0.5 < e["chosen"] < e["oracle"] and e["feature_ceiling"] < e["oracle"]
    # the buy-till-you-die peer: ranked beside the setups, its buyers and value summed
    assert "peer:BG/NBD + Gamma-Gamma" in names
    peer = bt["value"]["peers"]["peer:BG/NBD + Gamma-Gamma"]
    assert peer["realized_total"] == pytest.approx(bt["value"]["realized_total"])
    assert 0 < peer["expected_buyers"] < bt["chosen"]["rows"] and peer["expected_total"] > 0
    assert {"r", "alpha", "a", "b", "p", "q", "gamma"} <= set(peer["parameters"])


@pytest.mark.parametrize("horizon", [30, 180])
def test_short_and_long_horizons(data_dir: Path, tmp_path: Path, horizon: int) -> None:
    result = run(RunConfig(data=data_dir, horizon_days=horizon, out=tmp_path, n_boot=20))
    p = result.metrics["protocol"]
    assert p["horizon_days"] == horizon
    assert p["snapshots"]["1"] == (AS_OF - timedelta(days=horizon)).isoformat()
    assert result.metrics["backtest"]["chosen"]["positives"] >= 10
    if horizon == 180:  # 6 horizons back is before the data: fewer folds, said
        assert len(result.metrics["selection"]["folds"]) < 3
        assert result.metrics["selection"]["notes"]


def test_the_encoding_leaves_out_exactly_the_constant_columns(small_tables) -> None:
    """A column is left out when every row has one value, or none (null or NaN): a column
    with one value and some missing ones is kept (its missing rows carry information)."""
    from olist_fast.encode import Encoding
    from olist_fast.features import build_snapshot

    snap = build_snapshot({k: v.lazy() for k, v in small_tables.items()}, as_of=AS_OF).collect()
    n = snap.height
    edited = snap.with_columns(
        pl.lit(float("nan")).alias("freight_ratio"),  # NaN everywhere: missing
        pl.lit(4.0).alias("avg_installments"),  # one value
        pl.Series("avg_item_price", [None] + [7.5] * (n - 1), dtype=pl.Float64),  # one + null
        pl.Series("avg_delay_days", [1.0, 2.0] + [1.0] * (n - 2)),  # two values
    )
    dropped = set(Encoding.fit(edited).dropped)
    assert {"freight_ratio", "avg_installments"} <= dropped
    assert not {"avg_item_price", "avg_item_price_missing", "avg_delay_days"} & dropped
    assert "freight_ratio_missing" in dropped  # missing everywhere: one value, 1
    # summed over pieces of the rows (a layout's buckets), the encoding is the same,
    # also when each piece alone would call a column constant
    from olist_fast.encode import EncodingStats

    for frame in (snap, edited, edited.sort("avg_delay_days")):
        for pieces in (1, 2, 7):
            stats = EncodingStats.empty()
            for k in range(pieces):
                stats = stats + EncodingStats.of(frame[k * n // pieces : (k + 1) * n // pieces])
            for min_count in (1, 20):
                assert Encoding.from_stats(stats, min_count=min_count) == Encoding.fit(
                    frame, min_count=min_count
                )


def test_run_takes_its_snapshots_and_scores_from_the_engine(data_dir: Path, tmp_path: Path) -> None:
    """``run`` holds the one list of stages; an engine supplies reading, the snapshots and
    the scores (Spark's is checked against the local run in test_spark.py)."""
    from olist_fast.pipeline import Engine

    calls: list[str] = []

    class Recording(Engine):
        def read(self, config):
            calls.append("read")
            return super().read(config)

        def snapshots(self, source, protocol, config):
            calls.append("snapshots")
            return super().snapshots(source, protocol, config)

        def score(self, final, snaps):
            calls.append("score")
            table = super().score(final, snaps)
            return table.with_columns(pl.col("propensity") * 0)  # visibly the engine's

    config = RunConfig(data=data_dir, out=tmp_path, n_boot=20, models=("logistic",))
    result = run(config, engine=Recording())
    assert calls == ["read", "snapshots", "score"]
    assert result.scores["propensity"].sum() == 0
    written = pl.read_csv(result.files["scores"])
    assert written["propensity"].sum() == 0
    with pytest.raises(OlistUsageError, match="pass tables and storage_options to the engine"):
        run(config, engine=Engine(), storage_options={"anon": "true"})
