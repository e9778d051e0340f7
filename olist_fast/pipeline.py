"""``run``: the job as a short list of named stages, each timed; ``train`` and ``score``.

    read -> features (snapshots) -> select (folds) -> backtest -> final fit -> score -> write

Which snapshots train, select, test and score is stated once, in
:mod:`olist_fast.protocol`, and ``run`` and ``train`` both follow it; the choice of setup
is :mod:`olist_fast.selection`, the backtest :mod:`olist_fast.backtest`, fitting and
calibration :mod:`olist_fast.fitting`. Nothing at or after ``as_of`` is ever read.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from polars._typing import EngineType

from olist_fast.backtest import Backtest, Curves, Truth, run_backtest
from olist_fast.calibration import Drift
from olist_fast.config import RunConfig
from olist_fast.data import (
    Source,
    Tables,
    default_as_of,
    named_read_errors,
    open_tables,
    read_source,
)
from olist_fast.errors import OlistDataError, OlistUsageError
from olist_fast.features import FEATURES, build_snapshots
from olist_fast.features.orders import PURCHASE
from olist_fast.fitting import (
    SCORE_COLUMNS as SCORE_COLUMNS,  # re-exported: the score file's columns
)
from olist_fast.fitting import (
    FittedModel,
    fit_as_of,
    fit_final_model,
    package_versions,
    score_customers,
)
from olist_fast.io import (
    Location,
    StorageOptions,
    atomic_dir,
    atomic_path,
    is_url,
    write_frame,
)
from olist_fast.models import (
    Imbalance,
    Setup,
    all_setups,
    compared_setups,
    inference_steps,
    setup_named,
)
from olist_fast.parallel import using_threads
from olist_fast.protocol import (
    Protocol,
    Snapshots,
    make_snapshots,
)
from olist_fast.schema import PLAN_TABLES, TABLES
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


def feature_table(
    data: Location | None = None,
    *,
    tables: Tables | None = None,
    as_of: date | datetime | str | None = None,
    horizon_days: int = 90,
    engine: EngineType | None = None,
    strict: bool = False,
    storage_options: StorageOptions = None,
) -> pl.DataFrame:
    """The per-customer feature table (the feature contract) as of a date, as the
    ``features`` command writes it: ``as_of`` None is the end of the healthy period;
    labels where the data covers their window. An ``as_of`` before the first purchase is
    an error (the table would be empty); a label window that runs past the end of the
    healthy period is a warning (its labels are mostly zeros by construction). A bucketed
    layout (:mod:`olist_fast.layout`) is computed one bucket at a time; the table is the
    same."""
    source = read_source(data, as_of, tables=tables, storage_options=storage_options)
    frames: list[pl.DataFrame] = []
    feature_frames(source, horizon_days, frames.append, engine=engine, strict=strict)
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")


@dataclass(frozen=True)
class FeatureShape:
    """What a feature table came to: rows, columns, and whether it carries labels."""

    rows: int
    columns: int
    labels: bool


def feature_frames(
    source: Source,
    horizon_days: int,
    consume: Callable[[pl.DataFrame], None],
    *,
    engine: EngineType | None = None,
    strict: bool = False,
) -> FeatureShape:
    """The feature table of ``source`` at its ``as_of``, handed to ``consume`` in pieces
    that, one after the other, are the table in its order: the whole table at once, or
    one bucket at a time for a bucketed layout. The checks of :func:`feature_table` run
    over the whole table."""
    constant = _Constant()
    shape: list[tuple[int, bool]] = []

    def take(frame: pl.DataFrame) -> None:
        constant.see(frame, source.features_off)
        shape.append((frame.width, "bought_again" in frame.columns))
        consume(frame)

    with named_read_errors(source.files):
        if source.layout is None:
            (snap,) = build_snapshots(
                source.tables,
                [source.as_of],
                horizon_days=horizon_days,
                engine=engine or source.engine,
                strict=strict,
            )
            take(snap)
            rows = snap.height
        else:
            from olist_fast.bucketed import snapshots_by_bucket

            done = snapshots_by_bucket(
                source.layout,
                source.coverage,
                source.tables["orders"],
                [source.as_of],
                lambda _, frames: take(frames[0]),
                horizon_days=horizon_days,
                engine=engine or source.engine,
            )
            done.warn(strict=strict)
            rows = done.rows[0]
        if constant.names() and rows > 1:
            log.warning(
                "features with one value for every customer (their inputs hold nothing "
                "before as_of): %s",
                ", ".join(constant.names()),
            )
        if rows == 0:
            first = source.tables["orders"].select(pl.col(PURCHASE).min()).collect().item()
            raise OlistDataError(
                f"--as-of {source.as_of:%Y-%m-%d} is before the first purchase in the data "
                f"({first or 'none'}): no customer has a history order; choose a later --as-of"
            )
        width, labelled = shape[0]
        if labelled:
            end = source.as_of + timedelta(days=horizon_days)
            healthy_end = default_as_of(source.tables["orders"])
            if end > healthy_end:
                log.warning(
                    "the label window [%s, %s) runs past the end of the healthy period "
                    "(%s): orders there are sparse, so its labels are mostly zeros by "
                    "construction; choose an --as-of at least %d days before %s",
                    f"{source.as_of:%Y-%m-%d}",
                    f"{end:%Y-%m-%d}",
                    f"{healthy_end:%Y-%m-%d}",
                    horizon_days,
                    f"{healthy_end:%Y-%m-%d}",
                )
    return FeatureShape(rows, width, labelled)


class _Constant:
    """Features with one value (null counts as one) over every piece of a table."""

    def __init__(self) -> None:
        self.values: dict[str, set[Any]] = {f: set() for f in FEATURES}

    def see(self, frame: pl.DataFrame, off: frozenset[str]) -> None:
        for f, seen in self.values.items():
            if f in off or len(seen) > 1 or frame.height == 0:
                continue
            seen.update(frame[f].unique(maintain_order=True).head(2).to_list())

    def names(self) -> list[str]:
        return [f for f, seen in self.values.items() if len(seen) == 1]


def write_feature_table(
    out: Location,
    data: Location | None = None,
    *,
    tables: Tables | None = None,
    as_of: date | datetime | str | None = None,
    horizon_days: int = 90,
    engine: EngineType | None = None,
    strict: bool = False,
    storage_options: StorageOptions = None,
) -> FeatureShape:
    """:func:`feature_table` written to ``out`` (.parquet or .csv, a path or a URL), as
    the ``features`` command does: from a bucketed layout to a local file one bucket at a
    time (the whole table is never in memory), renamed into place once complete."""
    source = read_source(data, as_of, tables=tables, storage_options=storage_options)
    if source.layout is None or is_url(out):
        frames: list[pl.DataFrame] = []
        shape = feature_frames(source, horizon_days, frames.append, engine=engine, strict=strict)
        table = frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")
        write_frame(table, out, storage_options=storage_options)
        return shape
    from olist_fast.bucketed import appending

    with appending(Path(out)) as append:
        return feature_frames(source, horizon_days, append, engine=engine, strict=strict)


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


def feature_importance(model: FittedModel) -> dict[str, float]:
    """Model-native importances (trees) or absolute standardised coefficients (linear)."""
    final = inference_steps(model.classifier)[-1][1]
    names = model.encoding.names
    if hasattr(final, "named_estimators_"):  # the blend: its forest's importances
        final = final.named_estimators_["random_forest"]
    if hasattr(final, "feature_importances_"):
        values = np.asarray(final.feature_importances_, dtype=float)
    elif hasattr(final, "coef_"):
        values = np.abs(np.asarray(final.coef_, dtype=float)).ravel()
    else:
        return {}
    return dict(zip(names, values.tolist(), strict=True))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = package_versions()
    for n in ("matplotlib", "typer"):
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


def _write_json(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default, allow_nan=False))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer | np.floating):
        return o.item()
    if isinstance(o, datetime):
        return o.isoformat()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _finite(obj: Any) -> Any:
    """NaN and inf become null, so the JSON is strict."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


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


