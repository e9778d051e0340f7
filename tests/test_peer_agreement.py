"""olist_fast agrees with independent pandas and DuckDB implementations of the contract."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from benchmarks.peers import duckdb_peer, pandas_peer
from olist_fast import scan_olist
from olist_fast.features import build_snapshots

DATES = [datetime(2017, 9, 1), datetime(2018, 3, 1, 12, 30), datetime(2018, 9, 1)]


@pytest.fixture(scope="module")
def pandas_inputs(small_csv_dir: Path):
    return pandas_peer.read_inputs(small_csv_dir)


def peer_snapshot(peer: str, data: Path, pandas_inputs, as_of: datetime) -> pl.DataFrame:
    if peer == "pandas":
        return pl.from_pandas(pandas_peer.snapshot(pandas_inputs, as_of, 90))
    rel = duckdb_peer.snapshot(duckdb.connect(), data, as_of, 90)
    return pl.from_arrow(rel.to_arrow_table())  # type: ignore[return-value]


@pytest.fixture(scope="module")
def ours(small_csv_dir: Path) -> dict[tuple[bool, datetime], pl.DataFrame]:
    """Our snapshots at DATES with text keys and with integer keys (generated ids are
    32 hex digits, like the real ones)."""
    tables = scan_olist(small_csv_dir)
    return {
        (compact, a): snap
        for compact in (False, True)
        for a, snap in zip(
            DATES, build_snapshots(tables, DATES, horizon_days=90, compact=compact), strict=True
        )
    }


@pytest.mark.parametrize("as_of", DATES, ids=str)
def test_integer_keys_give_bit_identical_snapshots(ours, as_of: datetime) -> None:
    assert ours[True, as_of].equals(ours[False, as_of])


@pytest.mark.parametrize("keys", ["text", "integer"])
@pytest.mark.parametrize("peer", ["pandas", "duckdb"])
@pytest.mark.parametrize("as_of", DATES, ids=str)
def test_agrees_with_peers_to_1e9(
    small_csv_dir: Path, pandas_inputs, ours, as_of: datetime, peer: str, keys: str
) -> None:
    ours = ours[keys == "integer", as_of]
    theirs = peer_snapshot(peer, small_csv_dir, pandas_inputs, as_of)
    assert ours.columns == theirs.columns
    assert ours.height == theirs.height > 100
    assert ours["customer_unique_id"].equals(theirs["customer_unique_id"])
    for col in ours.columns[1:]:
        a, b = ours[col], theirs[col]
        assert a.is_null().equals(b.is_null()), col
        if a.dtype == pl.String:
            assert a.equals(b), col
        else:
            x, y = a.drop_nulls().cast(pl.Float64).to_numpy(), b.drop_nulls().cast(pl.Float64)
            np.testing.assert_allclose(x, y.to_numpy(), rtol=1e-9, atol=1e-12, err_msg=col)
