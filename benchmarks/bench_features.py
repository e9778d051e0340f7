"""Feature stages, ours beside the pandas and DuckDB peers (same groups, same data)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from benchmarks.conftest import record
from benchmarks.peers import duckdb_peer, pandas_peer
from olist_fast.encode import Encoding
from olist_fast.features import (
    INPUT_COLUMNS,
    build_customer_grain,
    build_order_grain,
    build_snapshots,
    compact_ids,
)
from olist_fast.io import scan_olist

AS_OF = datetime(2018, 6, 1)
DATES = [datetime(2017, 12, 5), datetime(2018, 3, 5), AS_OF]


def rounds(scale: float) -> int:
    return 5 if scale < 1 else 3 if scale < 10 else 1


def ours_snapshot(folder: Path) -> pl.DataFrame:
    return build_snapshots(scan_olist(folder), [AS_OF])[0]


def pandas_snapshot(folder: Path):
    return pandas_peer.snapshot(pandas_peer.read_inputs(folder), AS_OF, 90)


def duckdb_snapshot(folder: Path):
    return duckdb_peer.snapshot(duckdb.connect(), folder, AS_OF, 90).to_arrow_table()


CHECKED: set[float] = set()
PAIRS_CHECKED: set[tuple[str, float]] = set()


def check_pair_once(pair: str, scale: float, check) -> None:
    """Run ``check`` (which asserts that a pair of benchmarks computes the same output)
    once per pair and scale, before either of them is timed."""
    if (pair, scale) not in PAIRS_CHECKED:
        check()
        PAIRS_CHECKED.add((pair, scale))


def check_peers(folder: Path, scale: float) -> None:
    """Peers are timed only after they agree with ours (1e-9 relative)."""
    if scale in CHECKED:
        return
    ours = ours_snapshot(folder)
    for peer in (pl.from_pandas(pandas_snapshot(folder)), pl.from_arrow(duckdb_snapshot(folder))):
        assert peer.columns == ours.columns
        for col in ours.columns:
            a, b = ours[col], peer[col]
            assert a.is_null().equals(b.is_null()), col
            if a.dtype == pl.String:
                assert a.equals(b), col
            else:
                np.testing.assert_allclose(
                    a.drop_nulls().cast(pl.Float64).to_numpy(),
                    b.drop_nulls().cast(pl.Float64).to_numpy(),
                    rtol=1e-9,
                    err_msg=col,
                )
    CHECKED.add(scale)


@pytest.mark.parametrize("impl", ["pandas", "duckdb", "olist_fast"])
def bench_parse(benchmark, data, scale, impl) -> None:
    """The floor: parse the columns the features need, and nothing else."""
    folder = data["csv"]

    def ours() -> list[pl.DataFrame]:
        t = scan_olist(folder)
        return pl.collect_all([t[k].select(c) for k, c in INPUT_COLUMNS.items()])

    def duck() -> None:
        con = duckdb.connect()
        for name in ("orders", "customers", "items", "payments", "reviews", "products"):
            con.sql(f"CREATE TABLE {name} AS SELECT * FROM {duckdb_peer.source(folder, name)}")

    fn = {"olist_fast": ours, "pandas": lambda: pandas_peer.read_inputs(folder), "duckdb": duck}[
        impl
    ]
    benchmark.group = f"parse scale{scale:g}"
    benchmark.pedantic(fn, rounds=rounds(scale), iterations=1, warmup_rounds=1)
    record(benchmark, group="parse", impl=impl, scale=scale, rows=0, fn=fn)


@pytest.mark.parametrize("impl", ["pandas", "duckdb", "olist_fast"])
def bench_snapshot(benchmark, data, scale, impl) -> None:
    """One snapshot from the CSV files: parse and compute (as each peer does it)."""
    folder = data["csv"]
    check_peers(folder, scale)
    fn = {"olist_fast": lambda: ours_snapshot(folder),
          "pandas": lambda: pandas_snapshot(folder),
          "duckdb": lambda: duckdb_snapshot(folder)}[impl]  # fmt: skip
    benchmark.group = f"snapshot scale{scale:g}"
    result = benchmark.pedantic(fn, rounds=rounds(scale), iterations=1, warmup_rounds=1)
    record(benchmark, group="snapshot", impl=impl, scale=scale, rows=len(result), fn=fn)


@pytest.mark.parametrize("impl", ["olist_fast_parquet"])
def bench_snapshot_parquet(benchmark, data, scale, impl) -> None:
    """Ours from the Parquet copy: the same snapshot as from the CSV files."""

    def same_as_csv() -> None:
        assert ours_snapshot(data["parquet"]).equals(ours_snapshot(data["csv"]))

    check_pair_once("csv_vs_parquet", scale, same_as_csv)
    fn = lambda: ours_snapshot(data["parquet"])  # noqa: E731
    benchmark.group = f"snapshot scale{scale:g}"
    result = benchmark.pedantic(fn, rounds=rounds(scale), iterations=1, warmup_rounds=1)
    record(benchmark, group="snapshot", impl=impl, scale=scale, rows=len(result), fn=fn)


@pytest.mark.parametrize("impl", ["text_keys", "olist_fast"])
def bench_order_grain(benchmark, data, scale, impl) -> None:
    """The order grain from CSV with the ids as text and as UInt128 (``compact_ids``, what
    ``build_snapshots`` uses): the conversion must pay for itself."""
    keyed = compact_ids if impl == "olist_fast" else dict
    fn = lambda: build_order_grain(keyed(scan_olist(data["csv"])), as_of=AS_OF).collect()  # noqa: E731
    check_pair_once("text_vs_integer_keys", scale, lambda: same_order_grain(data["csv"]))
    benchmark.group = f"order grain scale{scale:g}"
    result = benchmark.pedantic(fn, rounds=rounds(scale), iterations=1, warmup_rounds=1)
    record(benchmark, group="order_grain", impl=impl, scale=scale, rows=len(result), fn=fn)


def same_order_grain(folder: Path) -> None:
    """The order grain with text keys, its ids read as 128-bit integers, equals the grain
    computed on integer keys (row for row, once both are sorted by order; the per-item
    lists, which only feed distinct counts, compared as sorted lists)."""
    text = build_order_grain(scan_olist(folder), as_of=AS_OF).collect()
    compact = build_order_grain(compact_ids(scan_olist(folder)), as_of=AS_OF).collect()
    as_int = pl.element().str.to_integer(base=16, dtype=pl.UInt128)
    ints = {c: compact.schema[c] for c in compact.columns if compact.schema[c] != text.schema[c]}
    # the ids the grain keeps
    assert set(ints) == {"order_id", "customer_unique_id", "seller", "sellers"}, ints
    converted = text.with_columns(
        pl.col("order_id", "customer_unique_id", "seller").str.to_integer(
            base=16, dtype=pl.UInt128
        ),
        pl.col("sellers").list.eval(as_int),
    )
    lists = pl.col("categories", "sellers").list.sort()
    a = converted.with_columns(lists).sort("order_id")
    assert a.equals(compact.with_columns(lists).sort("order_id"))


def bench_customer_grain(benchmark, data, scale) -> None:
    grain = build_order_grain(scan_olist(data["csv"]), as_of=AS_OF).collect()
    fn = lambda: build_customer_grain(grain.lazy(), as_of=AS_OF).collect()  # noqa: E731
    benchmark.group = f"customer grain scale{scale:g}"
    result = benchmark.pedantic(fn, rounds=rounds(scale), iterations=1, warmup_rounds=1)
    record(benchmark, group="customer_grain", impl="olist_fast", scale=scale, rows=len(result),
           fn=fn)  # fmt: skip


@pytest.mark.parametrize("impl", ["separate_collects", "olist_fast"])
def bench_three_snapshots(benchmark, data, scale, impl) -> None:
    """Three dates: one collect_all (shared parse and facts) against three collects."""
    folder = data["csv"]

    def together() -> list[pl.DataFrame]:
        return build_snapshots(scan_olist(folder), DATES)

    def apart() -> list[pl.DataFrame]:
        return [build_snapshots(scan_olist(folder), [d])[0] for d in DATES]

    def same_snapshots() -> None:
        a, b = together(), apart()
        assert len(a) == len(b) == len(DATES)
        for x, y, d in zip(a, b, DATES, strict=True):
            assert x.equals(y), d

    check_pair_once("three_snapshots", scale, same_snapshots)
    fn = together if impl == "olist_fast" else apart
    benchmark.group = f"three snapshots scale{scale:g}"
    result = benchmark.pedantic(fn, rounds=rounds(scale), iterations=1, warmup_rounds=1)
    record(benchmark, group="three_snapshots", impl=impl, scale=scale,
           rows=sum(len(r) for r in result), fn=fn)  # fmt: skip


def bench_to_numpy(benchmark, data, scale) -> None:
    snap = ours_snapshot(data["csv"])
    enc = Encoding.fit(snap)
    fn = lambda: enc.transform(snap)  # noqa: E731
    benchmark.group = f"to numpy scale{scale:g}"
    result = benchmark.pedantic(fn, rounds=rounds(scale), iterations=1, warmup_rounds=1)
    record(benchmark, group="to_numpy", impl="olist_fast", scale=scale, rows=len(result), fn=fn)
