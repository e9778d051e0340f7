"""Benchmark fixtures: generated data per scale, cached as CSV and Parquet outside git.

    pytest benchmarks                         # scales 0.1 and 1
    pytest benchmarks --scales 0.1,1,10       # add scale 10 (about 1M orders)
    pytest benchmarks --benchmark-disable     # smoke: every benchmark once, no timing

Results: ``--benchmark-json benchmarks/results/latest.json``. Each benchmark records the
scale, rows, the child-process peak memory of one call, and, for our implementation,
the ratio of each peer's median time to ours measured in the same session.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from olist_fast.io import convert
from olist_fast.synth import GENERATOR_VERSION, generate

CACHE = Path(__file__).parent / ".cache"
SEED = 20240501
MEDIANS: dict[tuple[str, float, str], float] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--scales",
        default="0.1,1",
        help="comma-separated data scales to benchmark (1 is about 99k orders)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "scale" in metafunc.fixturenames:
        scales = [float(s) for s in metafunc.config.getoption("--scales").split(",")]
        metafunc.parametrize("scale", scales, ids=[f"scale{s:g}" for s in scales], scope="session")


def dataset(scale: float) -> dict[str, Path]:
    """The generated dataset at ``scale`` as CSV and Parquet folders (made once, cached)."""
    base = CACHE / f"scale{scale:g}-seed{SEED}-gen{GENERATOR_VERSION}"
    csv_dir, pq_dir = base / "csv", base / "parquet"
    if not (csv_dir / "product_category_name_translation.csv").exists():
        generate(csv_dir, scale=scale, random_state=SEED)
    if not (pq_dir / "olist_orders_dataset.parquet").exists():
        convert(csv_dir, pq_dir)
    return {"csv": csv_dir, "parquet": pq_dir}


@pytest.fixture(scope="session")
def data(scale: float) -> dict[str, Path]:
    return dataset(scale)


def _status_kb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1])
    return float("nan")


def peak_rss_mb(fn: Callable[[], object]) -> tuple[float, float]:
    """(peak resident memory of the process during one call of ``fn``, its growth over the
    memory held before the call), in MiB. Linux resets the peak on writing 5 to
    /proc/self/clear_refs; elsewhere both are NaN."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        fn()
        return float("nan"), float("nan")
    before = _status_kb("VmRSS")
    fn()
    peak = _status_kb("VmHWM")
    return peak / 1024.0, (peak - before) / 1024.0


def record(
    benchmark, *, group: str, impl: str, scale: float, rows: int, fn=None,
    child_peak_mb: float | None = None,
) -> None:  # fmt: skip
    """Fill ``extra_info`` and the session's medians; ours gets the ratio to each peer
    (so a group's peers must be recorded before ours). The peak memory is that of one call
    of ``fn`` (the work being timed) in this process, or ``child_peak_mb`` for a benchmark
    that runs a child process (all of whose memory is growth): exactly one of the two, so
    no benchmark reports the memory of doing nothing."""
    if (fn is None) == (child_peak_mb is None):
        raise TypeError("record needs exactly one of fn (the timed call) and child_peak_mb")
    if child_peak_mb is not None:
        peak = growth = child_peak_mb
    else:
        peak, growth = peak_rss_mb(fn)
    benchmark.extra_info.update(
        {"impl": impl, "scale": scale, "rows": rows, "peak_rss_mb": round(peak, 1),
         "peak_growth_mb": round(growth, 1)}
    )  # fmt: skip
    stats = getattr(benchmark, "stats", None)
    if stats is None:  # --benchmark-disable
        return
    median = stats.stats.median
    MEDIANS[(group, scale, impl)] = median
    if impl == "olist_fast":
        for (g, s, peer), peer_median in MEDIANS.items():
            if g == group and s == scale and peer != impl:
                benchmark.extra_info[f"speedup_vs_{peer}"] = round(peer_median / median, 3)
