"""The feature plan and the scoring on Apache Spark, exact to the single-machine result.

Every feature of the contract is per person, so Spark cuts the data by person and runs
each slice through the *unchanged* Polars plan inside a task
(:mod:`olist_fast.spark._plan` tells how the rows reach their task). What must not be
decided per slice (whether a snapshot's label window is covered, the default ``as_of``,
the integrity counts) is decided once, over all the data, on the driver
(:mod:`olist_fast.spark._facts`). A saved model scores the customers in the executors,
and the rank and decile are made over all of them (:mod:`olist_fast.spark._scoring`).

The modules run one way: ``_session`` (the SparkSession, Spark's failures as one-line
errors), ``_types``, ``_read`` (the tables), ``_facts``, ``_plan``, ``_scoring``, then the
commands: ``_jobs`` (``features`` and ``score``) and ``_run`` (``run``).

pyspark is imported only inside the functions that need it, so ``import olist_fast.spark``
works without the ``[spark]`` extra; every entry point then raises a one-line
:class:`OlistDataError` naming it.
"""

from olist_fast.spark._facts import DataFacts, coverage, data_facts, integrity
from olist_fast.spark._jobs import Written, features_to, score_to
from olist_fast.spark._plan import (
    AS_OF,
    FEATURE_TABLES,
    ORDERS_PER_PARTITION,
    features,
    features_many,
    plan_is_path_invariant,
    to_polars,
)
from olist_fast.spark._read import read_tables
from olist_fast.spark._run import SparkEngine, run_on_spark
from olist_fast.spark._scoring import score
from olist_fast.spark._session import java_executable, session

__all__ = [
    "AS_OF",
    "FEATURE_TABLES",
    "ORDERS_PER_PARTITION",
    "DataFacts",
    "SparkEngine",
    "Written",
    "coverage",
    "data_facts",
    "features",
    "features_many",
    "features_to",
    "integrity",
    "java_executable",
    "plan_is_path_invariant",
    "read_tables",
    "run_on_spark",
    "score",
    "score_to",
    "session",
    "to_polars",
]