def run_metrics(
    protocol: Protocol,
    snaps: Snapshots,
    selection: Selection,
    bt: Backtest,
    drift: Drift | None,
) -> dict:
    """``metrics.json``: the protocol, the fold table and choice, the backtest."""
    return _finite(
        {
            "as_of": protocol.as_of.isoformat(),
            "horizon_days": protocol.horizon_days,
            "protocol": protocol.as_dict(),
            "training": {
                "final": Imbalance.of(
                    np.concatenate([snaps.labels(j) for j in protocol.train_indices(0)])
                ).as_dict()
            },
            "chosen_setup": selection.chosen.name,
            "final_calibration_drift": drift.as_dict() if drift else None,
            "selection": selection.as_dict(),
            "backtest": bt.as_dict(),
        }
    )


def write_outputs(
    config: RunConfig,
    out: Path,
    source: Source,
    snaps: Snapshots,
    final: FittedModel,
    scores: pl.DataFrame,
    metrics: dict,
    bt: Backtest,
    timer: Timer,
) -> dict[str, Path]:
    """Scores, metrics, plots, the model folder and the manifest, each written atomically."""
    from olist_fast.report import plot_run

    files = {
        "scores": out / "user_propensity_scores.csv",
        "metrics": out / "metrics.json",
        "plots": out / "model_plots.png",
        "manifest": out / "run_manifest.json",
        "model": out / "model",
    }
    with atomic_path(files["scores"]) as tmp:
        scores.write_csv(tmp)
    _write_json(metrics, files["metrics"])
    with atomic_path(files["plots"]) as tmp:
        plot_run(
            _curves(bt.curves),
            metrics["backtest"],
            feature_importance(final),
            tmp,
            title=f"olist-fast: {final.setup}, as_of {source.as_of:%Y-%m-%d}, "
            f"horizon {snaps.protocol.horizon_days} d",
        )
    with atomic_dir(files["model"]) as tmp_dir:
        model_files = [files["model"] / p.name for p in final.save(tmp_dir)]
    labelled = range(1, len(snaps.frames))
    manifest = {
        "config": config.as_json(),
        "resolved": {
            "data": str(source.location) if source.location else "in-memory tables",
            "as_of": source.as_of.isoformat(),
        },
        "seed": config.seed,
        "versions": _versions(),
        "inputs": input_fingerprints(source),
        "rows": {
            snaps.protocol.date(j).date().isoformat(): snaps.rows(j)
            for j in range(len(snaps.frames))
        },
        "positives": {
            snaps.protocol.date(j).date().isoformat(): int(snaps.labels(j).sum()) for j in labelled
        },
        "stage_seconds": timer.stages,
        "model_files": [str(p) for p in model_files],
    }
    _write_json(_finite(manifest), files["manifest"])
    return files


