"""Calibration: the Platt map from a model's scores to probabilities, and the level of
the window being scored (:class:`Drift`), which moves the map's intercept so that the
expected buyers there follow the shop's buying rate.

Platt scaling is fitted on cross-fitted scores of the latest training window
(:func:`olist_fast.fitting.calibrate`); the level is measured here on the labelled
windows and the scored one. docs/totals.md has the level rules measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from sklearn.linear_model import LogisticRegression

from olist_fast.protocol import Snapshots
from olist_fast.sampling import DRIFT_ROWS, row_hashes

if TYPE_CHECKING:
    from olist_fast.fitting import FittedModel


@dataclass(frozen=True)
class PlattCalibration:
    """p = sigmoid(a * logit(score) + b), fitted on out-of-fold training scores."""

    a: float
    b: float

    @staticmethod
    def _logit(score: np.ndarray) -> np.ndarray:
        s = np.clip(score, 1e-6, 1 - 1e-6)
        return np.log(s / (1 - s))

    @classmethod
    def fit(
        cls, score: np.ndarray, y: np.ndarray, *, sample_weight: np.ndarray | None = None
    ) -> PlattCalibration:
        """``sample_weight`` undoes a sampling of the rows (1 / sampling rate).

        A slope that is not positive would turn the model's ranking upside down: it means
        the scores did not rank the buyers of this window (a handful of buyers, or a
        model that learned nothing). Then the slope is 1, the model's own scale, and only
        the level is fitted, so that the expected buyers match the observed ones and the
        model's ranking stands."""
        z = cls._logit(score)
        lr = LogisticRegression(C=1e6, max_iter=1000)
        lr.fit(z.reshape(-1, 1), y, sample_weight=sample_weight)
        a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        if a > 0:
            return cls(a=a, b=b)
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
        return cls(a=1.0, b=log_odds_shift(z, float(np.sum(w * y)), weight=w, bound=30.0, steps=80))

    def __call__(self, score: np.ndarray) -> np.ndarray:
        z = self.a * self._logit(score) + self.b
        return 1.0 / (1.0 + np.exp(-z))


def log_odds_shift(
    z: np.ndarray,
    observed: float,
    *,
    weight: np.ndarray | None = None,
    bound: float = 5.0,
    steps: int = 60,
) -> float:
    """The ``b`` in ``[-bound, bound]`` for which ``sum(weight * sigmoid(z + b))`` equals
    ``observed`` (bisection, ``steps`` halvings: the sum increases with ``b``)."""
    numer = 1.0 if weight is None else weight
    lo, hi = -bound, bound
    for _ in range(steps):
        mid = (lo + hi) / 2
        if float(np.sum(numer / (1.0 + np.exp(-(z + mid))))) < observed:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def intercept_shift(prob: np.ndarray, observed: float) -> float:
    """The shift of the log-odds that makes ``prob`` sum to ``observed``."""
    z = np.log(np.clip(prob, 1e-12, 1 - 1e-12) / np.clip(1 - prob, 1e-12, 1))
    return log_odds_shift(z, observed)


DRIFT_MIN_BUYERS = 30
"""A labelled window counts towards the drift trend with at least this many buyers."""
DRIFT_MIN_WINDOWS = 3
"""Points the trend needs, the calibration window included."""
DRIFT_MAX_FACTOR = 1.5
"""Neither the trend nor the combined level moves expected buyers by more than this
factor either way (a line through a few noisy windows can point anywhere);
``Drift.clamped`` says when the combined level was held."""
LOG_MAX = float(np.log(DRIFT_MAX_FACTOR))


def drift_sample(snapshot: pl.DataFrame) -> pl.DataFrame:
    """At most ``DRIFT_ROWS`` customers of a snapshot, in an order that depends on their
    content alone (so the sample, and the float sums over it, do not change when the
    customers are renamed): those with the smallest row hashes, a fixed pseudo-random
    sample."""
    h = row_hashes(snapshot)
    if snapshot.height <= DRIFT_ROWS:
        return snapshot[np.argsort(h, kind="stable")]
    keep = np.argpartition(h, DRIFT_ROWS - 1)[:DRIFT_ROWS]
    return snapshot[keep[np.argsort(h[keep], kind="stable")]]


def sampled_propensity(
    model: FittedModel, snapshot: pl.DataFrame, rows: int | None = None
) -> tuple[np.ndarray, float]:
    """The model's probabilities on the :func:`drift_sample` of ``snapshot``, and its
    expected buyers in the whole snapshot (their sum, scaled up to ``rows``: the
    snapshot's customers, when ``snapshot`` is a compact one's kept rows, which hold the
    same drift sample)."""
    sample = drift_sample(snapshot)
    prob = model.propensity(sample)
    whole = snapshot.height if rows is None else rows
    return prob, float(prob.sum()) * whole / sample.height


def expected_buyers(model: FittedModel, snapshot: pl.DataFrame, rows: int | None = None) -> float:
    """The model's expected buyers in ``snapshot`` (estimated on its drift sample)."""
    return sampled_propensity(model, snapshot, rows)[1]


