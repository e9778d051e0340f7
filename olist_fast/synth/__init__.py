"""The generated demo dataset: nine Olist tables with the real files' statistics and bytes.

``make_olist`` draws typed frames; ``write_olist`` writes them in the exact
conventions of the Kaggle CSVs. ``simulate`` also keeps what the generator knows, so
``Simulation.true_probability`` gives every customer's exact chance of buying
again. Everything is vectorised numpy; one seed gives one set of bytes.

The modules run one way: ``_reference`` (the real data's facts), ``_process`` (the
repeat process and its exact integrals), ``_generator`` (people, sellers, products,
orders; the arrival curves), ``_repeat_rate`` (``beta0`` for a target rate), ``_tables``
(the nine tables), ``_simulation`` (a dataset with its truth), ``_write`` (the CSV bytes)
and ``_dataset`` (the files on disk with the generator's arguments).
"""

from olist_fast.synth._dataset import (
    GENERATOR_VERSION,
    PARAMS_FILE,
    generate,
    load_simulation,
    read_generator_params,
)
from olist_fast.synth._generator import ARRIVALS, COHORT_MONTHS, check_arrivals
from olist_fast.synth._process import _ELIGIBLE_SHARE as _ELIGIBLE_SHARE  # for the tests
from olist_fast.synth._process import _SEASON_GROWTH as _SEASON_GROWTH  # for the tests
from olist_fast.synth._process import GRID_DAYS, GRID_START, RepeatProcess
from olist_fast.synth._reference import COLLAPSE, EPOCH
from olist_fast.synth._repeat_rate import (
    DEFAULT_REPEAT_RATE,
    REPEAT_RATE_RANGE,
    REPEAT_WINDOW_DAYS,
    check_repeat_rate,
    solve_beta0,
)
from olist_fast.synth._simulation import Simulation, make_olist, simulate
from olist_fast.synth._write import write_olist, write_table_csv

__all__ = [
    "ARRIVALS",
    "COHORT_MONTHS",
    "COLLAPSE",
    "DEFAULT_REPEAT_RATE",
    "EPOCH",
    "GENERATOR_VERSION",
    "GRID_DAYS",
    "GRID_START",
    "PARAMS_FILE",
    "REPEAT_RATE_RANGE",
    "REPEAT_WINDOW_DAYS",
    "RepeatProcess",
    "Simulation",
    "check_arrivals",
    "check_repeat_rate",
    "generate",
    "load_simulation",
    "make_olist",
    "read_generator_params",
    "simulate",
    "solve_beta0",
    "write_olist",
    "write_table_csv",
]
