"""The demo dataset on disk: the CSV files and the generator's arguments beside them.

The arguments are enough to draw the same tables, and so their truth, again; files of
another ``GENERATOR_VERSION`` are refused, since there the same seed gives other data.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from olist_fast.errors import OlistDataError
from olist_fast.io import atomic_path
from olist_fast.synth._generator import check_arrivals
from olist_fast.synth._repeat_rate import check_repeat_rate
from olist_fast.synth._simulation import Simulation, make_olist, simulate
from olist_fast.synth._write import write_olist

GENERATOR_VERSION = 2  # bump when a seed would give other data or other truth
PARAMS_FILE = "olist_fast_generator.json"


def generate(
    out_dir: str | os.PathLike[str],
    *,
    scale: float = 1.0,
    random_state: int = 0,
    repeat_rate: float | None = None,
    arrivals: str = "growth",
) -> list[Path]:
    """Draw the demo dataset and write it as CSV files, plus ``PARAMS_FILE`` (the generator's
    arguments, so :func:`load_simulation` can draw it again); returns the paths written."""
    check_repeat_rate(repeat_rate)
    check_arrivals(arrivals)
    tables = make_olist(
        scale=scale, random_state=random_state, repeat_rate=repeat_rate, arrivals=arrivals
    )
    paths = write_olist(tables, out_dir)
    params = {
        "scale": scale,
        "random_state": random_state,
        "repeat_rate": repeat_rate,
        "arrivals": arrivals,
        "generator_version": GENERATOR_VERSION,
    }
    path = Path(out_dir) / PARAMS_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(params, indent=2) + "\n")
    return [*paths, path]


def read_generator_params(data_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The arguments ``generate`` wrote into ``data_dir``; None when it holds none."""
    path = Path(data_dir) / PARAMS_FILE
    if not path.is_file():
        return None
    params: dict[str, Any] = json.loads(path.read_text())
    return params


def load_simulation(data_dir: str | os.PathLike[str]) -> Simulation | None:
    """Draw the generated data in ``data_dir`` again, with its truth; None if it was not
    generated (no ``PARAMS_FILE``).

    The same arguments give the same tables, so the truth is that of the files as long as
    nobody edited them; this is not checked. Files without ``arrivals`` (written before
    it existed) are ``growth``.
    """
    params = read_generator_params(data_dir)
    if params is None:
        return None
    version = params.get("generator_version")
    if version != GENERATOR_VERSION:
        raise OlistDataError(
            f"{Path(data_dir) / PARAMS_FILE}: generator version {version}, this is version"
            f" {GENERATOR_VERSION}; the data cannot be drawn again"
        )
    return simulate(
        scale=params["scale"],
        random_state=params["random_state"],
        repeat_rate=params["repeat_rate"],
        arrivals=params.get("arrivals", "growth"),
    )
