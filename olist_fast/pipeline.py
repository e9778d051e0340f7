"""``run``: the job as a short list of named stages, each timed; ``train`` and ``score``.

    read -> features (snapshots) -> select (folds) -> backtest -> final fit -> score -> write

Which snapshots train, select, test and score is stated once, in
:mod:`olist_fast.protocol`, and ``run`` and ``train`` both follow it; the choice of setup
is :mod:`olist_fast.selection`, the backtest :mod:`olist_fast.backtest`, fitting and
calibration :mod:`olist_fast.fitting`. Nothing at or after ``as_of`` is ever read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from olist_fast.backtest import Backtest, Truth, run_backtest
from olist_fast.config import RunConfig
from olist_fast.data import (
    Source,
    Tables,
    named_read_errors,
    open_tables,
    read_source,
)
from olist_fast.errors import OlistUsageError
from olist_fast.feature_files import FeatureShape as FeatureShape
from olist_fast.feature_files import feature_frames as feature_frames
from olist_fast.feature_files import feature_table as feature_table
from olist_fast.feature_files import write_feature_table as write_feature_table
from olist_fast.features import build_snapshots
from olist_fast.fitting import (
    SCORE_COLUMNS as SCORE_COLUMNS,  # re-exported: the score file's columns
)
from olist_fast.fitting import (
    FittedModel,
    fit_as_of,
    fit_final_model,
    score_customers,
)
from olist_fast.io import (
    Location,
    StorageOptions,
    atomic_dir,
    is_url,
)
from olist_fast.models import (
    Imbalance,
    Setup,
    all_setups,
    compared_setups,
    setup_named,
)
from olist_fast.outputs import feature_importance as feature_importance
from olist_fast.outputs import input_fingerprints as input_fingerprints
from olist_fast.outputs import run_metrics as run_metrics
from olist_fast.outputs import write_outputs as write_outputs
from olist_fast.outputs import write_scores as write_scores
from olist_fast.parallel import using_threads
from olist_fast.protocol import (
    Protocol,
    Snapshots,
    make_snapshots,
)
from olist_fast.selection import Selection, select_setup
from olist_fast.timestamps import as_datetime

Say = Callable[[str], None]
log = logging.getLogger("olist_fast")


@dataclass
class Timer:
    """Stage timings, with one progress line per stage."""

    say: Say
    stages: dict[str, float] = field(default_factory=dict)

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        out = fn()
        self.stages[name] = round(time.perf_counter() - t0, 3)
        self.say(f"[{name}] {self.stages[name]:.2f} s")
        return out


def setup_pool(snaps: Snapshots, models: tuple[str, ...] | None) -> list[Setup]:
    """The setups to compare, simplest first. SMOTE enters only when the training set of
    the backtest (labels before A-H: the test window decides nothing) is imbalanced
    enough for it (:class:`olist_fast.models.Imbalance`). ``models`` names the setups to
    compare instead (any of :func:`olist_fast.models.all_setups`)."""
    if models is not None:
        return [c for c in all_setups() if c.name in models]
    y = np.concatenate([snaps.labels(j) for j in snaps.protocol.train_indices(1)])
    return compared_setups(smote=Imbalance.of(y).smote_possible)


def generated_truth(data_dir: Path | None, horizon_days: int, seed: int) -> Truth | None:
    """On an unmodified generated dataset, the oracle and feature-ceiling report of a
    labelled snapshot (:mod:`olist_fast.truth`); None on any other data."""
    from olist_fast.synth import load_simulation

    if data_dir is None:
        return None

    sim = load_simulation(data_dir)
    if sim is None:
        return None
    from olist_fast.truth import truth_report

    def report(
        when: datetime, snapshot: pl.DataFrame, scores: dict[str, np.ndarray]
    ) -> dict[str, Any]:
        return truth_report(sim, snapshot, horizon_days, when, random_state=seed, scores=scores)

    return report


@dataclass
class RunResult:
    """What ``run`` produced: the metrics, the chosen setup, the fitted model, its scores,
    the written files."""

    as_of: datetime
    chosen: str
    metrics: dict
    files: dict[str, Path]
    stages: dict[str, float]
    scores: pl.DataFrame
    model: FittedModel


def local_out(out: Location, what: str) -> Path:
    """``out`` as a local folder; a URL is refused in one line (``what`` writes several files)."""
    if is_url(out):
        raise OlistUsageError(
            f"{out}: {what} writes a folder of files (scores, metrics, plots, model) and needs "
            "a local folder; write it locally and copy it (object-store URLs work for the "
            "features and score outputs)"
        )
    return Path(out)


def warm_imports() -> threading.Thread:
    """Start importing what only the write stage needs (matplotlib for the figure, skops
    for the model files) on a background thread, while the feature and
    model stages keep the cores busy in compiled code that releases the GIL. An import
    the main thread reaches first simply waits for it (Python's per-module import
    locks). A failure here is ignored: the write stage imports them again and reports
    it there. Importing them changes no global state (the figure uses no pyplot)."""

    def load() -> None:
        try:
            import skops.io  # noqa: F401

            import olist_fast.report  # noqa: F401
        except Exception:  # raised again, with its context, where the import is needed
            return

    thread = threading.Thread(target=load, name="olist-fast-imports", daemon=True)
    thread.start()
    return thread


@dataclass
class Engine:
    """Where ``run`` builds its snapshots and scores the final one. :func:`run` holds the
    one list of stages (read, features, the model stage, score, write) and calls an
    engine for reading, for the snapshots and for scoring. This class is the
    single-machine engine (Polars, in this process; ``tables``: frames in memory instead
    of ``config.data``, ``storage_options``: for an object-store URL);
    :class:`olist_fast.spark.SparkEngine` supplies the same three stages from Spark."""

    tables: Tables | None = None
    storage_options: StorageOptions = None

    def read(self, config: RunConfig) -> Source:
        """The data and its resolved ``as_of``."""
        return read_source(
            config.data, config.as_of, tables=self.tables, storage_options=self.storage_options
        )

    def snapshots(self, source: Source, protocol: Protocol, config: RunConfig) -> Snapshots:
        """Every snapshot of ``protocol`` (snapshot 0 to score, the labelled ones to learn
        from) as Polars frames sorted by ``customer_unique_id``."""
        # a layout's older labelled snapshots are kept compact, except for --compare,
        # whose notebook approach fits on every row of one
        seed = None if config.compare else config.seed
        return make_snapshots(source, protocol, strict=config.strict, seed=seed)

    def score(self, final: FittedModel, snaps: Snapshots) -> pl.DataFrame:
        """The ranked scores of snapshot 0's customers (:data:`SCORE_COLUMNS`); a compact
        snapshot 0 is read from its file, slice by slice."""
        return score_customers(final, snaps.lazy(0) if 0 in snaps.compacted else snaps[0])


def run(
    config: RunConfig | None = None,
    /,
    *,
    tables: Tables | None = None,
    storage_options: StorageOptions = None,
    engine: Engine | None = None,
    **overrides: Any,
) -> RunResult:
    """The whole job: snapshots, model choice on folds, backtest, final fit, scores, files.

    Settings come from ``config`` and/or keyword ``overrides`` (the fields of
    :class:`RunConfig`; overrides win). The data is ``data`` (a folder or an object-store
    URL, read with ``storage_options``) or ``tables`` (frames in memory). ``engine``
    builds the snapshots and scores (default: this process, with Polars; see
    :class:`Engine`). Progress goes to the ``olist_fast`` logger."""
    config = RunConfig.merged(config, overrides)
    if engine is None:
        engine = Engine(tables, storage_options)
    elif tables is not None or storage_options is not None:
        raise OlistUsageError("run: pass tables and storage_options to the engine, not beside it")
    out = local_out(config.out, "run")
    timer = Timer(log.info)
    warm_imports()
    with using_threads(config.n_jobs):
        source = timer.run("read", lambda: engine.read(config))
        protocol = config.protocol(source.as_of)
        snaps = timer.run("features", lambda: engine.snapshots(source, protocol, config))
        stage = model_stage(snaps, config, source.data_dir, timer)
        snaps = snaps.scored_and_counted()  # the labelled rows are not read again
        scores = timer.run("score", lambda: engine.score(stage.final, snaps))
        files = timer.run(
            "write",
            lambda: write_outputs(
                config,
                out,
                source,
                snaps,
                stage.final,
                scores,
                stage.metrics,
                stage.backtest,
                timer,
            ),
        )
    return RunResult(
        source.as_of,
        stage.selection.chosen.name,
        stage.metrics,
        files,
        timer.stages,
        scores,
        stage.final,
    )


@dataclass(frozen=True)
class ModelStage:
    """What the model stage of ``run`` produced from the labelled snapshots."""

    selection: Selection
    backtest: Backtest
    final: FittedModel
    metrics: dict


def model_stage(
    snaps: Snapshots, config: RunConfig, data_dir: Path | None, timer: Timer
) -> ModelStage:
    """Choose a setup on the folds, backtest it, fit the final model: the stages every
    engine runs unchanged once its snapshots are built (``data_dir``: the local folder,
    where generated data carries its truth for ``compare``)."""
    seed = config.seed
    pool = setup_pool(snaps, config.models)
    selection = timer.run("select", lambda: select_setup(pool, snaps, seed=seed, say=log.info))
    log.info("chosen setup: %s (%s)", selection.chosen.name, selection.reason)
    horizon = snaps.protocol.horizon_days
    truth = generated_truth(data_dir, horizon, seed) if config.compare else None
    bt = timer.run(
        "backtest",
        lambda: run_backtest(
            selection.chosen,
            pool,
            snaps,
            seed=seed,
            n_boot=config.n_boot,
            compare=config.compare,
            truth=truth,
        ),
    )
    final, drift = timer.run(
        "final_fit", lambda: fit_final_model(selection.chosen, snaps, seed=seed)
    )
    metrics = run_metrics(snaps.protocol, snaps, selection, bt, drift)
    return ModelStage(selection, bt, final, metrics)


def train(
    config: RunConfig | None = None,
    /,
    *,
    tables: Tables | None = None,
    storage_options: StorageOptions = None,
    setup: str | None = None,
    model_dir: str | Path | None = None,
    save: bool = True,
    **overrides: Any,
) -> FittedModel:
    """Choose a setup on the folds (unless ``setup`` is given), fit it as ``run``'s final
    model is fitted (same protocol, same seed, same model), save it to ``model_dir``
    (default: ``<out>/model``; ``save=False``: not saved) and return it. Settings and
    data as for :func:`run`."""
    config = RunConfig.merged(config, overrides)
    if model_dir is not None:
        target = local_out(model_dir, "train")
    else:
        target = local_out(config.out, "train") / "model"

    def choose(snaps: Snapshots) -> Setup:
        chosen = select_setup(setup_pool(snaps, None), snaps, seed=config.seed, say=log.info)
        log.info("chosen setup: %s", chosen.chosen.name)
        return chosen.chosen

    model = fit_as_of(
        config,
        choose if setup is None else setup_named(setup),
        tables=tables,
        storage_options=storage_options,
    )
    if save:
        with atomic_dir(target) as tmp_dir:
            model.save(tmp_dir)
    return model


def score(
    model: str | Path | FittedModel,
    *,
    as_of: date | datetime | str,
    data: Location | None = None,
    tables: Tables | None = None,
    storage_options: StorageOptions = None,
    out: Location | None = None,
    strict: bool = False,
) -> pl.DataFrame:
    """Score every customer of the snapshot at ``as_of`` with a model (a fitted
    :class:`FittedModel` or the folder ``train``/``run`` wrote) and return the ranked
    table (columns :data:`SCORE_COLUMNS`). ``out`` (a folder or URL) also writes it as
    ``user_propensity_scores.csv`` there. A date before the end of the model's last
    label window is refused (:meth:`FittedModel.check_can_score`)."""
    fitted = model if isinstance(model, FittedModel) else FittedModel.load(Path(model))
    when = as_datetime(as_of)
    fitted.check_can_score(when)
    opened = open_tables(data, tables, storage_options)
    with named_read_errors(opened.files):
        (snap,) = build_snapshots(
            opened.tables,
            [when],
            horizon_days=fitted.horizon_days,
            labels=[False],
            engine=opened.engine,
            strict=strict,
        )
    with using_threads(None):
        table = score_customers(fitted, snap)
    if out is not None:
        write_scores(table, out, storage_options)
    return table
