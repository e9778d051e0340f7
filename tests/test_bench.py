"""The bench command's machinery (timings themselves live in benchmarks/, never here)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
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


def test_bench_rejects_unknown_stage(cli: CliRunner, tmp_path: Path) -> None:
    r = cli.invoke(app, ["bench", "--stages", "nope", "--cache", str(tmp_path)])
    assert r.exit_code == 1 and "unknown stage 'nope'" in r.stderr


def test_bench_takes_scales_after_one_flag(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    import olist_fast.bench as b

    seen = {}

    def fake(scales, **kw):
        seen["scales"] = list(scales)
        return []

    monkeypatch.setattr(b, "bench", fake)
    r = cli.invoke(app, ["bench", "--scale", "1", "10", "--stages", "features"])
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


def test_interleaved_rounds_run_the_commands_in_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    """A, B, A, B, ...: the warm-up round, then each timed round, every command once in
    the given order; each command's walls are its own runs, in order."""
    import olist_fast.bench as b

    calls: list[str] = []

    def fake_run_once(argv):
        calls.append(argv[0])
        return float(len(calls)), 10.0 * len(calls)  # wall and peak: the call's number

    monkeypatch.setattr(b, "run_once", fake_run_once)
    timed = b.time_interleaved({"A": ["A"], "B": ["B"]}, runs=2, say=lambda _: None)
    assert calls == ["A", "B", "A", "B", "A", "B"]  # warm-up round, then two timed rounds
    assert timed == {"A": ([3.0, 5.0], 50.0), "B": ([4.0, 6.0], 60.0)}


# -- the run stage: the notebook peer and bench_run ---------------------------------------
NOTEBOOK_SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "peers" / "notebook_peer.py"


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from olist_fast.synth import generate

    folder = tmp_path_factory.mktemp("tiny")
    generate(folder, scale=0.05, random_state=3)
    return folder