@dataclass(frozen=True)
class Drift:
    """Where the buying rate of the scored window lies, beyond what the model explains:
    the mean (in logs) of two forecasts of its buyers.

    * **trend**: for each labelled window j the model was not calibrated on, its
      expected buyers are compared with the observed ones, r_j = log(observed /
      expected); the calibration window counts as r = 0 (Platt matched the two there, on
      cross-fitted scores). A straight line through the r_j (weighted by buyers),
      extended to the scored window, moves the model's expected buyers there (a growing
      shop shows r_j falling the further back j lies). With fewer than
      ``DRIFT_MIN_WINDOWS`` windows of ``DRIFT_MIN_BUYERS`` buyers, no trend: the model's
      own expected buyers.
    * **rate**: the calibration window's observed buying rate, per customer, carried to
      the scored window's customers (the level a shop keeps when its customers age but
      keep buying).

    The two err in different ways (the trend on ageing shops and short noisy series, the
    rate on growing ones), and neither wins on every shop; their mean misses less than
    either (docs/totals.md has the rules measured). The calibration's log-odds are
    shifted to expect that many buyers."""

    windows: tuple[datetime, ...]
    buyers: tuple[int, ...]
    log_ratios: tuple[float, ...]
    per_window: float
    """The trend's slope: change of log(observed / expected) per window forward."""
    expected_ratio: float
    """Expected buyers are multiplied by this (within the clamp): the combined forecast
    over the model's own expected buyers."""
    shift: float
    clamped: bool = False
    model_buyers: float = math.nan
    """The model's own expected buyers in the scored window (calibrated, no drift)."""
    trend_buyers: float = math.nan
    rate_buyers: float = math.nan

    def as_dict(self) -> dict:
        return {
            "windows": [w.isoformat() for w in self.windows],
            "buyers": list(self.buyers),
            "log_observed_over_expected": list(self.log_ratios),
            "trend_per_window": self.per_window,
            "expected_buyers": {
                "model": self.model_buyers,
                "trend": self.trend_buyers,
                "rate": self.rate_buyers,
                "combined": self.model_buyers * self.expected_ratio,
            },
            "expected_buyers_factor": self.expected_ratio,
            "log_odds_shift": self.shift,
            "clamped": self.clamped,
        }


def measure_drift(model: FittedModel, snaps: Snapshots, target: int) -> Drift | None:
    """The level of ``model`` (fitted for window ``target``) for the scored window: its
    rate trend over the older labelled windows and the calibration window's rate, both
    carried to ``target`` (:class:`Drift`); None when the calibration window has fewer
    than ``DRIFT_MIN_BUYERS`` buyers."""
    p = snaps.protocol
    latest = min(model.trained_windows)
    latest_buyers = model.trained_windows[latest][0]
    if latest_buyers < DRIFT_MIN_BUYERS or snaps.rows(latest) == 0:
        return None
    # the training windows, from cross-fitted scores (no in-sample optimism) ...
    rows = [
        (j, obs, float(np.log(obs / exp)))
        for j, (obs, exp) in sorted(model.trained_windows.items())
        if obs >= DRIFT_MIN_BUYERS and exp > 0
    ]
    # ... and older windows the model was never trained on, scored by it
    for j in p.drift_indices(target):
        y = snaps.labels(j) if j <= p.depth else np.zeros(0)
        if y.sum() >= DRIFT_MIN_BUYERS:
            rows.append(
                (
                    j,
                    int(y.sum()),
                    float(np.log(y.sum() / expected_buyers(model, snaps[j], snaps.rows(j)))),
                )
            )
    js, buyers, logr = (np.array(v, dtype=np.float64) for v in zip(*rows, strict=True))
    if len(rows) >= DRIFT_MIN_WINDOWS:
        slope, intercept = np.polyfit(js, logr, 1, w=np.sqrt(buyers))
        trend = float(np.clip(intercept + slope * target, -LOG_MAX, LOG_MAX))
    else:
        slope, trend = 0.0, 0.0
    prob, model_buyers = sampled_propensity(model, snaps[target], snaps.rows(target))
    rate_buyers = latest_buyers * snaps.rows(target) / snaps.rows(latest)
    trend_buyers = model_buyers * float(np.exp(trend))
    raw = float(np.sqrt(trend_buyers * rate_buyers) / model_buyers)
    ratio = min(max(raw, 1 / DRIFT_MAX_FACTOR), DRIFT_MAX_FACTOR)
    return Drift(
        windows=tuple(p.date(int(j)) for j in js),
        buyers=tuple(int(b) for b in buyers),
        log_ratios=tuple(float(r) for r in logr),
        per_window=float(-slope),
        expected_ratio=ratio,
        shift=intercept_shift(prob, prob.sum() * ratio),
        clamped=ratio != raw,
        model_buyers=model_buyers,
        trend_buyers=trend_buyers,
        rate_buyers=rate_buyers,
    )


def with_drift(model: FittedModel, drift: Drift | None) -> FittedModel:
    """The model with its calibration's log-odds shifted by the drift (none: as it is)."""
    if drift is None:
        return model
    cal = replace(model.calibration, b=model.calibration.b + drift.shift)
    return replace(model, calibration=cal)
