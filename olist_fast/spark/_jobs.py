"""The ``features`` and ``score`` commands on Spark: one job each, written as Parquet.

Every job starts the same way (:func:`job_inputs`): the integrity counts and the default
``as_of`` are decided over all the data before any task runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from olist_fast.spark._facts import DataFacts, data_facts, integrity
from olist_fast.spark._plan import FEATURE_TABLES, features
from olist_fast.spark._read import read_tables
from olist_fast.spark._scoring import score
from olist_fast.spark._session import pandas3_warning_filtered, session, spark_errors

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class Written:
    """What a Spark job wrote: where, how many rows and columns, and whether the snapshot
    carries labels (features only)."""

    out: str
    rows: int
    columns: int
    labels: bool = False
    as_of: datetime | None = None


def _write_dataset(df: DataFrame, out: str | os.PathLike[str], *, sort: Sequence[str]) -> int:
    """``df`` sorted by ``sort`` as a Parquet dataset at ``out`` (a folder or URL; Spark
    writes the part files and ``_SUCCESS``, replacing what was there). Checkpointed first,
    so that the global sort's sampling does not run the feature or scoring tasks twice."""
    target = os.fspath(out)
    with spark_errors(target), pandas3_warning_filtered():
        fixed = df.localCheckpoint(eager=True)
        fixed.orderBy(*sort).write.mode("overwrite").parquet(target)
        return fixed.count()


def job_inputs(
    spark: SparkSession | None,
    master: str | None,
    data: str | os.PathLike[str],
    as_of: datetime | None,
    *,
    strict: bool,
    say: Callable[[str], None],
) -> tuple[SparkSession, dict[str, DataFrame], DataFacts, datetime]:
    """What a command reads before its job: the session, the six tables, the integrity
    counts over all the data (never per slice; warned, or raised under ``strict``), the
    global facts and the as_of (default: the end of the healthy period, said)."""
    spark = spark or session(master)
    tables = read_tables(spark, data, tables=FEATURE_TABLES)
    integrity(tables).check(strict=strict)
    facts = data_facts(tables)
    when = as_of or facts.healthy_end
    if as_of is None:
        say(f"as_of {when:%Y-%m-%d} (end of the healthy period)")
    return spark, tables, facts, when


def features_to(
    out: str | os.PathLike[str],
    data: str | os.PathLike[str],
    as_of: datetime | None = None,
    horizon_days: int = 90,
    master: str | None = None,
    *,
    partitions: int | None = None,
    spark: SparkSession | None = None,
    say: Callable[[str], None] = _quiet,
    strict: bool = False,
) -> Written:
    """``olist-fast features --engine spark``: the snapshot at ``as_of`` (default: the end
    of the healthy period, decided over all orders) written to ``out`` as a Parquet
    dataset sorted by ``customer_unique_id``. ``spark`` reuses a session; otherwise one
    starts on ``master`` (see :func:`session`)."""
    spark, tables, facts, when = job_inputs(spark, master, data, as_of, strict=strict, say=say)
    df = features(spark, tables, when, horizon_days, partitions=partitions, facts=facts)
    rows = _write_dataset(df, out, sort=["customer_unique_id"])
    has_labels = "bought_again" in df.columns
    return Written(os.fspath(out), rows, len(df.columns), has_labels, when)


def score_to(
    out: str | os.PathLike[str],
    model: str | os.PathLike[str],
    data: str | os.PathLike[str],
    as_of: datetime | None = None,
    master: str | None = None,
    *,
    partitions: int | None = None,
    spark: SparkSession | None = None,
    say: Callable[[str], None] = _quiet,
    strict: bool = False,
) -> Written:
    """``olist-fast score --engine spark``: every customer of the snapshot at ``as_of``
    (features with the model's horizon, no labels) scored in the executors, written as
    the Parquet dataset ``<out>/user_propensity_scores.parquet`` sorted by rank."""
    from olist_fast.fitting import FittedModel

    fitted = FittedModel.load(Path(model))
    spark, tables, facts, when = job_inputs(spark, master, data, as_of, strict=strict, say=say)
    fitted.check_can_score(when)  # a model refuses dates inside its training labels
    snap = features(
        spark, tables, when, fitted.horizon_days, labels=False, partitions=partitions, facts=facts
    )
    scores = score(spark, model, snap, partitions=partitions)
    target = f"{os.fspath(out).rstrip('/')}/user_propensity_scores.parquet"
    rows = _write_dataset(scores, target, sort=["rank"])
    return Written(target, rows, len(scores.columns), False, when)
