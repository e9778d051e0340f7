"""A saved model applied to every customer inside the executors, ranked over all of them.

Each task scores its own customers with the unchanged
:func:`olist_fast.fitting.score_customers`; the rank and the decile depend on every
customer, so they are made afterwards by one distributed ranking.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from olist_fast.spark._session import (
    num_partitions,
    pandas3_warning_filtered,
    parallelism,
    require_pyspark,
    spark_errors,
)
from olist_fast.spark._types import arrow_schema, spark_schema

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from olist_fast.fitting import FittedModel


SCORE_SCHEMA = pl.Schema(
    {
        "customer_unique_id": pl.String,
        "propensity": pl.Float64,
        "expected_spend": pl.Float64,
        "expected_value": pl.Float64,
    }
)


def _model_files(model_dir: str | os.PathLike[str]) -> dict[str, bytes]:
    """The saved model's files, read on the driver (and checked by loading them there),
    so that the tasks need no access to the driver's disk."""
    from olist_fast.fitting import FittedModel

    folder = Path(model_dir)
    FittedModel.load(folder)  # a one-line error for a folder that is not a model
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def score_task(
    files: Mapping[str, bytes], arrow: pa.Schema
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The function each scoring task runs: the model loaded once per task, then
    :func:`olist_fast.fitting.score_customers` on the task's customers (its per-customer
    columns; the rank and decile are global and made afterwards)."""
    blobs = dict(files)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        from olist_fast.fitting import FittedModel, score_customers

        got = [b for b in batches if b.num_rows]
        if not got:
            return
        with tempfile.TemporaryDirectory(prefix="olist-fast-model-") as tmp:
            for name, blob in blobs.items():
                (Path(tmp) / name).write_bytes(blob)
            model = FittedModel.load(Path(tmp))
        frame = pl.from_arrow(pa.Table.from_batches(got))
        assert isinstance(frame, pl.DataFrame)
        scored = score_customers(model, frame).select(arrow.names)
        yield from scored.to_arrow().cast(arrow).to_batches()

    return run


def rank_globally(scored: DataFrame, *, partitions: int) -> DataFrame:
    """``rank`` and ``decile`` over every customer, as :func:`olist_fast.fitting.score_customers`
    makes them on one machine: sorted by propensity (highest first), ties by
    ``customer_unique_id``; rank 1..n; decile ceil(rank * 10 / n).

    Distributed: a range partitioning on that order (checkpointed, so that the partition
    of each row is fixed), the row counts per partition to the driver, and each row's
    rank = the rows of the partitions before it + its number within its own."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from olist_fast.fitting import SCORE_COLUMNS

    order = [F.col("propensity").desc(), F.col("customer_unique_id").asc()]
    with spark_errors():
        ranged = (
            scored.repartitionByRange(partitions, *order)
            .withColumn("_part", F.spark_partition_id())
            .localCheckpoint(eager=True)
        )
        counts = {
            int(r["_part"]): int(r["count"]) for r in ranged.groupBy("_part").count().collect()
        }
    n = sum(counts.values())
    offsets, total = [], 0
    for part in range(max(counts, default=-1) + 1):
        offsets.append(total)
        total += counts.get(part, 0)
    offset = F.element_at(F.array(*[F.lit(o) for o in offsets or [0]]), F.col("_part") + 1)
    rank = (offset + F.row_number().over(Window.partitionBy("_part").orderBy(*order))).cast(
        "bigint"
    )
    return (
        ranged.withColumn("rank", rank)
        .withColumn("decile", F.ceil(F.col("rank") * 10 / F.lit(max(n, 1))).cast("bigint"))
        .select(*SCORE_COLUMNS)
    )


def score(
    spark: SparkSession,
    model_dir: str | os.PathLike[str] | FittedModel,
    snapshot: DataFrame,
    *,
    partitions: int | None = None,
) -> DataFrame:
    """A saved model (the folder ``train``/``run`` writes, or a fitted one) applied to
    every customer of ``snapshot`` inside the executors: a Spark DataFrame with the columns of
    ``user_propensity_scores.csv`` (:data:`olist_fast.fitting.SCORE_COLUMNS`), the rank
    and decile computed over all customers. Rows in no particular order (sort by rank)."""
    require_pyspark()
    files = _model_source(model_dir)
    schema = spark_schema(SCORE_SCHEMA)
    task = score_task(files, arrow_schema(schema))
    with pandas3_warning_filtered(), spark_errors():
        scored = snapshot.mapInArrow(task, schema).localCheckpoint(eager=True)
    n = partitions or max(parallelism(spark), num_partitions(snapshot))
    return rank_globally(scored, partitions=n)


def _model_source(model: str | os.PathLike[str] | FittedModel) -> dict[str, bytes]:
    """The files of a saved model, or of a fitted one saved to a temporary folder."""
    from olist_fast.fitting import FittedModel

    if not isinstance(model, FittedModel):
        return _model_files(model)
    with tempfile.TemporaryDirectory(prefix="olist-fast-model-") as tmp:
        model.save(Path(tmp))
        return _model_files(tmp)
