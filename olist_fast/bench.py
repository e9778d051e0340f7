"""``olist-fast bench``: the benchmark measurements for users without pytest.

Whole-command comparisons run each implementation as its own process (start-up, read,
compute, write) several times and report the median wall time and the peak resident
memory the kernel accounted to that process. The floor is a process that only parses
the columns the features need. Data is generated once per scale and cached; scale 100
is generated in chunks straight to Parquet (about 10M orders).

The run stage times ``olist-fast run`` (as of RUN_AS_OF, horizon RUN_HORIZON days) against
the starting notebook's approach (benchmarks/peers/notebook_peer.py: pandas features,
three scikit-learn models with SMOTE) on the same CSV folder, in turn. It goes up to
scale 10, but the notebook peer only up to NOTEBOOK_MAX_SCALE: it takes about 15 s at
scale 1 and at scale 10 would take minutes per run and about ten times the memory (not
measured: its full-depth random forests on SMOTE-doubled rows grow faster than the data),
so there only ours is timed, once per round.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import polars as pl

from olist_fast.errors import OlistUsageError
from olist_fast.io import atomic_path, convert
from olist_fast.schema import TABLES
from olist_fast.synth import GENERATOR_VERSION

AS_OF = "2018-06-01"
SEED = 20240501
STAGES = ("features", "run")
RUN_AS_OF = "2018-07-01"
RUN_HORIZON = 90
RUN_MAX_SCALE = 300
LAYOUT_ABOVE = 10
"""Above this scale the cache also holds a bucketed layout (``convert --buckets
LAYOUT_BUCKETS``): features is timed on it beside the Parquet folder, and run on it."""
LAYOUT_BUCKETS = 32
OURS_LAYOUT = "olist_fast (bucketed layout)"
WHOLE_MAX_SCALE = 100
"""Above this scale only the layout is timed for features: the whole-folder commands (ours,
the parse floor, the peers) hold the data in memory, about 6 GiB (ours) to 13 GiB (the
peers) per 10M orders."""
NOTEBOOK_MAX_SCALE = 1
NOTEBOOK = "notebook (pandas+sklearn)"
PEER_SCRIPTS = ("pandas_peer.py", "duckdb_peer.py", "notebook_peer.py")


def default_peers() -> Path | None:
    """Where the peer scripts are when ``--peers`` is not given: the repository's
    ``benchmarks/peers`` beside this package (a source checkout or an editable install),
    else ``benchmarks/peers`` under the working directory (a clone, the package
    installed from a wheel); None when neither holds them. The peers are standalone
    scripts with their own dependencies (pandas, DuckDB), so they are not shipped in the
    package."""
    for where in (
        Path(__file__).resolve().parents[1] / "benchmarks" / "peers",
        Path("benchmarks") / "peers",
    ):
        if any((where / name).is_file() for name in PEER_SCRIPTS):
            return where
    return None


NO_PEERS = (
    "not found (the peer scripts live in the repository's benchmarks/peers/; "
    "point --peers at that folder): skipped"
)
FLOOR_SCRIPT = """
import sys, polars as pl
from olist_fast.features import INPUT_COLUMNS
from olist_fast.io import scan_olist
t = scan_olist(sys.argv[1])
pl.collect_all([t[k].select(c) for k, c in INPUT_COLUMNS.items()])
"""


@dataclass(frozen=True)
class Measurement:
    stage: str
    scale: float
    impl: str
    fmt: str
    wall_s: float
    wall_min_s: float
    wall_max_s: float
    peak_mib: float
    runs: int
    speedup_vs_ours: float | None = None
    """For a peer: the median over rounds of its time over ours in the same round (above 1:
    ours is faster)."""
    orders: int | None = None
    """Rows of the orders table at this scale (the x axis of the scaling plot)."""


def default_cache() -> Path:
    repo_cache = Path("benchmarks") / ".cache"
    return repo_cache if repo_cache.parent.is_dir() else Path(".olist-fast-bench")


def dataset(scale: float, cache: Path, *, say: Callable[[str], None]) -> dict[str, Path]:
    """CSV and Parquet folders of the generated data at ``scale`` (made once).

    Up to scale 10 the CSV is generated and converted; above it, the data is generated in
    chunks of scale 10 (different seeds, so different customers) written to Parquet only.
    """
    from olist_fast.synth import generate, make_olist

    base = cache / f"scale{scale:g}-seed{SEED}-gen{GENERATOR_VERSION}"
    csv_dir, pq_dir = base / "csv", base / "parquet"
    done = pq_dir / f"{TABLES['orders'].stem}.parquet"
    if scale <= 10:
        if not (csv_dir / f"{TABLES['category_translation'].stem}.csv").exists():
            say(f"generating scale {scale:g} CSV into {csv_dir}/ ...")
            generate(csv_dir, scale=scale, random_state=SEED)
        if not done.exists():
            say(f"converting scale {scale:g} to Parquet ...")
            convert(csv_dir, pq_dir)
        return {"csv": csv_dir, "parquet": pq_dir}
    if not done.exists():
        chunks = round(scale / 10)
        parts = base / "parts"
        for k in range(chunks):
            marker = parts / f"chunk{k}.done"
            if marker.exists():
                continue
            say(f"generating chunk {k + 1}/{chunks} of scale {scale:g} (scale 10 each) ...")
            tables = make_olist(scale=10, random_state=SEED + 1000 * (k + 1))
            for name, df in tables.items():
                if name == "category_translation" and k > 0:
                    continue
                (parts / name).mkdir(parents=True, exist_ok=True)
                df.write_parquet(parts / name / f"part{k:03d}.parquet")
            del tables
            marker.write_text("ok")
        pq_dir.mkdir(parents=True, exist_ok=True)
        for name, spec in TABLES.items():
            with atomic_path(pq_dir / f"{spec.stem}.parquet") as tmp:
                pl.scan_parquet(parts / name / "*.parquet").sink_parquet(tmp)
    layout = base / f"layout{LAYOUT_BUCKETS}"
    from olist_fast.layout import VERSION, write_layout

    layout_file = layout / "olist_layout.json"
    if not layout_file.is_file() or json.loads(layout_file.read_text()).get("version") != VERSION:
        say(f"writing a layout of {LAYOUT_BUCKETS} buckets into {layout}/ ...")
        write_layout(pq_dir, layout, LAYOUT_BUCKETS)
    return {"csv": csv_dir, "parquet": pq_dir, "layout": layout}


LAUNCHER = """
import os, subprocess, sys, time
t0 = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(os.waitstatus_to_exitcode(status), repr(time.perf_counter() - t0), usage.ru_maxrss)
"""
"""Runs a command and prints its exit code, wall time and peak RSS (KiB). Linux carries a
process's memory high-water mark across fork and exec (``signal->maxrss`` takes the old
address space's peak at exec), so a command started straight from this process, which
may hold a generated dataset, would report at least this process's peak. Started from
this small launcher, it reports its own."""


def run_once(argv: Sequence[str]) -> tuple[float, float]:
    """Wall time of one run of a command and its own peak resident memory (MiB), measured
    by a small launcher process (:data:`LAUNCHER`)."""
    with tempfile.TemporaryFile() as err:
        done = subprocess.run(
            [sys.executable, "-c", LAUNCHER, *argv], stdout=subprocess.PIPE, stderr=err, check=False
        )
        fields = done.stdout.decode().split()
        code = int(fields[0]) if len(fields) == 3 else done.returncode or 1
        if code != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace").strip()[-300:]
            raise RuntimeError(f"{' '.join(argv[:4])} ... failed: {tail}")
    return float(fields[1]), int(fields[2]) / 1024.0


def time_process(argv: Sequence[str], runs: int) -> tuple[list[float], float]:
    """Wall times of ``runs`` runs of a command (after one warm-up) and its peak RSS (MiB)."""
    run_once(argv)  # warms the page cache
    results = [run_once(argv) for _ in range(runs)]
    return [w for w, _ in results], max(p for _, p in results)


def time_interleaved(
    commands: dict[str, list[str]], runs: int, say: Callable[[str], None]
) -> dict[str, tuple[list[float], float]]:
    """Each command once per round, in turn (A B C A B C ...), after one warm-up round,
    so that a drift in the machine's speed hits every command alike and the per-round
    ratios stay fair."""
    for argv in commands.values():
        run_once(argv)
    walls: dict[str, list[float]] = {k: [] for k in commands}
    peaks: dict[str, float] = dict.fromkeys(commands, 0.0)
    for r in range(runs):
        say(f"  round {r + 1}/{runs}: " + ", ".join(commands))
        for impl, argv in commands.items():
            wall, peak = run_once(argv)
            walls[impl].append(wall)
            peaks[impl] = max(peaks[impl], peak)
    return {k: (walls[k], peaks[k]) for k in commands}


def _summary(
    stage: str,
    scale: float,
    impl: str,
    fmt: str,
    walls: list[float],
    peak: float,
    ratio: float | None = None,
) -> Measurement:
    med, lo, hi = (round(f(walls), 3) for f in (statistics.median, min, max))
    return Measurement(
        stage,
        scale,
        impl,
        fmt,
        med,
        lo,
        hi,
        round(peak, 1),
        len(walls),
        None if ratio is None else round(ratio, 3),
    )


def _rows(
    stage: str,
    scale: float,
    fmt: str,
    timed: dict[str, tuple[list[float], float]],
    ours: str = "olist_fast",
) -> list[Measurement]:
    """One row per command; a peer's ratio is the median over rounds of its time over ours
    in that round."""
    out = []
    for impl, (walls, peak) in timed.items():
        ratio = None
        if impl != ours and ours in timed:
            ratio = statistics.median(w / o for w, o in zip(walls, timed[ours][0], strict=True))
        out.append(_summary(stage, scale, impl, fmt, walls, peak, ratio))
    return out


def count_orders(data: dict[str, Path]) -> int:
    folder = data["parquet"]
    return (
        pl.scan_parquet(folder / f"{TABLES['orders'].stem}.parquet")
        .select(pl.len())
        .collect()
        .item()
    )


def bench_features(
    scale: float, data: dict[str, Path], runs: int, say, *, peers: Path | None = None
) -> list[Measurement]:
    """Ours, the floor and the peers, each as a whole process on the same files, run in
    turn; a peer's ratio is the median over rounds of its time over ours in that round."""
    py = sys.executable
    fmt = "csv" if scale <= 10 else "parquet"
    folder = str(data[fmt])
    with tempfile.TemporaryDirectory() as tmp:
        commands = {
            "olist_fast": [
                py,
                "-m",
                "olist_fast",
                "features",
                "--data",
                folder,
                "--as-of",
                AS_OF,
                "--out",
                f"{tmp}/ours.parquet",
            ],
            "floor (parse needed columns)": [py, "-c", FLOOR_SCRIPT, folder],
        }
        if "layout" in data:
            commands[OURS_LAYOUT] = [
                *commands["olist_fast"][:5],
                str(data["layout"]),
                *commands["olist_fast"][6:-1],
                f"{tmp}/ours-layout.parquet",
            ]
        if scale > WHOLE_MAX_SCALE:
            say(
                f"features scale {scale:g}: only the bucketed layout (the whole-folder "
                f"commands hold the data in memory; timed up to scale {WHOLE_MAX_SCALE:g})"
            )
            commands = {OURS_LAYOUT: commands[OURS_LAYOUT]}
        elif peers is not None and all(
            (peers / name).is_file() for name in PEER_SCRIPTS[:2]
        ):  # above scale 10 they read the Parquet folder, as ours does
            commands["pandas"] = [
                py,
                str(peers / "pandas_peer.py"),
                folder,
                AS_OF,
                f"{tmp}/pandas.parquet",
            ]
            commands["duckdb"] = [
                py,
                str(peers / "duckdb_peer.py"),
                folder,
                AS_OF,
                f"{tmp}/duckdb.parquet",
            ]
        else:
            say(f"pandas and DuckDB peers {NO_PEERS}")
        say(f"features scale {scale:g}: {runs} rounds of {len(commands)} commands ...")
        timed = time_interleaved(commands, runs, say)
    n = count_orders(data)
    return [replace(m, orders=n) for m in _rows("features", scale, fmt, timed)]


