"""The ``olist-fast`` command line: each command parses options and calls one library function."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import click
import typer
from polars._typing import EngineType

from olist_fast import __version__
from olist_fast.data import ensure_demo_data, resolve_data_dir, validate
from olist_fast.errors import OlistError
from olist_fast.validation import ValidationReport

if TYPE_CHECKING:
    import polars as pl

    from olist_fast.io import Location

app = typer.Typer(
    name="olist-fast",
    help="Find the Olist customers who will buy again, and how much they will spend.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_state = {"debug": False}
T = TypeVar("T")


class Engine(StrEnum):
    """Polars execution engines, or Spark (the same plan run per slice of customers)."""

    auto = "auto"
    in_memory = "in-memory"
    streaming = "streaming"
    spark = "spark"


class JobEngine(StrEnum):
    """Where run and score build their snapshots: this process, or Spark."""

    local = "local"
    spark = "spark"


MasterOpt = Annotated[
    str | None,
    typer.Option(
        "--spark-master",
        help="Spark master URL (spark://..., yarn, k8s://..., sc:// for Spark Connect) for "
        "--engine spark. Default: local[*], a session in this process.",
    ),
]
PartitionsOpt = Annotated[
    int | None,
    typer.Option(
        "--spark-partitions",
        min=1,
        help="Spark partitions of customers. Default: one per 100k orders.",
    ),
]


def engine_type(engine: Engine) -> EngineType:
    return "in-memory" if engine == Engine.in_memory else "streaming"


DataOpt = Annotated[
    str | None,
    typer.Option(
        "--data",
        help="Folder or object-store URL (s3://, gs://, az://) of Olist CSV or Parquet "
        "files. Default: $OLIST_FAST_DATA or ./datasets (`run` generates the demo set there "
        "when it is empty).",
    ),
]
StrictOpt = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Make the data-integrity warnings (duplicate keys, orders without a customer "
        "or a purchase time) errors.",
    ),
]
StorageOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--storage-option",
        help="KEY=VALUE for the object-store client (e.g. aws_endpoint_url=...); "
        "repeatable. Credentials are also read from the usual environment variables.",
    ),
]


def storage_options(pairs: list[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise fail(f"--storage-option {pair!r}: expected KEY=VALUE")
        out[key] = value
    return out


TransactionsOpt = Annotated[
    Path | None,
    typer.Option(
        "--transactions",
        help="A transaction log (.csv or .parquet: one row per order or per order line) "
        "instead of --data; its columns are named by --customer-col, --time-col, "
        "--amount-col, --order-col and --status-col.",
    ),
]
CustomerColOpt = Annotated[
    str, typer.Option("--customer-col", help="The log's customer id column (text or integers).")
]
TimeColOpt = Annotated[
    str,
    typer.Option(
        "--time-col",
        help="The log's purchase time column (ISO 8601; offsets such as Z or +02:00 are "
        "converted to UTC).",
    ),
]
AmountColOpt = Annotated[
    str, typer.Option("--amount-col", help="The log's amount column (refunds may be negative).")
]
OrderColOpt = Annotated[
    str | None,
    typer.Option(
        "--order-col",
        help="The log's order id column (rows of one order are summed). Default: one order "
        "per distinct customer and time.",
    ),
]
StatusColOpt = Annotated[
    str | None,
    typer.Option(
        "--status-col",
        help="The log's order status column (canceled, refunded... orders are not "
        "purchases). Default: none, every order is a purchase.",
    ),
]


def transaction_tables(
    transactions: Path | None,
    data: str | None,
    customer_col: str,
    time_col: str,
    amount_col: str,
    order_col: str | None,
    status_col: str | None,
) -> dict[str, pl.LazyFrame] | None:
    """The tables of ``--transactions`` (:func:`olist_fast.transactions.from_transactions`),
    or None without it; with ``--data`` too, a usage error."""
    if transactions is None:
        return None
    if data is not None:
        raise fail(
            "--data and --transactions: pass one of them (a folder of Olist files, or a "
            "transaction log)"
        )
    from olist_fast.transactions import from_transactions

    return guarded(
        lambda: from_transactions(
            transactions,
            customer_id=customer_col,
            timestamp=time_col,
            amount=amount_col,
            order_id=order_col,
            status=status_col,
        )
    )


def transactions_on_spark(master: str | None) -> None:
    """``--transactions`` with ``--engine spark`` writes the mapped tables to a temporary
    local folder: a master whose executors run elsewhere could not read it."""
    if master is not None and not master.startswith("local"):
        raise fail(
            f"--transactions with --engine spark needs a local master (local[*], the "
            f"default), not {master!r}: the log's tables are written to a temporary "
            "local folder"
        )


@contextmanager
def spark_data(
    log_tables: dict[str, pl.LazyFrame] | None, data: str | None, master: str | None
) -> Iterator[Location]:
    """Where a Spark job reads its data: the ``--data`` folder (or the default one), or
    the ``--transactions`` log's tables written to a temporary local folder."""
    if log_tables is None:
        yield guarded(lambda: data or resolve_data_dir(None))
        return
    from olist_fast.transactions import olist_folder

    transactions_on_spark(master)
    with olist_folder(log_tables) as folder:
        yield folder


