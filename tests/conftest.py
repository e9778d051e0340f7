from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from olist_fast.synth import make_olist, write_olist

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
    out = tmp_path_factory.mktemp("small")
    write_olist(small_tables, out)
    return out


@pytest.fixture
def data_copy(small_csv_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the small CSV dataset that a test may damage."""
    dst = tmp_path / "data"
    shutil.copytree(small_csv_dir, dst)
    return dst
