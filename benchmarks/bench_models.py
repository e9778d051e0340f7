"""Model stages: every classifier with class weights and with SMOTE, the spend model,
scoring, writing the outputs, and the whole run against the notebook's approach."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from benchmarks.conftest import record
from olist_fast.bench import (
    NOTEBOOK,
    NOTEBOOK_MAX_SCALE,
    default_peers,
    run_commands,
    run_once,
    stage_seconds,
)
from olist_fast.fitting import calibrate, fit_calibrated, fit_spend, score_customers
from olist_fast.io import scan_olist
from olist_fast.models import compared_setups, fit_setup, setup_named
from olist_fast.protocol import Protocol, build_protocol_snapshots, training_set
from olist_fast.selection import select_setup

PROTOCOL = Protocol(as_of=datetime(2018, 7, 1), horizon_days=90)
CACHE: dict[float, dict] = {}


def prepared(data: dict[str, Path], scale: float) -> dict:
    """The protocol's snapshots and the final training set, built once per scale."""
    if scale not in CACHE:
        snaps = build_protocol_snapshots(scan_olist(data["parquet"]), PROTOCOL)
        CACHE[scale] = {"snaps": snaps, "train": training_set(snaps, 0, seed=0)}
    return CACHE[scale]


def bench_snapshots(benchmark, data, scale) -> None:
    """Every snapshot of the protocol (score, backtest, three folds of two) in one plan."""
    tables = scan_olist(data["parquet"])
    fn = lambda: build_protocol_snapshots(tables, PROTOCOL)  # noqa: E731
    benchmark.group = f"protocol snapshots scale{scale:g}"
    result = benchmark.pedantic(fn, rounds=3 if scale < 10 else 1, iterations=1)
    record(benchmark, group="snapshots", impl="olist_fast", scale=scale,
           rows=sum(f.height for f in result.frames), fn=fn)  # fmt: skip


def bench_select(benchmark, data, scale) -> None:
    """Every setup on every fold: the selection stage of run."""
    snaps = prepared(data, scale)["snaps"]
    fn = lambda: select_setup(compared_setups(), snaps, seed=0, say=lambda _: None)  # noqa: E731
    benchmark.group = f"select scale{scale:g}"
    benchmark.pedantic(fn, rounds=1, iterations=1)
    record(benchmark, group="select", impl="olist_fast", scale=scale,
           rows=len(prepared(data, scale)["train"].y), fn=fn)  # fmt: skip


@pytest.mark.parametrize("setup", [c.name for c in compared_setups()])
def bench_fit(benchmark, data, scale, setup) -> None:
    ts = prepared(data, scale)["train"]
    c = setup_named(setup)
    fn = lambda: fit_setup(c, ts.X, ts.y, 0)  # noqa: E731
    benchmark.group = f"fit scale{scale:g}"
    benchmark.pedantic(fn, rounds=3 if scale < 1 else 1, iterations=1)
    record(benchmark, group="fit", impl=setup, scale=scale, rows=len(ts.y), fn=fn)


def bench_calibrate(benchmark, data, scale) -> None:
    ts = prepared(data, scale)["train"]
    fn = lambda: calibrate(setup_named("logistic"), ts, seed=0)  # noqa: E731
    benchmark.group = f"calibrate scale{scale:g}"
    benchmark.pedantic(fn, rounds=3, iterations=1)
    record(benchmark, group="calibrate", impl="olist_fast", scale=scale, rows=len(ts.y), fn=fn)


def bench_spend_model(benchmark, data, scale) -> None:
    ts = prepared(data, scale)["train"]
    fn = lambda: fit_spend(ts, seed=0)  # noqa: E731
    benchmark.group = f"spend model scale{scale:g}"
    benchmark.pedantic(fn, rounds=3, iterations=1)
    record(benchmark, group="spend", impl="olist_fast", scale=scale, rows=int(ts.y.sum()),
           fn=fn)  # fmt: skip


@pytest.fixture(scope="session")
def final_model(data, scale):
    return fit_calibrated(setup_named("logistic"), prepared(data, scale)["train"], seed=0,
                     horizon_days=PROTOCOL.horizon_days)  # fmt: skip


def bench_score(benchmark, data, scale, final_model) -> None:
    snap = prepared(data, scale)["snaps"][0]
    fn = lambda: score_customers(final_model, snap)  # noqa: E731
    benchmark.group = f"score scale{scale:g}"
    result = benchmark.pedantic(fn, rounds=3, iterations=1)
    record(benchmark, group="score", impl="olist_fast", scale=scale, rows=len(result), fn=fn)


def bench_write_scores(benchmark, data, scale, final_model, tmp_path) -> None:
    table: pl.DataFrame = score_customers(final_model, prepared(data, scale)["snaps"][0])
    fn = lambda: table.write_csv(tmp_path / "scores.csv")  # noqa: E731
    benchmark.group = f"write scale{scale:g}"
    benchmark.pedantic(fn, rounds=3, iterations=1)
    record(benchmark, group="write", impl="olist_fast", scale=scale, rows=len(table), fn=fn)


@pytest.mark.parametrize("impl", ["notebook", "olist_fast"])  # the peer first, for the ratio
def bench_run(benchmark, data, scale, impl, tmp_path) -> None:
    """The whole job as its own process on the CSV folder: ``olist-fast run`` and the
    notebook's approach (benchmarks/peers/notebook_peer.py), with the same command lines as
    ``olist-fast bench --stages run``. Up to scale 1: the notebook takes about 15 s there
    and would take minutes above. Not interleaved (pytest runs one benchmark after the other);
    ``olist-fast bench`` gives the interleaved ratio."""
    if scale > NOTEBOOK_MAX_SCALE:
        pytest.skip(f"the whole run is benchmarked up to scale {NOTEBOOK_MAX_SCALE:g}")
    commands = run_commands(
        str(data["csv"]), tmp_path, scale, say=lambda _: None, peers=default_peers()
    )
    argv = commands.get(NOTEBOOK if impl == "notebook" else impl)
    if argv is None:
        pytest.skip(f"{impl}: benchmarks/peers/notebook_peer.py not found")
    peaks: list[float] = []

    def fn() -> None:
        peaks.append(run_once(argv)[1])

    benchmark.group = f"run scale{scale:g}"
    benchmark.pedantic(fn, rounds=3 if scale < 1 else 1, iterations=1)
    out = tmp_path / ("ours" if impl == "olist_fast" else "notebook")
    with (out / "user_propensity_scores.csv").open() as fh:
        rows = sum(1 for _ in fh) - 1
    if impl == "olist_fast":
        benchmark.extra_info["stage_seconds"] = stage_seconds(out)
    record(benchmark, group="run", impl=impl, scale=scale, rows=rows, child_peak_mb=max(peaks))