def no_spark_options(**given: object) -> None:
    """The Spark engine does not apply these options yet: refuse rather than drop them."""
    for name, value in given.items():
        if value:
            raise fail(f"--{name.replace('_', '-')} is not supported with --engine spark yet")


def say(msg: str) -> None:
    typer.echo(msg, err=True)


def fail(msg: str) -> typer.Exit:
    typer.echo(f"error: {msg}", err=True)
    return typer.Exit(code=1)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _is_io_error(exc: BaseException) -> bool:
    """A Polars error that is the operating system's (``... (os error 28)``)."""
    return type(exc).__module__.startswith("polars") and "(os error " in str(exc)


def guarded(fn: Callable[[], T]) -> T:
    """Run ``fn`` and sort what fails into the user's problem or ours.

    Exit 1, one line: bad input (:class:`~olist_fast.errors.OlistError`: the library turns
    values Polars cannot parse while reading the tables into one) and file system errors.
    Exit 2: anything else is an internal error (a bug in olist-fast or a library), said
    as such, with ``--debug`` for the traceback."""
    try:
        return fn()
    except (typer.Exit, typer.Abort, click.ClickException):
        raise
    except (OlistError, OSError) as exc:
        if _state["debug"]:
            raise
        raise fail(_first_line(exc)) from None
    except Exception as exc:
        if _state["debug"]:
            raise
        if _is_io_error(exc):  # a full disk under a Polars writer, a file gone while read
            raise fail(_first_line(exc)) from None
        typer.echo(
            f"internal error: {type(exc).__name__}: {_first_line(exc)} (a bug, not your data;"
            " run again with --debug for the traceback, and please report it)",
            err=True,
        )
        raise typer.Exit(code=2) from None


class _LineFormatter(logging.Formatter):
    """Plain lines on stderr: progress as it is, warnings and errors prefixed."""

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        return msg if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {msg}"


