"""The SparkSession, and Spark's failures as one-line errors.

pyspark is imported inside the functions that need it, never at module level, so that
``import olist_fast.spark`` works without the ``[spark]`` extra.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from olist_fast.io import OlistDataError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

EXTRA = "pip install 'olist-fast[spark]'"
JAVA_INSTALL = "apt-get install -y openjdk-17-jre-headless"
PANDAS3_WARNING = "PySpark does not yet fully support pandas"
"""The start of the FutureWarning pyspark emits under pandas 3 (filtered, and only it)."""
USER_ERROR = "olist-fast: "
"""Prefix of the messages raised inside Spark expressions (bad values), to find them again
in Spark's exception text."""


def require_pyspark() -> None:
    """A one-line error naming the extra when pyspark (or pandas, which its Arrow APIs
    import) is missing."""
    try:
        import pandas  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise OlistDataError(
            f"the Spark engine needs pyspark and pandas ({exc.name or 'pyspark'} is not"
            f" installed): {EXTRA}"
        ) from None


def java_executable() -> str | None:
    """The java a local Spark would start: ``$JAVA_HOME/bin/java``, else ``java`` on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


@contextmanager
def pandas3_warning_filtered() -> Iterator[None]:
    """pyspark warns (FutureWarning) on every Arrow UDF and conversion that pandas 3 is
    not fully supported; the Arrow paths used here do not go through pandas, so exactly
    that warning is ignored (a test run with ``filterwarnings = error`` would fail)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=PANDAS3_WARNING, category=FutureWarning)
        yield


def _first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def spark_reason(exc: BaseException) -> str:
    """Spark's reason for a failure in one line: the message of a Spark error class, the
    Java exception of a Py4J error (not its stack trace), the last line of a Python
    worker's traceback, or the message raised by this module inside a Spark expression."""
    text = str(exc)
    found = re.search(re.escape(USER_ERROR) + r"(.*?)(?:\s+SQLSTATE|\n|$)", text)
    if found:
        return found.group(1).strip()
    if type(exc).__name__ == "PythonException":
        lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        tail = [ln for ln in lines if not ln.startswith(("File ", "^", "~"))]
        return tail[-1] if tail else _first_line(text)
    java = getattr(exc, "java_exception", None)
    if java is not None:
        try:
            return _first_line(str(java.toString()))
        except Exception:  # the JVM may be gone
            pass
    get_message = getattr(exc, "getMessage", None)
    if callable(get_message):
        try:
            return _first_line(str(get_message()))
        except Exception:
            pass
    return _first_line(text) or type(exc).__name__


@contextmanager
def spark_errors(what: str | None = None) -> Iterator[None]:
    """Turn a failed Spark action into a one-line :class:`OlistDataError` (a bad value
    found by the reader's checks, a failed task: its reason; ``what`` names the input)."""
    try:
        yield
    except OlistDataError:
        raise
    except Exception as exc:
        module = type(exc).__module__
        if not module.startswith(("pyspark", "py4j")):
            raise
        reason = spark_reason(exc)
        if USER_ERROR in str(exc):
            raise OlistDataError(reason) from exc
        raise OlistDataError(f"{what}: {reason}" if what else f"Spark: {reason}") from exc


def session(
    master: str | None = None,
    *,
    app_name: str = "olist-fast",
    conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """A SparkSession for this package's jobs: ``local[*]`` when ``master`` is None, a
    Spark Connect session for an ``sc://`` URL, else a classic session on ``master``.

    Each task's Polars uses as many threads as the task has cores
    (``POLARS_MAX_THREADS`` = ``spark.task.cpus`` through ``spark.executorEnv``): Spark
    already runs one task per core, and Polars defaulting to every core of the machine in
    every task would oversubscribe it. Arrow is on. A local session runs its Python
    workers with this interpreter (the one that has olist_fast and polars installed).
    """
    require_pyspark()
    from pyspark.sql import SparkSession

    settings = dict(conf or {})
    cores = settings.get("spark.task.cpus", "1")
    if master is not None and master.startswith("sc://"):
        builder = SparkSession.builder.remote(master)
    else:
        if java_executable() is None:
            raise OlistDataError(
                "Spark needs Java (17 or 21), and none was found (no java on PATH, no "
                f"JAVA_HOME): install it, e.g. `{JAVA_INSTALL}`"
            )
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = SparkSession.builder.master(master or "local[*]")
        defaults = {
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.execution.arrow.pyspark.enabled": "true",
            "spark.executorEnv.POLARS_MAX_THREADS": cores,
            "spark.executorEnv.OMP_NUM_THREADS": cores,
            "spark.executorEnv.OPENBLAS_NUM_THREADS": cores,
        }
        for key, value in defaults.items():
            settings.setdefault(key, value)
    builder = builder.appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        with pandas3_warning_filtered():
            spark = builder.getOrCreate()
    except Exception as exc:
        raise OlistDataError(f"Spark did not start: {spark_reason(exc)}") from exc
    if master is None or not master.startswith("sc://"):
        spark.sparkContext.setLogLevel("ERROR")
    return spark


def num_partitions(df: DataFrame) -> int:
    """The partitions of ``df`` (1 when the session cannot say, e.g. over Connect)."""
    try:
        return int(df.rdd.getNumPartitions())
    except Exception:
        return 1


def parallelism(spark: SparkSession) -> int:
    """The cores the session can run tasks on (2 when it cannot say, e.g. over Connect)."""
    try:
        return int(spark.sparkContext.defaultParallelism)
    except Exception:
        return int(spark.conf.get("spark.default.parallelism", "2") or 2)
