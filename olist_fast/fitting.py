"""Fitting a chosen setup: the classifier, its calibration, the spend model, persistence."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sklearn.dummy import DummyRegressor
from sklearn.model_selection import GroupKFold, KFold

from olist_fast.calibration import Drift, PlattCalibration, measure_drift, with_drift
from olist_fast.config import RunConfig
from olist_fast.encode import Encoding
from olist_fast.io import OlistDataError, StorageOptions
from olist_fast.models import (
    Setup,
    by_rows,
    by_slices,
    fit_setup,
    make_spend_regressor,
    openmp_limited,
    predict_positive,
    setup_named,
)
from olist_fast.parallel import threads, using_threads
from olist_fast.persist import load_model, load_skops, save_model
from olist_fast.protocol import (
    Snapshots,
    TrainingSet,
    read_snapshots,
    training_set,
)
from olist_fast.timestamps import as_datetime

CALIBRATION_FOLDS = 3
log = logging.getLogger("olist_fast")


@dataclass
class FittedModel:
    """The chosen setup fitted on one training set: encoding, classifier, calibration,
    spend model."""

    setup: str
    encoding: Encoding
    classifier: Any
    calibration: PlattCalibration
    spend: Any
    horizon_days: int
    trained_windows: dict[int, tuple[int, float]] = field(default_factory=dict)
    """Observed and cross-fitted expected buyers per training snapshot (not saved)."""
    as_of: datetime | None = None
    """The date the model was fitted to score (its training snapshots all precede it)."""
    label_end: datetime | None = None
    """The end of its last training label window: the earliest date it may score."""
    spend_smearing: float = 1.0
    """Duan's smearing factor: E[1 + spend] = exp(E[log(1 + spend)]) * this (see
    :func:`fit_spend`)."""

    def score(self, X: np.ndarray) -> np.ndarray:
        """The classifier's uncalibrated score of an encoded matrix."""
        return predict_positive(self.classifier, X)

    def propensity(self, snapshot: pl.DataFrame) -> np.ndarray:
        return self.calibration(self.score_frame(snapshot))

    def score_frame(self, snapshot: pl.DataFrame) -> np.ndarray:
        """:meth:`score` of a snapshot, encoded slice by slice (:func:`by_slices`)."""
        return by_slices(snapshot.height, self.encoder(snapshot), self.score)

    def encoder(self, snapshot: pl.DataFrame | pl.LazyFrame) -> Callable[[int, int], np.ndarray]:
        """The encoded rows of one slice of ``snapshot`` (a lazy one, such as a spill file,
        is read in blocks of :data:`READ_BLOCK` rows, each read once)."""
        rows = snapshot if isinstance(snapshot, pl.DataFrame) else _Blocks(snapshot)
        return lambda offset, length: self.encoding.transform(rows.slice(offset, length))

    def spend_of(self, X: np.ndarray) -> np.ndarray:
        """Expected spend if the customer buys (a mean, not the median the log model
        predicts), from an encoded matrix."""
        pred = by_rows(self.spend.predict, X)
        return np.maximum(np.exp(pred) * self.spend_smearing - 1.0, 0.0)

    def save(self, folder: str | Path) -> list[Path]:
        """Write the model folder: the classifier (skops or XGBoost's own format), the
        encoding, the spend model and ``model.json``, which records what ``load`` and
        ``score`` check: the dates, the feature names in order, the encoding width and
        the package versions."""
        import skops.io as sio

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = save_model(self.classifier, folder)
        self.encoding.save(folder / "encoding.json")
        sio.dump(self.spend, folder / "spend.skops")
        names = self.encoding.names
        meta = {
            "format": MODEL_FORMAT,
            "setup": self.setup,
            "horizon_days": self.horizon_days,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "label_end": self.label_end.isoformat() if self.label_end else None,
            "features": names,
            "n_features": len(names),
            "calibration": {"a": self.calibration.a, "b": self.calibration.b},
            "spend_smearing": self.spend_smearing,
            "versions": package_versions(),
        }
        (folder / "model.json").write_text(json.dumps(meta, indent=2))
        return [*written, folder / "encoding.json", folder / "spend.skops", folder / "model.json"]

    @classmethod
    def load(cls, folder: str | Path) -> FittedModel:
        """:meth:`_load`, with any failure to read a damaged folder (a missing key, bad
        JSON, a corrupt XGBoost file) as a one-line :class:`OlistDataError`."""
        try:
            return cls._load(Path(folder))
        except OlistDataError:
            raise
        except Exception as exc:  # a damaged file: the user's data, not our bug
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise OlistDataError(
                f"{folder}: not a usable model folder ({type(exc).__name__}: {first})"
            ) from exc

    @classmethod
    def _load(cls, folder: Path) -> FittedModel:
        """A model folder written by :meth:`save`, checked: its format, its recorded
        feature names against this version's encoding, and the width the classifier was
        fitted on. Any mismatch is a one-line :class:`OlistDataError`."""
        folder = Path(folder)
        meta_path = folder / "model.json"
        if not meta_path.is_file():
            raise OlistDataError(f"{meta_path}: not found (expected a model folder from train/run)")
        try:
            meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise OlistDataError(f"{meta_path}: not valid JSON ({exc})") from None
        found = meta.get("format") if isinstance(meta, dict) else None
        if found != MODEL_FORMAT:
            raise OlistDataError(
                f"{meta_path}: model format {found}, expected {MODEL_FORMAT} (a model saved "
                "by another version, without the dates score checks: train it again)"
            )
        encoding = Encoding.load(folder / "encoding.json")
        names = encoding.names
        if meta["features"] != names or meta["n_features"] != len(names):
            first = next(
                (
                    f"{a!r} vs {b!r}"
                    for a, b in zip(meta["features"], names, strict=False)
                    if a != b
                ),
                f"{meta['n_features']} vs {len(names)} columns",
            )
            raise OlistDataError(
                f"{meta_path}: its features differ from this version's encoding ({first}); "
                "train the model again"
            )
        classifier = load_model(folder)
        width = getattr(classifier, "n_features_in_", None)
        if width is not None and int(width) != len(names):
            raise OlistDataError(
                f"{folder}: the classifier was fitted on {int(width)} columns but the "
                f"encoding gives {len(names)}; the folder mixes files of different models"
            )
        return cls(
            setup=meta["setup"],
            encoding=encoding,
            classifier=classifier,
            calibration=PlattCalibration(**meta["calibration"]),
            spend=load_skops(folder / "spend.skops"),
            horizon_days=int(meta["horizon_days"]),
            as_of=_date_or_none(meta["as_of"]),
            label_end=_date_or_none(meta["label_end"]),
            spend_smearing=float(meta.get("spend_smearing", 1.0)),
        )

    @classmethod
    def fit(
        cls,
        tables: Mapping[str, Any],
        *,
        as_of: date | datetime | str,
        setup: str = "logistic",
        horizon_days: int = 90,
        seed: int = 0,
    ) -> FittedModel:
        """A named setup fitted as of ``as_of`` on ``tables`` (typed LazyFrames or frames
        in memory), exactly as ``train(setup=...)`` fits it, without choosing or saving."""
        config = RunConfig(as_of=as_datetime(as_of), horizon_days=horizon_days, seed=seed)
        return fit_as_of(config, setup_named(setup), tables=tables)

    def scores(self, snapshot: pl.DataFrame) -> pl.DataFrame:
        """The ranked score table of a snapshot you built (:func:`olist_fast.score_customers`).
        A snapshot carries no date: check it with :meth:`check_can_score`, as ``score`` does."""
        return score_customers(self, snapshot)

    def check_can_score(self, as_of: date | datetime | str) -> None:
        """Refuse to score a date before the end of the model's last label window: its
        training labels would reach past the date being scored (leakage)."""
        as_of = as_datetime(as_of)
        if self.label_end is not None and as_of < self.label_end:
            raise OlistDataError(
                f"--as-of {as_of:%Y-%m-%d} is before {self.label_end:%Y-%m-%d}, the end of "
                "the model's last label window: its training saw purchases after that date "
                "(leakage); score a later date or train a model as of this one"
            )