def run_commands(
    folder: str, out: Path, scale: float, say, *, peers: Path | None = None
) -> dict[str, list[str]]:
    """``olist-fast run`` and, up to NOTEBOOK_MAX_SCALE, the notebook peer, writing into
    ``out/ours`` and ``out/notebook``."""
    py = sys.executable
    commands = {
        "olist_fast": [
            py,
            "-m",
            "olist_fast",
            "run",
            "--data",
            folder,
            "--as-of",
            RUN_AS_OF,
            "--horizon-days",
            str(RUN_HORIZON),
            "--out",
            str(out / "ours"),
            "--seed",
            "0",
        ],
    }
    peer = peers / "notebook_peer.py" if peers is not None else None
    if scale > NOTEBOOK_MAX_SCALE:
        say(f"notebook peer: only up to scale {NOTEBOOK_MAX_SCALE:g} (minutes per run above)")
    elif peer is None or not peer.is_file():
        say(f"notebook peer {NO_PEERS}")
    else:
        commands[NOTEBOOK] = [
            py,
            str(peer),
            folder,
            RUN_AS_OF,
            str(RUN_HORIZON),
            str(out / "notebook"),
        ]
    return commands


def stage_seconds(out: Path) -> dict[str, float]:
    """The stage times ``olist-fast run`` wrote into ``out/run_manifest.json`` (key
    ``stage_seconds``); empty when the file or the key is missing or malformed."""
    try:
        stages = json.loads((out / "run_manifest.json").read_text())["stage_seconds"]
        return {str(k): float(v) for k, v in stages.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def bench_run(
    scale: float, data: dict[str, Path], runs: int, say, *, peers: Path | None = None
) -> list[Measurement]:
    """The whole job, ours and the notebook's, each as its own process on the same CSV
    folder, in turn (once per round after a warm-up round); then our stage times from the
    last run's manifest."""
    fmt = "layout" if "layout" in data else "csv"
    with tempfile.TemporaryDirectory() as tmp:
        commands = run_commands(str(data[fmt]), Path(tmp), scale, say, peers=peers)
        say(f"run scale {scale:g}: {runs} rounds of {len(commands)} commands ...")
        timed = time_interleaved(commands, runs, say)
        stages = stage_seconds(Path(tmp) / "ours")
    rows = _rows("run", scale, fmt, timed)
    for stage, secs in stages.items():
        rows.append(
            Measurement(f"run:{stage}", scale, "olist_fast", fmt, secs, secs, secs, float("nan"), 1)
        )
    return rows


def bench(
    scales: Sequence[float] = (1.0,),
    *,
    stages: Sequence[str] = STAGES,
    runs: int = 3,
    cache: Path | None = None,
    json_path: Path | None = None,
    say: Callable[[str], None] = print,
    peers: Path | None = None,
) -> list[Measurement]:
    """Measure ``stages`` at each scale; optionally write the measurements as JSON. The
    peer scripts are read from ``peers`` (default: :func:`default_peers`)."""
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise OlistUsageError(f"unknown stage {bad[0]!r}; expected one of {', '.join(STAGES)}")
    cache = cache or default_cache()
    peers = peers or default_peers()
    results: list[Measurement] = []
    for scale in scales:
        data = dataset(scale, cache, say=say)
        if "features" in stages:
            results += bench_features(scale, data, runs if scale < 100 else 1, say, peers=peers)
        if "run" in stages:
            if scale <= RUN_MAX_SCALE:
                n = count_orders(data)
                timed = bench_run(scale, data, runs if scale < 100 else 1, say, peers=peers)
                results += [replace(m, orders=n) for m in timed]
            else:
                say(f"run stage: only up to scale {RUN_MAX_SCALE:g}; skipped at {scale:g}")
    if json_path:
        payload = {
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
            "as_of": AS_OF,
            "run": {"as_of": RUN_AS_OF, "horizon_days": RUN_HORIZON},
            "measurements": [asdict(m) for m in results],
        }
        with atomic_path(json_path) as tmp:
            tmp.write_text(json.dumps(payload, indent=2))
    return results


def format_table(results: Sequence[Measurement]) -> str:
    head = (
        f"{'stage':<16}{'scale':>6}  {'implementation':<30}{'input':<8}{'median s':>9}"
        f"{'min-max s':>15}{'peak MiB':>10}{'ours faster':>12}"
    )
    lines = [head, "-" * len(head)]
    for m in results:
        spread = f"{m.wall_min_s:.2f}-{m.wall_max_s:.2f}"
        peak = "" if m.peak_mib != m.peak_mib else f"{m.peak_mib:,.0f}"
        ratio = "" if m.speedup_vs_ours is None else f"{m.speedup_vs_ours:.2f}x"
        lines.append(
            f"{m.stage:<16}{m.scale:>6g}  {m.impl:<30}{m.fmt:<8}{m.wall_s:>9.2f}"
            f"{spread:>15}{peak:>10}{ratio:>12}"
        )
    return "\n".join(lines)


def scaling(results: Sequence[Measurement]) -> list[dict[str, float | str]]:
    """Per implementation of the features stage measured at two or more sizes: seconds
    and MiB per 1M orders (least-squares slope of time and memory against orders) and the
    log-log exponent of time (1: cost grows as the data does)."""
    import numpy as np

    out: list[dict[str, float | str]] = []
    by_impl: dict[str, list[Measurement]] = {}
    for m in results:
        if m.stage == "features" and m.orders:
            by_impl.setdefault(m.impl, []).append(m)
    for impl, ms in by_impl.items():
        if len({m.orders for m in ms}) < 2:
            continue
        x = np.array([m.orders for m in ms], dtype=float)
        t = np.array([m.wall_s for m in ms])
        mem = np.array([m.peak_mib for m in ms])
        out.append(
            {
                "impl": impl,
                "s_per_1M_orders": float(np.polyfit(x / 1e6, t, 1)[0]),
                "mib_per_1M_orders": float(np.polyfit(x / 1e6, mem, 1)[0]),
                "time_exponent": float(np.polyfit(np.log(x), np.log(t), 1)[0]),
            }
        )
    return out


def format_scaling(rows: Sequence[dict[str, float | str]]) -> str:
    if not rows:
        return ""
    head = f"{'implementation':<30}{'s / 1M orders':>15}{'MiB / 1M orders':>17}{'exponent':>10}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['impl']!s:<30}{r['s_per_1M_orders']:>15.2f}"
            f"{r['mib_per_1M_orders']:>17,.0f}{r['time_exponent']:>10.2f}"
        )
    return "\n".join(lines)


