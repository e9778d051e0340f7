"""Model stages: every classifier with class weights and with SMOTE, the spend model,
scoring, writing the outputs, and the whole run."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from benchmarks.conftest import record
from olist_fast.config import RunConfig
from olist_fast.encode import Encoding
from olist_fast.features import build_snapshots
from olist_fast.io import scan_olist
from olist_fast.models import candidates, make_spend_regressor
from olist_fast.pipeline import fit_candidate, fit_final, labels_of, run, score_customers, stack

DATES = [datetime(2017, 12, 5), datetime(2018, 3, 5), datetime(2018, 6, 3), datetime(2018, 9, 1)]
CACHE: dict[float, dict] = {}


def prepared(data: dict[str, Path], scale: float) -> dict:
    if scale not in CACHE:
        s0, s1, s2, s3 = build_snapshots(
            scan_olist(data["parquet"]), DATES, labels=[True, True, True, False]
        )
        train = stack(s0, s1)
        enc = Encoding.fit(train)
        CACHE[scale] = {"train": train, "X": enc.transform(train), "y": labels_of(train),
                        "final_train": stack(s1, s2), "score": s3}  # fmt: skip
    return CACHE[scale]


@pytest.mark.parametrize("setup", [c.name for c in candidates()])
def bench_fit(benchmark, data, scale, setup) -> None:
    p = prepared(data, scale)
    c = next(c for c in candidates() if c.name == setup)
    fn = lambda: fit_candidate(c, p["X"], p["y"], 0)  # noqa: E731
    benchmark.group = f"fit scale{scale:g}"
    benchmark.pedantic(fn, rounds=3 if scale < 1 else 1, iterations=1)
    record(benchmark, group="fit", impl=setup, scale=scale, rows=len(p["y"]), fn=fn)


def bench_spend_model(benchmark, data, scale) -> None:
    p = prepared(data, scale)
    buyers = p["y"] == 1
    spend = np.log1p(p["train"]["future_spend"].to_numpy()[buyers])
    fn = lambda: make_spend_regressor(random_state=0).fit(p["X"][buyers], spend)  # noqa: E731
    benchmark.group = f"spend model scale{scale:g}"
    benchmark.pedantic(fn, rounds=3, iterations=1)
    record(benchmark, group="spend", impl="olist_fast", scale=scale, rows=int(buyers.sum()),
           fn=fn)  # fmt: skip


@pytest.fixture(scope="session")
def final_model(data, scale):
    p = prepared(data, scale)
    setup = next(c for c in candidates() if c.name == "logistic+smote")
    return fit_final(setup, p["final_train"], seed=0, horizon_days=90)


def bench_score(benchmark, data, scale, final_model) -> None:
    snap = prepared(data, scale)["score"]
    fn = lambda: score_customers(final_model, snap)  # noqa: E731
    benchmark.group = f"score scale{scale:g}"
    result = benchmark.pedantic(fn, rounds=3, iterations=1)
    record(benchmark, group="score", impl="olist_fast", scale=scale, rows=len(result), fn=fn)


def bench_write_scores(benchmark, data, scale, final_model, tmp_path) -> None:
    table: pl.DataFrame = score_customers(final_model, prepared(data, scale)["score"])
    fn = lambda: table.write_csv(tmp_path / "scores.csv")  # noqa: E731
    benchmark.group = f"write scale{scale:g}"
    benchmark.pedantic(fn, rounds=3, iterations=1)
    record(benchmark, group="write", impl="olist_fast", scale=scale, rows=len(table), fn=fn)


def bench_run(benchmark, data, scale, tmp_path) -> None:
    """The whole job, from Parquet, once (it takes tens of seconds at scale 1)."""
    if scale > 1:
        pytest.skip("the whole run is benchmarked up to scale 1")
    config = RunConfig(data=data["parquet"], out=tmp_path / "out", n_boot=200)
    fn = lambda: run(config)  # noqa: E731
    benchmark.group = f"run scale{scale:g}"
    result = benchmark.pedantic(fn, rounds=1, iterations=1)
    benchmark.extra_info["stage_seconds"] = result.stages
    record(benchmark, group="run", impl="olist_fast", scale=scale, rows=result.scores.height,
           fn=lambda: None)  # fmt: skip