@pytest.fixture(scope="module")
def notebook_scores(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """The notebook peer run as a command, as the benchmarks run it."""
    from olist_fast.bench import RUN_AS_OF, RUN_HORIZON

    out = tmp_path_factory.mktemp("notebook")
    argv = [sys.executable, str(NOTEBOOK_SCRIPT), str(tiny_data), RUN_AS_OF, str(RUN_HORIZON),
            str(out)]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out / "user_propensity_scores.csv", proc.stdout


def test_notebook_peer_scores_every_customer_of_the_snapshot(tiny_data, notebook_scores):
    import polars as pl

    from olist_fast.bench import RUN_AS_OF, RUN_HORIZON
    from olist_fast.features import build_snapshots
    from olist_fast.io import scan_olist

    path, stdout = notebook_scores
    scores = pl.read_csv(path, schema_overrides={"customer_unique_id": pl.String})
    assert scores.columns == ["customer_unique_id", "propensity", "decile", "rank"]
    (snap,) = build_snapshots(
        scan_olist(tiny_data), [datetime.fromisoformat(RUN_AS_OF)], horizon_days=RUN_HORIZON
    )
    assert scores.height == snap.height > 0
    assert scores["customer_unique_id"].is_unique().all()
    assert set(scores["customer_unique_id"]) == set(snap["customer_unique_id"])
    p = scores["propensity"]
    assert p.null_count() == 0 and p.min() >= 0 and p.max() <= 1  # type: ignore[operator]
    assert p.is_sorted(descending=True)  # best first
    assert scores["rank"].to_list() == list(range(1, scores.height + 1))
    assert scores["decile"].is_sorted() and set(scores["decile"]) == set(range(1, 11))
    for model in ("logistic_regression", "random_forest", "gradient_boosting"):
        assert f"{model}: validation ROC AUC" in stdout


def test_run_commands_pair_ours_with_the_notebook_up_to_scale_1(tmp_path: Path) -> None:
    from olist_fast.bench import NOTEBOOK, RUN_AS_OF, RUN_HORIZON, default_peers, run_commands

    assert default_peers() == NOTEBOOK_SCRIPT.parent  # found beside the package
    said: list[str] = []
    cmds = run_commands("DATA", tmp_path, 1.0, said.append, peers=default_peers())
    assert list(cmds) == ["olist_fast", NOTEBOOK] and not said
    ours = cmds["olist_fast"]
    assert ours[1:4] == ["-m", "olist_fast", "run"]
    for flag, value in [("--data", "DATA"), ("--as-of", RUN_AS_OF),
                        ("--horizon-days", str(RUN_HORIZON)), ("--seed", "0")]:  # fmt: skip
        assert ours[ours.index(flag) + 1] == value
    assert cmds[NOTEBOOK][1:] == [str(NOTEBOOK_SCRIPT), "DATA", RUN_AS_OF, str(RUN_HORIZON),
                                  str(tmp_path / "notebook")]  # fmt: skip
    cmds = run_commands("DATA", tmp_path, 10.0, said.append, peers=default_peers())
    assert list(cmds) == ["olist_fast"] and "notebook" in said[0]
    said.clear()  # without the peer scripts (a wheel install): ours alone, and how to add them
    assert list(run_commands("DATA", tmp_path, 1.0, said.append, peers=None)) == ["olist_fast"]
    assert said == [said[0]] and "--peers" in said[0] and "benchmarks/peers" in said[0]


def test_bench_features_without_peers_times_ours_and_the_floor(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import olist_fast.bench as b

    seen: dict[str, list[str]] = {}

    def record(commands: dict[str, list[str]], runs: int, say) -> dict:
        seen.update(commands)
        return {}

    monkeypatch.setattr(b, "time_interleaved", record)
    monkeypatch.setattr(b, "count_orders", lambda data: 0)
    said: list[str] = []
    b.bench_features(1.0, {"csv": tmp_path}, 1, said.append, peers=None)
    assert list(seen) == ["olist_fast", "floor (parse needed columns)"]
    assert any("--peers" in line for line in said)
    seen.clear()
    b.bench_features(1.0, {"csv": tmp_path}, 1, said.append, peers=b.default_peers())
    assert list(seen) == ["olist_fast", "floor (parse needed columns)", "pandas", "duckdb"]


def test_stage_seconds_is_tolerant(tmp_path: Path) -> None:
    from olist_fast.bench import stage_seconds

    assert stage_seconds(tmp_path) == {}  # no manifest
    manifest = tmp_path / "run_manifest.json"
    for text in ["{}", "not json", '{"stage_seconds": 3}', '{"stage_seconds": {"a": "x"}}']:
        manifest.write_text(text)
        assert stage_seconds(tmp_path) == {}
    manifest.write_text('{"stage_seconds": {"features": 0.5, "fit": 2}}')
    assert stage_seconds(tmp_path) == {"features": 0.5, "fit": 2.0}


WRITE_MANIFEST = """
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
(out / "run_manifest.json").write_text(json.dumps({"stage_seconds": {"features": 0.25}}))
"""


@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_bench_run_rows_and_ratio(monkeypatch: pytest.MonkeyPatch, scale: float) -> None:
    import olist_fast.bench as b

    real = b.run_commands

    def cheap(folder: str, out: Path, scale: float, say, **kw) -> dict[str, list[str]]:
        cmds = real(folder, out, scale, say, peers=b.default_peers())  # which run here
        fake = {"olist_fast": [sys.executable, "-c", WRITE_MANIFEST, str(out / "ours")],
                b.NOTEBOOK: [sys.executable, "-c", "import time; time.sleep(0.05)"]}  # fmt: skip
        return {k: fake[k] for k in cmds}

    monkeypatch.setattr(b, "run_commands", cheap)
    said: list[str] = []
    rows = b.bench_run(scale, {"csv": Path("unused")}, runs=2, say=said.append)
    by_impl = {(m.stage, m.impl): m for m in rows}
    ours = by_impl["run", "olist_fast"]
    assert ours.runs == 2 and ours.speedup_vs_ours is None and ours.fmt == "csv"
    assert by_impl["run:features", "olist_fast"].wall_s == 0.25
    if scale <= b.NOTEBOOK_MAX_SCALE:
        peer = by_impl["run", b.NOTEBOOK]
        assert peer.runs == 2 and peer.speedup_vs_ours is not None and peer.speedup_vs_ours > 0
        assert peer.peak_mib > 0
        assert len(rows) == 3
    else:
        assert len(rows) == 2 and any("notebook" in s for s in said)
    assert "run:features" in b.format_table(rows)


def test_bench_runs_the_run_stage_up_to_scale_300(monkeypatch: pytest.MonkeyPatch, tmp_path):
    import olist_fast.bench as b

    calls: list[tuple[float, int]] = []
    monkeypatch.setattr(b, "dataset", lambda scale, cache, say: {})
    monkeypatch.setattr(b, "count_orders", lambda data: 0)
    monkeypatch.setattr(
        b, "bench_run", lambda scale, data, runs, say, **kw: calls.append((scale, runs)) or []
    )
    said: list[str] = []
    b.bench([1, 10, 100, 400], stages=["run"], runs=4, cache=tmp_path, say=said.append)
    assert calls == [(1, 4), (10, 4), (100, 1)]  # one round at 100 and above
    assert any("400" in s for s in said)


def test_bench_times_the_layout_beside_the_folder_above_scale_10(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import olist_fast.bench as b

    seen: dict[str, list[str]] = {}
    monkeypatch.setattr(b, "time_interleaved", lambda cmds, runs, say: seen.update(cmds) or {})
    monkeypatch.setattr(b, "count_orders", lambda data: 0)
    data = {"parquet": tmp_path / "pq", "layout": tmp_path / "lay"}
    b.bench_features(100.0, data, 1, lambda _: None, peers=None)
    ours, layout = seen["olist_fast"], seen[b.OURS_LAYOUT]
    assert ours[ours.index("--data") + 1] == str(tmp_path / "pq")
    assert layout[layout.index("--data") + 1] == str(tmp_path / "lay")
    assert layout[:4] == ours[:4] and layout[6:9] == ours[6:9] and layout[-1] != ours[-1]
    seen.clear()  # above scale 100: the layout alone (the others hold the data in memory)
    said: list[str] = []
    b.bench_features(300.0, data, 1, said.append, peers=b.default_peers())
    assert list(seen) == [b.OURS_LAYOUT] and any("only the bucketed layout" in x for x in said)
    assert b._rows("features", 300.0, "parquet", {b.OURS_LAYOUT: ([2.0], 10.0)})[0].wall_s == 2
    cmds = {}
    monkeypatch.setattr(b, "run_commands", lambda folder, out, scale, say, **kw: cmds.update(
        folder=folder) or {})  # fmt: skip
    monkeypatch.setattr(b, "stage_seconds", lambda out: {})
    rows = b.bench_run(100.0, {"csv": tmp_path, **data}, 1, lambda _: None)
    assert cmds["folder"] == str(tmp_path / "lay") and rows == []


def test_scaling_slopes_and_log_log_plot_from_saved_measurements(
    cli: CliRunner, tmp_path: Path
) -> None:
    from dataclasses import asdict

    from olist_fast.bench import scaling

    ms = []
    for orders, ours, peer in ((100_000, 0.5, 1.0), (1_000_000, 3.2, 9.1), (10_000_000, 30.5, 91)):
        for impl, t in (("olist_fast", ours), ("duckdb", peer)):
            ms.append(Measurement("features", orders / 100_000, impl, "csv", t, t, t,
                                  100 + orders / 10_000, 3, orders=orders))  # fmt: skip
    rows = {r["impl"]: r for r in scaling(ms)}
    assert abs(rows["olist_fast"]["s_per_1M_orders"] - 3.0) < 0.05
    assert abs(rows["olist_fast"]["mib_per_1M_orders"] - 100) < 1e-6
    assert 0.95 < rows["duckdb"]["time_exponent"] < 1.0
    saved = tmp_path / "m.json"
    saved.write_text(json.dumps({"measurements": [asdict(m) for m in ms]}))
    plot = tmp_path / "scaling.png"
    r = cli.invoke(app, ["bench", "--from-json", str(saved), "--plot", str(plot)])
    assert r.exit_code == 0, r.output
    assert "s / 1M orders" in r.stdout and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = cli.invoke(app, ["bench", "--from-json", str(saved), "--stages", "run"])
    assert r.exit_code == 0  # the stages of saved measurements are not re-measured
    empty = tmp_path / "e.json"
    empty.write_text(json.dumps({"measurements": []}))
    r = cli.invoke(app, ["bench", "--from-json", str(empty), "--plot", str(plot)])
    assert r.exit_code == 1 and "no features measurements" in r.stderr


def test_peak_memory_is_the_commands_own_not_the_parents() -> None:
    """A command started from a process holding 400 MiB reports its own peak: Linux
    carries the high-water mark across fork and exec, so the launcher must start small
    (this reported about 460 MiB for ``python -c pass`` before the launcher)."""
    import sys

    from olist_fast.bench import run_once

    held = bytearray(400 * 2**20)
    held[:: 2**12] = b"\x01" * len(held[:: 2**12])  # touched: resident
    _, small = run_once([sys.executable, "-c", "pass"])
    _, large = run_once(
        [sys.executable, "-c", "b = bytearray(200 * 2**20); b[::4096] = b'1' * len(b[::4096])"]
    )
    assert small < 100 < 200 < large < 300, (small, large)
    assert len(held) == 400 * 2**20
