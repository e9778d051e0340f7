"""``olist-fast bench``: the benchmark measurements for users without pytest.

Whole-command comparisons run each implementation as its own process (start-up, read,
compute, write) several times and report the median wall time and the peak resident
memory the kernel accounted to that process. The floor is a process that only parses
the columns the features need. Data is generated once per scale and cached; scale 100
is generated in chunks straight to Parquet (about 10M orders).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl

from olist_fast.io import atomic_path, convert
from olist_fast.schema import TABLES

AS_OF = "2018-06-01"
SEED = 20240501
STAGES = ("features", "run")
PEERS_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "peers"
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


def default_cache() -> Path:
    repo_cache = Path("benchmarks") / ".cache"
    return repo_cache if repo_cache.parent.is_dir() else Path(".olist-fast-bench")


def dataset(scale: float, cache: Path, *, say: Callable[[str], None]) -> dict[str, Path]:
    """CSV and Parquet folders of the generated data at ``scale`` (made once).

    Up to scale 10 the CSV is generated and converted; above it, the data is generated in
    chunks of scale 10 (different seeds, so different customers) written to Parquet only.
    """
    from olist_fast.synth import generate, make_olist

    base = cache / f"scale{scale:g}-seed{SEED}"
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
    return {"csv": csv_dir, "parquet": pq_dir}


def run_once(argv: Sequence[str]) -> tuple[float, float]:
    """Wall time of one run of a command and its own peak resident memory (MiB)."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # the child's own resource usage
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace").strip()[-300:]
            raise RuntimeError(f"{' '.join(argv[:4])} ... failed: {tail}")
    return wall, usage.ru_maxrss / 1024.0


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


def _summary(stage: str, scale: float, impl: str, fmt: str, walls: list[float], peak: float,
             ratio: float | None = None) -> Measurement:  # fmt: skip
    med, lo, hi = (round(f(walls), 3) for f in (statistics.median, min, max))
    return Measurement(stage, scale, impl, fmt, med, lo, hi, round(peak, 1), len(walls),
                       None if ratio is None else round(ratio, 3))  # fmt: skip


def bench_features(scale: float, data: dict[str, Path], runs: int, say) -> list[Measurement]:
    """Ours, the floor and the peers, each as a whole process on the same files, run in
    turn; a peer's ratio is the median over rounds of its time over ours in that round."""
    py = sys.executable
    fmt = "csv" if scale <= 10 else "parquet"
    folder = str(data[fmt])
    with tempfile.TemporaryDirectory() as tmp:
        commands = {
            "olist_fast": [py, "-m", "olist_fast", "features", "--data", folder, "--as-of",
                           AS_OF, "--out", f"{tmp}/ours.parquet"],
            "floor (parse needed columns)": [py, "-c", FLOOR_SCRIPT, folder],
        }  # fmt: skip
        if PEERS_DIR.is_dir() and scale <= 10:
            commands["pandas"] = [py, str(PEERS_DIR / "pandas_peer.py"), folder, AS_OF,
                                  f"{tmp}/pandas.parquet"]  # fmt: skip
            commands["duckdb"] = [py, str(PEERS_DIR / "duckdb_peer.py"), folder, AS_OF,
                                  f"{tmp}/duckdb.parquet"]  # fmt: skip
        elif scale <= 10:
            say("peers not found (they live in the repository's benchmarks/peers/): skipped")
        say(f"features scale {scale:g}: {runs} rounds of {len(commands)} commands ...")
        timed = time_interleaved(commands, runs, say)
    ours = timed["olist_fast"][0]
    out = []
    for impl, (walls, peak) in timed.items():
        ratio = None
        if impl != "olist_fast":
            ratio = statistics.median(w / o for w, o in zip(walls, ours, strict=True))
        out.append(_summary("features", scale, impl, fmt, walls, peak, ratio))
    return out


def bench_run(scale: float, data: dict[str, Path], say) -> list[Measurement]:
    """The whole job as its own process, and the stage times it reports."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = [sys.executable, "-m", "olist_fast", "run", "--data", str(data["parquet"]),
                "--out", tmp]  # fmt: skip
        say(f"run scale {scale:g}: timing the whole job ...")
        walls, peak = time_process(argv, 1)
        manifest = json.loads((Path(tmp) / "run_manifest.json").read_text())
    rows = [_summary("run", scale, "olist_fast", "parquet", walls, peak)]
    for stage, secs in manifest["stage_seconds"].items():
        rows.append(Measurement(f"run:{stage}", scale, "olist_fast", "parquet", secs, secs, secs,
                                float("nan"), 1))  # fmt: skip
    return rows


def bench(
    scales: Sequence[float] = (1.0,),
    *,
    stages: Sequence[str] = STAGES,
    runs: int = 3,
    cache: Path | None = None,
    json_path: Path | None = None,
    say: Callable[[str], None] = print,
) -> list[Measurement]:
    """Measure ``stages`` at each scale; optionally write the measurements as JSON."""
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise ValueError(f"unknown stage {bad[0]!r}; expected one of {', '.join(STAGES)}")
    cache = cache or default_cache()
    results: list[Measurement] = []
    for scale in scales:
        data = dataset(scale, cache, say=say)
        if "features" in stages:
            results += bench_features(scale, data, runs if scale < 100 else 1, say)
        if "run" in stages and scale <= 1:
            results += bench_run(scale, data, say)
    if json_path:
        payload = {
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
            "as_of": AS_OF,
            "measurements": [asdict(m) for m in results],
        }
        with atomic_path(json_path) as tmp:
            tmp.write_text(json.dumps(payload, indent=2))
    return results


def format_table(results: Sequence[Measurement]) -> str:
    head = f"{'stage':<16}{'scale':>6}  {'implementation':<30}{'input':<8}{'median s':>9}" \
           f"{'min-max s':>15}{'peak MiB':>10}{'ours faster':>12}"  # fmt: skip
    lines = [head, "-" * len(head)]
    for m in results:
        spread = f"{m.wall_min_s:.2f}-{m.wall_max_s:.2f}"
        peak = "" if m.peak_mib != m.peak_mib else f"{m.peak_mib:,.0f}"
        ratio = "" if m.speedup_vs_ours is None else f"{m.speedup_vs_ours:.2f}x"
        lines.append(f"{m.stage:<16}{m.scale:>6g}  {m.impl:<30}{m.fmt:<8}{m.wall_s:>9.2f}"
                     f"{spread:>15}{peak:>10}{ratio:>12}")  # fmt: skip
    return "\n".join(lines)
