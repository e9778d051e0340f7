"""The ``run`` command on Spark: snapshots and scores in Spark, the model stage on the driver.

The labelled snapshots are collected and fed to the unchanged model stage of
:func:`olist_fast.pipeline.run`; snapshot 0 stays in Spark for scoring and reaches the
driver only because the final calibration measures its level on it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import polars as pl

from olist_fast.config import RunConfig
from olist_fast.data import Source
from olist_fast.features import LABELS
from olist_fast.fitting import FittedModel
from olist_fast.io import is_url, locate_olist
from olist_fast.pipeline import Engine, RunResult, run
from olist_fast.protocol import Protocol, Snapshots, check_data_gap, require_roles
from olist_fast.spark._facts import DataFacts
from olist_fast.spark._jobs import job_inputs
from olist_fast.spark._plan import AS_OF, features_many, to_polars
from olist_fast.spark._scoring import score
from olist_fast.spark._session import pandas3_warning_filtered, spark_errors

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("olist_fast")


def protocol_snapshots(
    spark: SparkSession,
    tables: Mapping[str, DataFrame],
    protocol: Protocol,
    facts: DataFacts,
    *,
    partitions: int | None = None,
) -> tuple[list[pl.DataFrame], DataFrame]:
    """Every snapshot of ``protocol`` in one Spark job (labels forced on for the past
    ones, as :func:`olist_fast.protocol.build_protocol_snapshots` does): the labelled
    ones collected to the driver as Polars frames sorted by ``customer_unique_id`` (what
    the model stage reads), and snapshot 0 left in Spark (checkpointed) for scoring.

    Every labelled row reaches the driver: at 1 % buyers the model stage keeps all of
    them for the folds and the backtest. That is the limit of this route (every
    snapshot, one row per customer, on the driver)."""
    from pyspark.sql import functions as F

    dates = protocol.dates()
    labels = [j > 0 for j in range(len(dates))]
    every = features_many(
        spark,
        tables,
        dates,
        protocol.horizon_days,
        labels=labels,
        partitions=partitions,
        facts=facts,
    )
    with spark_errors(), pandas3_warning_filtered():
        every = every.localCheckpoint(eager=True)
    past = to_polars(every.where(F.col(AS_OF) != F.lit(protocol.as_of)))
    frames = []
    for j in range(1, len(dates)):
        frame = past.filter(pl.col(AS_OF) == dates[j]).drop(AS_OF)
        frames.append(frame.sort("customer_unique_id"))
    now = every.where(F.col(AS_OF) == F.lit(protocol.as_of)).drop(AS_OF, *LABELS)
    return frames, now


@dataclass
class SparkEngine(Engine):
    """The snapshots and the final scores of :func:`olist_fast.pipeline.run` made in
    Spark (:class:`olist_fast.pipeline.Engine`): the integrity counts and the default
    ``as_of`` decided over all the data, every snapshot built in one Spark job, the
    labelled ones collected to the driver for the unchanged model stage, snapshot 0
    scored in the executors. ``spark`` reuses a session; otherwise one starts on
    ``master``. The data is a local folder or a URL Spark can read (``config.data``);
    the manifest hashes local files only."""

    master: str | None = None
    partitions: int | None = None
    spark: SparkSession | None = None
    _tables: Mapping[str, DataFrame] = field(default_factory=dict, repr=False)
    _facts: DataFacts | None = field(default=None, repr=False)
    _now: DataFrame | None = field(default=None, repr=False)

    def read(self, config: RunConfig) -> Source:
        from olist_fast.data import resolve_data_dir

        location = resolve_data_dir(config.data)
        self.spark, self._tables, self._facts, as_of = job_inputs(
            self.spark, self.master, location, config.as_of, strict=config.strict, say=log.info
        )
        # the manifest hashes the local files read (Spark's own URLs, s3a:// and the like,
        # are not Polars-readable: none are recorded for them)
        located = {} if is_url(location) else locate_olist(location)
        return Source(location, {}, as_of, files={n: w for n, (w, _) in located.items()})

    def snapshots(self, source: Source, protocol: Protocol, config: RunConfig) -> Snapshots:
        assert self.spark is not None and self._facts is not None, "read comes first"
        check_data_gap(self._facts.latest_purchase, protocol)
        past, self._now = protocol_snapshots(
            self.spark, self._tables, protocol, self._facts, partitions=self.partitions
        )
        # snapshot 0 reaches the driver too: the level of the final calibration is
        # measured on its customers (calibration.measure_drift); it is scored in Spark
        scored = to_polars(self._now, sort=["customer_unique_id"])
        snaps = Snapshots(protocol, [scored, *past])
        require_roles(snaps)
        return snaps

    def score(self, final: FittedModel, snaps: Snapshots) -> pl.DataFrame:
        assert self.spark is not None and self._now is not None, "snapshots come first"
        scored = score(self.spark, final, self._now, partitions=self.partitions)
        return to_polars(scored, sort=["rank"])


def run_on_spark(
    config: RunConfig | None = None,
    master: str | None = None,
    *,
    partitions: int | None = None,
    spark: SparkSession | None = None,
) -> RunResult:
    """``olist-fast run --engine spark``: :func:`olist_fast.pipeline.run` with the
    snapshots and the final scores made in Spark (:class:`SparkEngine`); the same stages
    in the same order with the same seed, so the same chosen setup and the same scores as
    the in-process ``run``. The outputs are the files ``run`` writes, in ``config.out`` (a
    local folder)."""
    return run(config, engine=SparkEngine(master=master, partitions=partitions, spark=spark))
