"""Polars types as Spark's and Arrow's.

The Spark schema is built from type objects, not DDL text, so that a task's schema can
be declared without a running JVM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql.types import StructType

SPARK_TYPES = {pl.String: "string", pl.Int64: "bigint", pl.Float64: "double"}


def spark_type(dtype: Any) -> str:
    if dtype == pl.Datetime("us"):
        return "timestamp_ntz"
    return SPARK_TYPES[dtype]


def spark_schema(schema: pl.Schema) -> StructType:
    """The Spark schema of a Polars schema (built from type objects: parsing DDL would
    need a running JVM)."""
    from pyspark.sql import types as T

    kinds = {
        "string": T.StringType,
        "bigint": T.LongType,
        "double": T.DoubleType,
        "timestamp_ntz": T.TimestampNTZType,
    }
    return T.StructType(
        [T.StructField(c, kinds[spark_type(t)](), nullable=True) for c, t in schema.items()]
    )


def arrow_schema(schema: StructType) -> pa.Schema:
    """The exact Arrow schema Spark expects back from a task, derived from the declared
    Spark schema (``mapInArrow`` does not check types: a mismatch crashes in the JVM)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(schema)
