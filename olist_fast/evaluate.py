"""Ranking and calibration metrics, the bootstrap interval, and Platt calibration.

Naming as in scikit-learn: ``*_score`` is higher-better, ``*_error``/``*_loss``
lower-better.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def auc_score(y: np.ndarray, score: np.ndarray) -> float:
    return float(roc_auc_score(y, score))


def bootstrap_auc_interval(
    y: np.ndarray, score: np.ndarray, *, n_boot: int = 200, random_state: int = 0
) -> tuple[float, float]:
    """95 % percentile interval of ROC AUC over bootstrap resamples of the rows.

    Positives and negatives are resampled separately (stratified). The negatives are
    sorted once; a resample is a vector of counts over them, so each AUC (the
    Mann-Whitney statistic) costs one bincount and one cumulative sum.
    """
    rng = np.random.default_rng(random_state)
    pos, neg = score[y == 1], np.sort(score[y == 0])
    n_pos, n_neg = len(pos), len(neg)
    if n_pos == 0 or n_neg == 0:
        return (math.nan, math.nan)
    lo_idx = np.searchsorted(neg, pos, side="left")  # negatives strictly below
    hi_idx = np.searchsorted(neg, pos, side="right")  # ... or tied
    aucs = np.empty(n_boot)
    for b in range(n_boot):
        neg_counts = np.bincount(rng.integers(0, n_neg, n_neg), minlength=n_neg)
        cum = np.concatenate(([0], np.cumsum(neg_counts)))
        below = cum[lo_idx]
        ties = cum[hi_idx] - below
        pos_w = np.bincount(rng.integers(0, n_pos, n_pos), minlength=n_pos)
        aucs[b] = (pos_w * (below + 0.5 * ties)).sum() / (n_pos * n_neg)
    lo, hi = np.percentile(aucs, [2.5, 97.5])
    return float(lo), float(hi)


def ranking_order(score: np.ndarray, tiebreak: np.ndarray | None = None) -> np.ndarray:
    """Row indices from the highest score down; ties keep ``tiebreak`` (then row) order."""
    keys = (np.arange(len(score)),) if tiebreak is None else (np.arange(len(score)), tiebreak)
    return np.lexsort((*keys, -score))


def lift_at(y: np.ndarray, score: np.ndarray, fraction: float) -> float:
    """Positive rate among the top ``fraction`` of rows, over the overall positive rate."""
    base = y.mean()
    if base == 0:
        return math.nan
    k = max(1, math.ceil(fraction * len(y)))
    top = ranking_order(score)[:k]
    return float(y[top].mean() / base)


def deciles(y: np.ndarray, score: np.ndarray) -> dict[str, list[float]]:
    """Per decile (1 = best): positive rate, lift, and cumulative share of positives."""
    order = ranking_order(score)
    parts = np.array_split(order, 10)
    base = y.mean() if len(y) else math.nan
    rate = [float(y[p].mean()) if len(p) else math.nan for p in parts]
    captured = np.cumsum([y[p].sum() for p in parts]) / max(y.sum(), 1)
    return {
        "positive_rate": rate,
        "lift": [r / base if base else math.nan for r in rate],
        "cumulative_gain": [float(c) for c in captured],
    }


@dataclass(frozen=True, kw_only=True)
class RankingReport:
    """How well one score ranks one labelled snapshot."""

    name: str
    roc_auc: float
    roc_auc_low: float
    roc_auc_high: float
    pr_auc: float
    lift_top10: float
    lift_top1: float
    brier: float | None
    positives: int
    rows: int
    expected_positives: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def ranking_report(
    name: str,
    y: np.ndarray,
    score: np.ndarray,
    *,
    probabilities: bool,
    n_boot: int = 200,
    random_state: int = 0,
) -> RankingReport:
    lo, hi = bootstrap_auc_interval(y, score, n_boot=n_boot, random_state=random_state)
    return RankingReport(
        name=name,
        roc_auc=auc_score(y, score),
        roc_auc_low=lo,
        roc_auc_high=hi,
        pr_auc=float(average_precision_score(y, score)),
        lift_top10=lift_at(y, score, 0.10),
        lift_top1=lift_at(y, score, 0.01),
        brier=float(brier_score_loss(y, score)) if probabilities else None,
        positives=int(y.sum()),
        rows=len(y),
        expected_positives=float(score.sum()) if probabilities else None,
    )


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
        """``sample_weight`` undoes a sampling of the rows (1 / sampling rate)."""
        lr = LogisticRegression(C=1e6, max_iter=1000)
        lr.fit(cls._logit(score).reshape(-1, 1), y, sample_weight=sample_weight)
        return cls(a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))

    def __call__(self, score: np.ndarray) -> np.ndarray:
        z = self.a * self._logit(score) + self.b
        return 1.0 / (1.0 + np.exp(-z))


def calibration_bins(y: np.ndarray, prob: np.ndarray, *, n_bins: int = 10) -> dict:
    """Mean predicted vs observed rate in quantile bins of the prediction."""
    order = np.argsort(prob, kind="stable")
    parts = [p for p in np.array_split(order, n_bins) if len(p)]
    return {
        "predicted": [float(prob[p].mean()) for p in parts],
        "observed": [float(y[p].mean()) for p in parts],
    }


def spend_report(name: str, actual: np.ndarray, predicted: np.ndarray) -> dict:
    """MAE, RMSE and Spearman correlation of spend predictions (on buyers)."""
    err = predicted - actual
    rho = spearmanr(actual, predicted).statistic if len(actual) > 2 else math.nan
    return {
        "name": name,
        "mae": float(np.abs(err).mean()) if len(err) else math.nan,
        "rmse": float(np.sqrt((err**2).mean())) if len(err) else math.nan,
        "spearman": float(rho),
        "buyers": len(actual),
    }