def input_fingerprints(source: Source) -> dict[str, dict[str, Any]]:
    """Per table the plan read: its file and SHA-256 (local files), its URL (object
    stores: not downloaded twice to hash), or its row count (frames in memory)."""
    out: dict[str, dict[str, Any]] = {}
    for name in PLAN_TABLES:
        spec = TABLES[name]
        if source.location is None:
            rows = source.tables[name].select(pl.len()).collect().item()
            out[spec.stem] = {"file": None, "rows": rows}
            continue
        where = source.files.get(name)
        if where is None:
            continue
        if is_url(where):
            out[spec.stem] = {"file": str(where), "sha256": None}
        elif "*" in str(where):  # a bucketed layout's part files: one hash over them all
            parts = sorted(Path(p) for p in glob.glob(str(where)))
            h = hashlib.sha256()
            for part in parts:
                h.update(f"{part.relative_to(part.parents[2])}:{_sha256(part)}\n".encode())
            out[spec.stem] = {"file": str(where), "sha256": h.hexdigest()}
        else:
            out[spec.stem] = {"file": str(where), "sha256": _sha256(Path(where))}
    return out


def _curves(c: Curves) -> dict[str, np.ndarray | None]:
    return {"y": c.y, "chosen": c.chosen, "naive": c.naive, "notebook": c.notebook}


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


def write_scores(table: pl.DataFrame, out: Location, storage_options: StorageOptions) -> str | Path:
    """``user_propensity_scores.csv`` in ``out``: renamed into place locally; on an object
    store one PUT, which the store makes visible only once complete."""
    if is_url(out):
        url = f"{str(out).rstrip('/')}/user_propensity_scores.csv"
        table.write_csv(url, storage_options=storage_options)
        return url
    target = Path(out) / "user_propensity_scores.csv"
    with atomic_path(target) as tmp:
        table.write_csv(tmp)
    return target
