"""The bench command's machinery (timings themselves live in benchmarks/, never here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from olist_fast.bench import Measurement, dataset, format_table, time_process
from olist_fast.cli import app


def test_time_process_counts_runs_and_memory() -> None:
    walls, peak = time_process([sys.executable, "-c", "x = bytearray(50_000_000)"], runs=2)
    assert len(walls) == 2 and all(w > 0 for w in walls)
    assert peak > 45  # MiB: the child's own 50 MB allocation is accounted to it


def test_time_process_reports_a_failing_command() -> None:
    with pytest.raises(RuntimeError, match="boom"):
        time_process([sys.executable, "-c", "import sys; sys.exit('boom')"], runs=1)


def test_format_table() -> None:
    rows = [
        Measurement("features", 1.0, "olist_fast", "csv", 1.0, 0.9, 1.1, 300.0, 3),
        Measurement("features", 1.0, "pandas", "csv", 3.0, 2.9, 3.1, 500.0, 3, 3.0),
    ]
    text = format_table(rows)
    assert "olist_fast" in text and "3.00x" in text and "500" in text


def test_dataset_is_generated_once(tmp_path: Path) -> None:
    said: list[str] = []
    first = dataset(0.01, tmp_path, say=said.append)
    assert (first["parquet"] / "olist_orders_dataset.parquet").is_file()
    n = len(said)
    dataset(0.01, tmp_path, say=said.append)
    assert len(said) == n  # cached: nothing generated again


def test_bench_rejects_unknown_stage(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["bench", "--stages", "nope", "--cache", str(tmp_path)])
    assert r.exit_code == 1 and "unknown stage 'nope'" in r.stderr


def test_bench_takes_scales_after_one_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    import olist_fast.bench as b

    seen = {}

    def fake(scales, **kw):
        seen["scales"] = list(scales)
        return []

    monkeypatch.setattr(b, "bench", fake)
    r = CliRunner().invoke(app, ["bench", "--scale", "1", "10", "--stages", "features"])
    assert r.exit_code == 0, r.output
    assert seen["scales"] == [1.0, 10.0]


def test_interleaved_rounds_run_every_command_each_round() -> None:
    from olist_fast.bench import time_interleaved

    said: list[str] = []
    cmds = {"a": [sys.executable, "-c", "pass"], "b": [sys.executable, "-c", "pass"]}
    timed = time_interleaved(cmds, runs=2, say=said.append)
    assert set(timed) == {"a", "b"}
    assert all(len(walls) == 2 and peak > 0 for walls, peak in timed.values())
    assert len(said) == 2