MODEL_FORMAT = 2
"""The model folder's layout version; 2 added the dates, feature names and versions."""


def _date_or_none(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def package_versions() -> dict[str, str]:
    """The versions that produced a result (Python and the packages that compute it)."""
    import platform
    from importlib import metadata

    names = [
        "olist-fast",
        "polars",
        "numpy",
        "scikit-learn",
        "imbalanced-learn",
        "xgboost",
        "skops",
        "pyarrow",
    ]
    out = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


@dataclass(frozen=True)
class Calibrated:
    """A calibration and, per training snapshot, its observed and expected buyers from
    the cross-fitted scores (weighted back to every non-buyer): the model's miss on the
    windows it was trained on, measured without in-sample optimism."""

    calibration: PlattCalibration
    windows: dict[int, tuple[int, float]]


def calibrate(c: Setup, ts: TrainingSet, *, seed: int) -> Calibrated:
    """Platt calibration on the most recent training snapshot: every training row gets a
    score from a model that never saw its customer (``CALIBRATION_FOLDS`` folds grouped
    by customer), and the map is fitted on the rows of the latest snapshot only, weighted
    back to the whole population of non-buyers.

    The latest snapshot is the one closest in time to the scores it will calibrate; older
    snapshots carry older buying rates (the rate grows as a shop grows)."""
    folds = GroupKFold(n_splits=CALIBRATION_FOLDS, shuffle=True, random_state=seed)
    splits = list(folds.split(ts.X, ts.y, ts.groups))

    def held_out_scores(split: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        fit_idx, held_idx = split
        return predict_positive(fit_setup(c, ts.X[fit_idx], ts.y[fit_idx], seed), ts.X[held_idx])

    oof = np.empty(len(ts.y))
    with ThreadPoolExecutor(threads()) as ex:  # the folds' fits side by side
        for (_, held_idx), s in zip(splits, ex.map(held_out_scores, splits), strict=True):
            oof[held_idx] = s
    rows = ts.latest
    cal = PlattCalibration.fit(oof[rows], ts.y[rows], sample_weight=ts.weight[rows])
    prob = cal(oof)
    windows = {
        int(j): (
            int(ts.y[ts.snapshot == j].sum()),
            float((ts.weight * prob)[ts.snapshot == j].sum()),
        )
        for j in np.unique(ts.snapshot)
    }
    return Calibrated(cal, windows)


SPEND_MIN_BUYERS = 30
"""Fewer buyers than this fit no spend model: their mean spend is everyone's estimate."""
SPEND_FOLDS = 5
SPEND_MAX_BUYERS = 20_000
"""The spend model sees at most this many buyers, a uniform sample of the training set's
(every buyer below it): its few small trees of log spend gain nothing measurable from
more, and it is fitted ``SPEND_FOLDS`` + 1 times (docs/performance.md)."""
SPEND_TAIL = 3
"""The smearing residuals are capped at the value that this many buyers exceed (at
most the 99th percentile), so a single buyer who spent thousands of times the median
cannot move every customer's expected spend."""


@dataclass(frozen=True)
class SpendFit:
    """The spend model and its smearing factor."""

    model: Any
    smearing: float


def fit_spend(ts: TrainingSet, *, seed: int) -> SpendFit:
    """E[spend | buys], fitted on the buyers of the training set: a model of
    log(1 + spend), whose exponential estimates something near the median of a buyer's
    spend, times Duan's smearing factor, the mean of exp(residual), which turns it into
    the mean (spend is heavy-tailed: its mean lies well above its median). The
    residuals are cross-fitted (``SPEND_FOLDS`` folds: in-sample ones are too small) and
    capped (``SPEND_TAIL``). A buyer whose window is net-negative (refunds larger than
    the purchases) counts as spending zero. With fewer than ``SPEND_MIN_BUYERS`` buyers,
    every customer's expected spend is the buyers' mean spend (logged). Above
    ``SPEND_MAX_BUYERS`` buyers, a uniform sample of them (drawn with ``seed``)."""
    buyers = np.flatnonzero(ts.y == 1)
    if len(buyers) > SPEND_MAX_BUYERS:
        picked = np.random.default_rng(seed).choice(len(buyers), SPEND_MAX_BUYERS, replace=False)
        buyers = buyers[np.sort(picked)]
    X, y = ts.X[buyers], np.log1p(np.maximum(ts.spend[buyers], 0.0))
    if len(y) < SPEND_MIN_BUYERS:
        log.warning(
            "only %d buyers in the training windows: expected spend is their mean spend "
            "(a spend model needs at least %d)",
            len(y),
            SPEND_MIN_BUYERS,
        )
        return SpendFit(DummyRegressor().fit(X, y), _smearing(y - y.mean(), cap=False))
    oof = np.empty(len(y))
    splits = KFold(SPEND_FOLDS, shuffle=True, random_state=seed).split(X)
    with openmp_limited():
        for fit_idx, held in splits:
            model = make_spend_regressor(random_state=seed).fit(X[fit_idx], y[fit_idx])
            oof[held] = model.predict(X[held])
        return SpendFit(make_spend_regressor(random_state=seed).fit(X, y), _smearing(y - oof))


def _smearing(residuals: np.ndarray, *, cap: bool = True) -> float:
    """Duan's smearing factor, the mean of exp(residual), the residuals capped at the
    value ``SPEND_TAIL`` of them exceed (at most their 99th percentile)."""
    if cap and len(residuals) > SPEND_TAIL:
        q = min(0.99, 1 - SPEND_TAIL / len(residuals))
        residuals = np.minimum(residuals, np.quantile(residuals, q))
    return float(np.mean(np.exp(residuals)))


def fit_calibrated(
    c: Setup, ts: TrainingSet, *, seed: int, horizon_days: int, spend: bool = True
) -> FittedModel:
    """Fit the setup on a training set, calibrated (:func:`calibrate`), with the spend
    model beside it (``spend=False``: without, for a model that only measures drift)."""
    cal = calibrate(c, ts, seed=seed)
    classifier = fit_setup(c, ts.X, ts.y, seed)
    spent = fit_spend(ts, seed=seed) if spend else None
    return FittedModel(
        c.name,
        ts.encoding,
        classifier,
        cal.calibration,
        spent.model if spent else None,
        horizon_days,
        cal.windows,
        spend_smearing=spent.smearing if spent else 1.0,
    )


def fit_window(
    c: Setup, snaps: Snapshots, test: int, *, seed: int, spend: bool = True
) -> FittedModel:
    """The setup fitted and calibrated for window ``test`` (trained on the snapshots
    before it), without drift."""
    ts = training_set(snaps, test, seed=seed)
    model = fit_calibrated(c, ts, seed=seed, horizon_days=snaps.protocol.horizon_days, spend=spend)
    protocol = snaps.protocol
    label_end = max(protocol.date(j) for j in protocol.train_indices(test)) + timedelta(
        days=protocol.horizon_days
    )
    return replace(model, as_of=protocol.date(test), label_end=label_end)


SCORE_COLUMNS = (
    "customer_unique_id",
    "propensity",
    "decile",
    "rank",
    "expected_spend",
    "expected_value",
)


READ_BLOCK = 500_000
"""Rows read at once from a lazy snapshot that is encoded slice by slice: reading each
small slice from its file anew re-reads the file's batches around it."""


class _Blocks:
    """The rows of a lazy frame read in blocks of :data:`READ_BLOCK`, the last two kept:
    :func:`~olist_fast.models.by_slices` asks for its slices in order (two threads at a
    time), so each block is read once."""

    def __init__(self, lazy: pl.LazyFrame) -> None:
        self.lazy = lazy
        self.kept: dict[int, pl.DataFrame] = {}
        self.lock = threading.Lock()

    def block(self, k: int) -> pl.DataFrame:
        with self.lock:
            if k not in self.kept:
                self.kept[k] = self.lazy.slice(k * READ_BLOCK, READ_BLOCK).collect()
                while len(self.kept) > 2:  # the oldest read goes (dicts keep that order)
                    del self.kept[next(iter(self.kept))]
            return self.kept[k]

    def slice(self, offset: int, length: int) -> pl.DataFrame:
        first, last = offset // READ_BLOCK, (offset + max(length, 1) - 1) // READ_BLOCK
        parts = [self.block(k) for k in range(first, last + 1)]
        rows = pl.concat(parts, how="vertical", rechunk=False) if len(parts) > 1 else parts[0]
        return rows.slice(offset - first * READ_BLOCK, length)


def score_customers(model: FittedModel, snapshot: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """The ranked score table of a snapshot: one row per customer, best first. A lazy
    snapshot (a file) is read slice by slice, never whole."""
    if isinstance(snapshot, pl.LazyFrame):
        # one buffer: a file read in pieces gives a column of many chunks, and gathering
        # from those in the score order is several times slower
        ids = snapshot.select("customer_unique_id").collect().to_series().rechunk()
    else:
        ids = snapshot["customer_unique_id"]
    both = by_slices(
        ids.len(),
        model.encoder(snapshot),
        lambda X: np.column_stack([model.score(X), model.spend_of(X)]),
    )
    p = model.calibration(both[:, 0])
    spend = np.ascontiguousarray(both[:, 1])
    del both
    order = best_first(p, ids)
    p, spend = p[order], spend[order]
    n = len(p)
    rank = np.arange(1, n + 1, dtype=np.int64)
    return pl.DataFrame(
        {
            "customer_unique_id": ids.gather(order),
            "propensity": p,
            "expected_spend": spend,
            "expected_value": p * spend,
            "rank": rank,
            "decile": (rank * 10 + max(n, 1) - 1) // max(n, 1),  # ceil(rank * 10 / n)
        }
    ).select(SCORE_COLUMNS)


def best_first(p: np.ndarray, ids: pl.Series) -> np.ndarray:
    """The order of the score table: ``p`` highest first, ties by ``ids`` A-Z. A
    snapshot's ids are sorted, so that is a stable sort of ``p`` alone (no sort keys of
    the ids: a score table holds millions of customers)."""
    keys = pl.DataFrame({"p": p})
    if ids.is_sorted():
        order = pl.arg_sort_by("p", descending=True, maintain_order=True)
    else:
        keys = keys.with_columns(ids.alias("id"))
        order = pl.arg_sort_by("p", "id", descending=[True, False])
    return keys.select(order).to_series().to_numpy()


def fit_final_model(
    chosen: Setup, snaps: Snapshots, *, seed: int
) -> tuple[FittedModel, Drift | None]:
    """The model that scores ``as_of``: fitted on snapshots 1..T, calibrated on snapshot 1,
    its calibration moved to the level of the scored window (:class:`Drift`)."""
    model = fit_window(chosen, snaps, 0, seed=seed)
    left_out = [f for f in model.encoding.features_left_out() if f not in snaps.features_off]
    if left_out:
        log.warning(
            "features left out of the model, one value or missing for every training customer: %s",
            ", ".join(left_out),
        )
    drift = measure_drift(model, snaps, 0)
    return with_drift(model, drift), drift


def fit_as_of(
    config: RunConfig,
    setup: Setup | Callable[[Snapshots], Setup],
    *,
    tables: Mapping[str, Any] | None = None,
    storage_options: StorageOptions = None,
) -> FittedModel:
    """The final model of ``config``'s protocol (:func:`fit_final_model`, its level
    measured on snapshot 0), for a setup given, or chosen on the snapshots by ``setup``
    when it is a function of them; within ``config.n_jobs`` threads."""
    with using_threads(config.n_jobs):
        # snapshot 0 too: the level of the final calibration is measured on it
        snaps = read_snapshots(config, tables=tables, storage_options=storage_options)
        chosen = setup if isinstance(setup, Setup) else setup(snaps)
        model, _ = fit_final_model(chosen, snaps, seed=config.seed)
    return model