def load_measurements(path: Path) -> list[Measurement]:
    """Measurements written by ``bench --json``."""
    payload = json.loads(Path(path).read_text())
    return [Measurement(**m) for m in payload["measurements"]]


def plot_scaling(results: Sequence[Measurement], path: Path) -> Path:
    """Time and peak memory of the features stage (and of the whole run, where measured)
    against orders, log-log, one line per implementation, written atomically as PNG (or
    SVG/PDF by extension)."""
    from matplotlib.figure import Figure

    series: dict[str, list[Measurement]] = {}
    for m in results:
        if m.stage in STAGES and m.orders:
            name = m.impl if m.stage == "features" else f"run: {m.impl}"
            series.setdefault(name, []).append(m)
    if not series:
        raise OlistUsageError(
            "no features measurements with order counts to plot (run bench with the "
            "features stage, or pass a --json file written by it)"
        )
    fig = Figure(figsize=(11, 4.2))
    ax_t, ax_m = fig.subplots(1, 2)
    for impl, ms in sorted(series.items()):
        ms = sorted(ms, key=lambda m: m.orders or 0)
        x = [m.orders for m in ms]
        ax_t.plot(x, [m.wall_s for m in ms], marker="o", label=impl)
        ax_m.plot(x, [m.peak_mib for m in ms], marker="o", label=impl)
    for ax, what in ((ax_t, "median wall time (s)"), (ax_m, "peak memory (MiB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("orders")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
    ax_t.legend(fontsize=8)
    fig.suptitle("features and run, whole processes, 2-core machine (lower is better)")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=110)
    return path