def attach_log_handler() -> None:
    """Show the library's progress and warnings (the ``olist_fast`` logger) on stderr.
    The stream is looked up at each record, so a test runner's captured stderr works."""
    logger = logging.getLogger("olist_fast")
    for h in list(logger.handlers):
        if getattr(h, "_olist_cli", False):
            logger.removeHandler(h)

    class _Stderr(logging.Handler):
        _olist_cli = True

        def emit(self, record: logging.LogRecord) -> None:
            typer.echo(self.format(record), err=True)

    handler = _Stderr()
    handler.setFormatter(_LineFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"olist-fast {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    """Leak-free repeat-purchase propensity for the Olist Brazilian e-commerce data."""
    _state["debug"] = debug
    attach_log_handler()


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the nine CSV files to.")],
    scale: Annotated[
        float, typer.Option("--scale", min=0.001, help="1 is about 99k orders, 10 about 1M.")
    ] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same seed, same bytes.")] = 0,
    repeat_rate: Annotated[
        float | None,
        typer.Option(
            "--repeat-rate",
            help="Share of first-time buyers who buy again (on a later day) within 90 days, "
            "0.001-0.6. Default: realistic (about 0.011).",
        ),
    ] = None,
    arrivals: Annotated[
        str,
        typer.Option(
            "--arrivals",
            help="When first-time customers arrive: growth (the real, rising monthly curve), "
            "steady (a constant rate over the same dates) or cohort (all in 2017-01..03, "
            "then no new customers).",
        ),
    ] = "growth",
) -> None:
    """Write a generated demo dataset in the exact format of the real Kaggle files."""
    from olist_fast.synth import generate as _generate

    t0 = time.perf_counter()
    rate = "" if repeat_rate is None else f", repeat rate {repeat_rate:g}"
    kind = "" if arrivals == "growth" else f", {arrivals} arrivals"
    say(f"Generating scale {scale:g}, seed {seed}{rate}{kind} into {out}/ ...")
    paths = guarded(
        lambda: _generate(
            out, scale=scale, random_state=seed, repeat_rate=repeat_rate, arrivals=arrivals
        )
    )
    size = sum(p.stat().st_size for p in paths) / 1e6
    say(f"Wrote {len(paths)} files ({size:.1f} MB) in {time.perf_counter() - t0:.1f} s.")


def print_report(report: ValidationReport) -> None:
    from olist_fast.report import validation_summary  # numpy: not needed at startup

    out, err = validation_summary(report)
    for line in err:
        typer.echo(line, err=True)
    for line in out:
        typer.echo(line)


@app.command("validate")
def validate_cmd(
    data: DataOpt = None,
    transactions: TransactionsOpt = None,
    customer_col: CustomerColOpt = "customer_id",
    time_col: TimeColOpt = "timestamp",
    amount_col: AmountColOpt = "amount",
    order_col: OrderColOpt = None,
    status_col: StatusColOpt = None,
) -> None:
    """Check every file (format, columns, types, keys, joins) and summarise the data."""
    log_tables = transaction_tables(
        transactions, data, customer_col, time_col, amount_col, order_col, status_col
    )
    if log_tables is not None:
        from olist_fast.transactions import transactions_report

        report = guarded(lambda: transactions_report(log_tables, str(transactions)))
        print_report(report)
        typer.echo(f"OK: {transactions} is usable ({len(report.warnings)} warning(s)).")
        return
    path = guarded(lambda: resolve_data_dir(data))
    report = guarded(lambda: validate(path))
    print_report(report)
    if not report.ok:
        typer.echo(f"{len(report.errors)} error(s): {path} is not usable.", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"OK: {path} is usable ({len(report.warnings)} warning(s)).")


def parse_as_of(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise fail(
            f"--as-of {text!r}: expected a date like 2018-06-01 or 2018-06-01T12:00"
        ) from None


@app.command()
def features(
    out: Annotated[
        str, typer.Option("--out", help="Output file (.parquet or .csv): a path or a URL.")
    ],
    data: DataOpt = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Snapshot date (exclusive). Default: end of the healthy period."
        ),
    ] = None,
    horizon_days: Annotated[
        int, typer.Option("--horizon-days", min=1, help="Label window length in days.")
    ] = 90,
    engine: Annotated[
        Engine,
        typer.Option(
            "--engine",
            help="Polars engine for the feature plan; auto: in-memory on CSV (faster), "
            "streaming on Parquet (leaner); spark: the same plan on Spark, and --out is "
            "a Parquet dataset folder or URL.",
        ),
    ] = Engine.auto,
    strict: StrictOpt = False,
    storage_option: StorageOpt = None,
    spark_master: MasterOpt = None,
    spark_partitions: PartitionsOpt = None,
    transactions: TransactionsOpt = None,
    customer_col: CustomerColOpt = "customer_id",
    time_col: TimeColOpt = "timestamp",
    amount_col: AmountColOpt = "amount",
    order_col: OrderColOpt = None,
    status_col: StatusColOpt = None,
) -> None:
    """Write the per-customer feature table (the feature contract) as of a date."""
    from olist_fast.feature_files import write_feature_table

    when = parse_as_of(as_of)
    log_tables = transaction_tables(
        transactions, data, customer_col, time_col, amount_col, order_col, status_col
    )
    if engine == Engine.spark:
        from olist_fast.spark import features_to

        no_spark_options(storage_option=storage_option)
        t0 = time.perf_counter()
        with spark_data(log_tables, data, spark_master) as where:
            written = guarded(
                lambda: features_to(
                    out,
                    where,
                    when,
                    horizon_days,
                    spark_master,
                    partitions=spark_partitions,
                    say=say,
                    strict=strict,
                )
            )
        labels = "with labels" if written.labels else "no labels: window not covered"
        say(
            f"Wrote {written.rows:,} customers x {written.columns} columns ({labels}) to "
            f"{written.out} (Spark) in {time.perf_counter() - t0:.2f} s."
        )
        return
    if not out.lower().endswith((".parquet", ".csv")):
        raise fail(f"{out}: unsupported output extension (expected .parquet or .csv)")
    options = storage_options(storage_option)
    t0 = time.perf_counter()
    shape = guarded(
        lambda: write_feature_table(
            out,
            data,
            tables=log_tables,
            as_of=when,
            horizon_days=horizon_days,
            engine=None if engine == Engine.auto else engine_type(engine),
            strict=strict,
            storage_options=options,
        )
    )
    labels = "with labels" if shape.labels else "no labels: window not covered"
    say(
        f"Wrote {shape.rows:,} customers x {shape.columns} columns ({labels}) to {out} "
        f"in {time.perf_counter() - t0:.2f} s."
    )


@app.command("convert")
def convert_cmd(
    out: Annotated[Path, typer.Option("--out", help="Folder for the Parquet files.")],
    data: DataOpt = None,
    buckets: Annotated[
        int | None,
        typer.Option(
            "--buckets",
            min=1,
            help="Write a bucketed layout: N folders per customer table, by ranges of "
            "customer_unique_id. features, run, train and score read it; features then "
            "works one bucket at a time, so its memory follows the bucket, not the data. "
            "--data may be a layout (bucketed again).",
        ),
    ] = None,
    transactions: TransactionsOpt = None,
    customer_col: CustomerColOpt = "customer_id",
    time_col: TimeColOpt = "timestamp",
    amount_col: AmountColOpt = "amount",
    order_col: OrderColOpt = None,
    status_col: StatusColOpt = None,
) -> None:
    """Write typed Parquet copies of the tables (faster to read, for large data), or with
    --buckets a bucketed layout."""
    from olist_fast.layout import copy_tables, write_layout
    from olist_fast.transactions import olist_folder

    log_tables = transaction_tables(
        transactions, data, customer_col, time_col, amount_col, order_col, status_col
    )
    t0 = time.perf_counter()

    def convert(src: Location) -> None:
        if buckets is not None:
            layout = guarded(lambda: write_layout(src, out, buckets, say=say))
            say(
                f"Wrote a layout of {layout.buckets} buckets ({len(layout.tables)} tables) to "
                f"{out}/ in {time.perf_counter() - t0:.1f} s."
            )
            return
        written = guarded(lambda: copy_tables(src, out))
        say(f"Wrote {len(written)} Parquet files to {out}/ in {time.perf_counter() - t0:.1f} s.")

    if log_tables is None:
        convert(guarded(lambda: resolve_data_dir(data)))
        return
    # the log's tables, written once as typed Parquet (a temporary folder), then converted
    with ExitStack() as stack:
        convert(guarded(lambda: stack.enter_context(olist_folder(log_tables))))


AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of", help="Snapshot date A (exclusive). Default: end of the healthy period."
    ),
]
HorizonOpt = Annotated[int, typer.Option("--horizon-days", min=1, help="Label window H in days.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed: same seed, same scores.")]
JobsOpt = Annotated[
    int | None,
    typer.Option(
        "--n-jobs", min=1, help="Threads of the model stage. Default: the cores available."
    ),
]


def print_summary(result) -> None:
    from olist_fast.report import run_summary

    for line in run_summary(result):
        typer.echo(line)


FoldsOpt = Annotated[
    int,
    typer.Option(
        "--folds",
        min=0,
        max=12,
        help="Rolling-origin folds for choosing the setup (each tests one earlier horizon).",
    ),
]


@app.command()
def run(
    data: DataOpt = None,
    as_of: AsOfOpt = None,
    horizon_days: HorizonOpt = 90,
    out: Annotated[
        str, typer.Option("--out", help="Folder for every output (a local folder).")
    ] = "outputs",
    seed: SeedOpt = 0,
    folds: FoldsOpt = 3,
    compare: Annotated[
        bool,
        typer.Option(
            "--compare",
            help="Also backtest the other setups, the notebook approach and the unstacked "
            "check, and on generated data the oracle and feature ceiling (slower; a check to "
            "run once, not every night).",
        ),
    ] = False,
    strict: StrictOpt = False,
    storage_option: StorageOpt = None,
    n_jobs: JobsOpt = None,
    engine: Annotated[
        JobEngine,
        typer.Option("--engine", help="Build the snapshots and the scores here or on Spark."),
    ] = JobEngine.local,
    spark_master: MasterOpt = None,
    spark_partitions: PartitionsOpt = None,
    transactions: TransactionsOpt = None,
    customer_col: CustomerColOpt = "customer_id",
    time_col: TimeColOpt = "timestamp",
    amount_col: AmountColOpt = "amount",
    order_col: OrderColOpt = None,
    status_col: StatusColOpt = None,
) -> None:
    """The whole job: features, model choice, out-of-time backtest, scores, plots, models."""
    from olist_fast.config import RunConfig
    from olist_fast.pipeline import run as run_pipeline

    when = parse_as_of(as_of)
    options = storage_options(storage_option)
    log_tables = transaction_tables(
        transactions, data, customer_col, time_col, amount_col, order_col, status_col
    )

    def config_for(source: str | Path | None) -> RunConfig:
        return guarded(
            lambda: RunConfig(
                data=source,
                as_of=when,
                horizon_days=horizon_days,
                out=out,
                seed=seed,
                folds=folds,
                compare=compare,
                strict=strict,
                n_jobs=n_jobs,
            )
        )

    source: str | Path | None = data
    if log_tables is None and data is None:
        source = guarded(lambda: ensure_demo_data(say))
    t0 = time.perf_counter()
    if engine == JobEngine.spark:
        from olist_fast.spark import run_on_spark

        no_spark_options(storage_option=storage_option)
        with spark_data(log_tables, None if source is None else str(source), spark_master) as where:
            config = config_for(str(where))
            result = guarded(
                lambda: run_on_spark(config, spark_master, partitions=spark_partitions)
            )
    else:
        config = config_for(source)
        result = guarded(lambda: run_pipeline(config, tables=log_tables, storage_options=options))
    print_summary(result)
    typer.echo(f"Done in {time.perf_counter() - t0:.1f} s.")


@app.command()
def train(
    data: DataOpt = None,
    as_of: AsOfOpt = None,
    horizon_days: HorizonOpt = 90,
    out: Annotated[
        str, typer.Option("--out", help="Model folder to write (a local folder).")
    ] = "outputs/model",
    seed: SeedOpt = 0,
    setup: Annotated[
        str | None,
        typer.Option("--setup", help="Model setup; default: chosen on the folds, as run does."),
    ] = None,
    folds: FoldsOpt = 3,
    strict: StrictOpt = False,
    storage_option: StorageOpt = None,
    n_jobs: JobsOpt = None,
    transactions: TransactionsOpt = None,
    customer_col: CustomerColOpt = "customer_id",
    time_col: TimeColOpt = "timestamp",
    amount_col: AmountColOpt = "amount",
    order_col: OrderColOpt = None,
    status_col: StatusColOpt = None,
) -> None:
    """Choose and fit the model as of a date and save it (no backtest, no scores)."""
    from olist_fast.pipeline import train as train_model

    when = parse_as_of(as_of)
    options = storage_options(storage_option)
    log_tables = transaction_tables(
        transactions, data, customer_col, time_col, amount_col, order_col, status_col
    )
    t0 = time.perf_counter()
    model = guarded(
        lambda: train_model(
            data=data,
            tables=log_tables,
            as_of=when,
            horizon_days=horizon_days,
            model_dir=out,
            seed=seed,
            setup=setup,
            folds=folds,
            strict=strict,
            storage_options=options,
            n_jobs=n_jobs,
        )
    )
    typer.echo(f"Saved {model.setup} to {out}/ in {time.perf_counter() - t0:.1f} s.")


@app.command()
def score(
    model: Annotated[Path, typer.Option("--model", help="Model folder from train or run.")],
    as_of: Annotated[str, typer.Option("--as-of", help="Score the customers as of this date.")],
    data: DataOpt = None,
    out: Annotated[
        str, typer.Option("--out", help="Folder or URL for user_propensity_scores.csv.")
    ] = "outputs",
    strict: StrictOpt = False,
    storage_option: StorageOpt = None,
    engine: Annotated[
        JobEngine,
        typer.Option(
            "--engine",
            help="Score here, or in Spark's executors (then --out gets the Parquet dataset "
            "user_propensity_scores.parquet).",
        ),
    ] = JobEngine.local,
    spark_master: MasterOpt = None,
    spark_partitions: PartitionsOpt = None,
    transactions: TransactionsOpt = None,
    customer_col: CustomerColOpt = "customer_id",
    time_col: TimeColOpt = "timestamp",
    amount_col: AmountColOpt = "amount",
    order_col: OrderColOpt = None,
    status_col: StatusColOpt = None,
) -> None:
    """Score every customer as of a date with a saved model."""
    from olist_fast.pipeline import score as score_job

    when = parse_as_of(as_of)
    assert when is not None
    log_tables = transaction_tables(
        transactions, data, customer_col, time_col, amount_col, order_col, status_col
    )
    if engine == JobEngine.spark:
        from olist_fast.spark import score_to

        no_spark_options(storage_option=storage_option)
        with spark_data(log_tables, data, spark_master) as where:
            written = guarded(
                lambda: score_to(
                    out,
                    model,
                    where,
                    when,
                    spark_master,
                    partitions=spark_partitions,
                    say=say,
                    strict=strict,
                )
            )
        typer.echo(f"Wrote {written.rows:,} scores to {written.out} (Spark).")
        return
    options = storage_options(storage_option)
    table = guarded(
        lambda: score_job(
            model,
            data=data,
            tables=log_tables,
            as_of=when,
            out=out,
            strict=strict,
            storage_options=options,
        )
    )
    typer.echo(f"Wrote {table.height:,} scores to {out.rstrip('/')}/user_propensity_scores.csv.")


@app.command()
def bench(
    scales: Annotated[
        list[float] | None,
        typer.Argument(help="More scales: `bench --scale 1 10` and `bench 1 10` both work."),
    ] = None,
    scale: Annotated[
        list[float] | None, typer.Option("--scale", help="Data scale (1 is ~99k orders).")
    ] = None,
    stages: Annotated[
        list[str] | None, typer.Option("--stages", help="features and/or run; repeatable.")
    ] = None,
    runs: Annotated[int, typer.Option("--runs", min=1, help="Timed runs per command.")] = 3,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the measurements here.")
    ] = None,
    cache: Annotated[
        Path | None, typer.Option("--cache", help="Where generated data is kept.")
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Also draw time and peak memory of the features stage against orders "
            "(log-log) into this PNG.",
        ),
    ] = None,
    from_json: Annotated[
        Path | None,
        typer.Option(
            "--from-json", help="Measure nothing: print and plot the measurements in this file."
        ),
    ] = None,
    peers: Annotated[
        Path | None,
        typer.Option(
            "--peers",
            help="The folder of peer scripts (the repository's benchmarks/peers). Default: "
            "that folder beside the package or under the working directory; without it the "
            "peers are skipped.",
        ),
    ] = None,
) -> None:
    """Time the feature stage against its peers and the parse floor, and the whole run.

    Each implementation runs as its own process; the table gives median wall time, peak
    memory and how many times faster olist-fast is than each peer.
    """
    from olist_fast.bench import (
        STAGES,
        format_scaling,
        format_table,
        load_measurements,
        plot_scaling,
        scaling,
    )
    from olist_fast.bench import bench as run_bench

    if from_json is not None:
        results = guarded(lambda: load_measurements(from_json))
    else:
        results = guarded(
            lambda: run_bench(
                [*(scale or []), *(scales or [])] or [1.0],
                stages=stages or list(STAGES),
                runs=runs,
                cache=cache,
                json_path=json_out,
                say=say,
                peers=peers,
            )
        )
    typer.echo(format_table(results))
    slopes = format_scaling(scaling(results))
    if slopes:
        typer.echo("\n" + slopes)
    if plot is not None:
        written = guarded(lambda: plot_scaling(results, plot))
        say(f"Wrote {written}.")


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
