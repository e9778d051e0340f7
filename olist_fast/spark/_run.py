"""The ``run`` command on Spark: snapshots and scores in Spark, the model stage on the driver.

The labelled snapshots are collected and fed to the unchanged model stage of
:func:`olist_fast.pipeline.run`; snapshot 0 stays in Spark for scoring and reaches the
driver only because the final calibration measures its level on it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from olist_fast.features import LABELS
from olist_fast.io import is_url, locate_olist
from olist_fast.spark._facts import DataFacts
from olist_fast.spark._jobs import job_inputs
from olist_fast.spark._plan import AS_OF, features_many, to_polars
from olist_fast.spark._scoring import score
from olist_fast.spark._session import pandas3_warning_filtered, spark_errors

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from olist_fast.config import RunConfig
    from olist_fast.pipeline import RunResult
    from olist_fast.protocol import Protocol

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


def run_on_spark(
    config: RunConfig | None = None,
    master: str | None = None,
    *,
    partitions: int | None = None,
    spark: SparkSession | None = None,
) -> RunResult:
    """``olist-fast run --engine spark``: the snapshots built in Spark, the labelled ones
    collected and fed to the unchanged model stage of :func:`olist_fast.pipeline.run`
    (the same stage functions, in the same order, with the same seed), the final scores
    computed in Spark. The outputs are the files ``run`` writes, in ``config.out`` (a
    local folder); the same chosen setup and the same scores as the in-process ``run``.

    The data is a local folder or a URL Spark can read (``config.data``); the input
    fingerprints of the manifest hash local files only, as ``run`` does."""
    from olist_fast import pipeline as P
    from olist_fast.config import RunConfig
    from olist_fast.data import resolve_data_dir
    from olist_fast.parallel import using_threads
    from olist_fast.protocol import Snapshots, check_data_gap, require_roles

    config = config or RunConfig()
    out = P.local_out(config.out, "run")
    timer = P.Timer(log.info)
    with using_threads(config.n_jobs):
        location = resolve_data_dir(config.data)
        spark, tables, facts, as_of = timer.run(
            "read",
            lambda: job_inputs(
                spark, master, location, config.as_of, strict=config.strict, say=log.info
            ),
        )
        protocol = config.protocol(as_of)
        check_data_gap(facts.latest_purchase, protocol)
        past, now = timer.run(
            "features",
            lambda: protocol_snapshots(spark, tables, protocol, facts, partitions=partitions),
        )
        # snapshot 0 reaches the driver too: the level of the final calibration is
        # measured on its customers (fitting.measure_drift); it is scored in Spark
        scored = to_polars(now, sort=["customer_unique_id"])
        snaps = Snapshots(protocol, [scored, *past])
        require_roles(snaps)
        data_dir = None if is_url(location) else Path(location)
        stage = P.model_stage(snaps, config, data_dir, timer)
        final, metrics = stage.final, stage.metrics
        scores = timer.run(
            "score",
            lambda: to_polars(score(spark, final, now, partitions=partitions), sort=["rank"]),
        )
        # snapshot 0 stayed in Spark: the manifest reads only its row count, which is the
        # number of customers scored
        done = Snapshots(protocol, [scores.select("customer_unique_id"), *past])
        # the manifest hashes the local files read (Spark's own URLs, s3a:// and the like,
        # are not Polars-readable: none are recorded for them)
        located = {} if is_url(location) else locate_olist(location)
        source = P.Source(location, {}, as_of, files={n: w for n, (w, _) in located.items()})
        files = timer.run(
            "write",
            lambda: P.write_outputs(
                config, out, source, done, final, scores, metrics, stage.backtest, timer
            ),
        )
    return P.RunResult(
        as_of, stage.selection.chosen.name, metrics, files, timer.stages, scores, final
    )
