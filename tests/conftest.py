from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from olist_fast.synth import generate, make_olist, write_olist

REAL_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "real-samples"


@pytest.fixture(scope="session")
def real_samples() -> Path:
    if not REAL_SAMPLES.is_dir():
        pytest.skip(f"real samples not found at {REAL_SAMPLES}")
    return REAL_SAMPLES


@pytest.fixture(scope="session")
def small_tables() -> dict[str, pl.DataFrame]:
    """A small generated dataset (about 2,000 orders), drawn once per session."""
    return make_olist(scale=0.02, random_state=7)


@pytest.fixture(scope="session")
def small_csv_dir(tmp_path_factory: pytest.TempPathFactory, small_tables) -> Path:
    """``small_tables`` as Olist CSV files, shared by the session: read-only (a test that
    damages data uses ``data_copy``)."""
    out = tmp_path_factory.mktemp("small")
    write_olist(small_tables, out)
    return out


@pytest.fixture
def data_copy(small_csv_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the small CSV dataset that a test may damage."""
    dst = tmp_path / "data"
    shutil.copytree(small_csv_dir, dst)
    return dst


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated shop of about 8,000 orders in the Olist layout, drawn once per session
    and shared by the job tests: read-only (nothing writes into it; a test that damages
    data uses ``data_copy``, its own copy of the small dataset)."""
    out = tmp_path_factory.mktemp("job-data")
    generate(out, scale=0.08, random_state=11)
    return out


@pytest.fixture(scope="session")
def cli() -> CliRunner:
    """The CLI, invoked in-process (``cli.invoke(app, [...])``)."""
    return CliRunner()
