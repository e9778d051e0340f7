"""Ranking and calibration metrics, the bootstrap interval, and Platt calibration.

Naming as in scikit-learn: ``*_score`` is higher-better, ``*_error``/``*_loss``
lower-better.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score, roc_auc_score


def auc_score(y: np.ndarray, score: np.ndarray) -> float:
    return float(roc_auc_score(y, score))


SORTED_ABOVE = 200_000
"""From this many rows, the metrics of a score come from one sort of it
(:class:`Ranked`); below, from scikit-learn's functions (the same numbers)."""


@dataclass(frozen=True)
class Ranked:
    """One score of labelled rows, sorted once: best first, ties in row order (the order
    of :func:`ranking_order`). Every ranking metric of the backtest reads it, where
    scikit-learn's functions each sort the score again (millions of rows, a dozen
    times). The formulas are scikit-learn's, from the counts at each distinct score."""

    y: np.ndarray
    """The labels, in the sorted order."""
    score: np.ndarray
    """The scores, sorted (highest first)."""
    order: np.ndarray
    """The rows, in the sorted order."""

    @classmethod
    def of(cls, y: np.ndarray, score: np.ndarray) -> Ranked:
        order = ranking_order(score)
        return cls(y[order], score[order], order)

    def _at_thresholds(self) -> tuple[np.ndarray, np.ndarray]:
        """Buyers and non-buyers at or above each distinct score, highest first (the
        points of the ROC curve before (0, 0))."""
        last = np.r_[np.flatnonzero(self.score[1:] != self.score[:-1]), len(self.score) - 1]
        tp = np.cumsum(self.y == 1)[last]
        return tp, last + 1 - tp

    def auc(self) -> float:
        """ROC AUC (ties counted half): the trapezoids under the curve, as
        :func:`sklearn.metrics.roc_auc_score`."""
        tp, fp = self._at_thresholds()
        if not len(tp) or tp[-1] == 0 or fp[-1] == 0:
            return auc_score(self.y, self.score)  # undefined: scikit-learn's warning and NaN
        tp, fp = np.r_[0, tp], np.r_[0, fp]
        area = np.sum(np.diff(fp) * (tp[1:] + tp[:-1])) / 2.0
        return float(area / (tp[-1] * fp[-1]))

    def average_precision(self) -> float:
        """Precision at each distinct score weighted by the recall it adds, as
        :func:`sklearn.metrics.average_precision_score`."""
        tp, fp = self._at_thresholds()
        if not len(tp) or tp[-1] == 0:
            return float(average_precision_score(self.y, self.score))
        precision = tp / (tp + fp)
        recall_gain = np.diff(np.r_[0, tp]) / tp[-1]
        return float(np.sum(recall_gain * precision))

    def lift(self, fraction: float) -> float:
        """:func:`lift_at` from the sorted labels."""
        base = self.y.mean()
        if base == 0:
            return math.nan
        k = max(1, math.ceil(fraction * len(self.y)))
        return float(self.y[:k].mean() / base)

    def curves(self, points: int = 2_000) -> dict[str, np.ndarray]:
        """ROC and precision-recall curves thinned to about ``points`` points each, every
        point one of scikit-learn's (``roc_curve``, ``precision_recall_curve``)."""
        tp, fp = self._at_thresholds()
        keep = np.unique(np.linspace(0, len(tp) - 1, min(len(tp), points)).astype(int))
        tp, fp = tp[keep], fp[keep]
        pos, neg = max(int(self.y.sum()), 1), max(len(self.y) - int(self.y.sum()), 1)
        return {
            "fpr": np.r_[0.0, fp / neg],
            "tpr": np.r_[0.0, tp / pos],
            "recall": np.r_[tp / pos, 0.0][::-1],
            "precision": np.r_[tp / (tp + fp), 1.0][::-1],
            "auc": np.array(self.auc()),  # the exact area, not the thinned curve's
        }


BOOT_MAX_NEGATIVES = 1_000_000
"""Above this many non-buyers, the bootstrap resamples the buyers and a fixed uniform
sample of this many non-buyers, and each resample's AUC is shifted by the difference
between the AUC over every row and over the sample. The non-buyers' share of the
interval's width is then that of the sample, wider than the full data's (an honest,
conservative interval); at thousands of buyers the buyers' share dominates anyway."""


def bootstrap_aucs(
    y: np.ndarray,
    scores: Sequence[np.ndarray],
    *,
    n_boot: int = 200,
    random_state: int = 0,
    chunk: int = 25,
    aucs: Sequence[float] | None = None,
) -> np.ndarray:
    """ROC AUC of each score on ``n_boot`` bootstrap resamples of the rows, the same
    resamples for every score (paired): an array of shape (n_boot, len(scores)).

    A resample is a vector of Poisson(1) row weights (:func:`poisson_weights`). The
    negatives are sorted once per score; each AUC (the Mann-Whitney statistic with ties
    counted half) is then one cumulative sum of the weights and two gathers, done for
    ``chunk`` resamples at once. ``aucs``: the scores' AUCs over every row, if known
    (the centre when the non-buyers are subsampled).
    """
    rng = np.random.default_rng(random_state)
    pos_rows, neg_rows = np.flatnonzero(y == 1), np.flatnonzero(y != 1)
    out = np.full((n_boot, len(scores)), math.nan)
    if not len(pos_rows) or not len(neg_rows):
        return out
    subsampled = len(neg_rows) > BOOT_MAX_NEGATIVES
    if subsampled:
        neg_rows = np.sort(rng.choice(neg_rows, BOOT_MAX_NEGATIVES, replace=False))
    prepared = []
    for s in scores:
        order = np.argsort(s[neg_rows], kind="stable")
        neg_sorted = s[neg_rows][order]
        lo = np.searchsorted(neg_sorted, s[pos_rows], side="left")  # negatives strictly below
        hi = np.searchsorted(neg_sorted, s[pos_rows], side="right")  # ... or tied
        prepared.append((order, lo, hi))
    for b0 in range(0, n_boot, chunk):
        c = min(chunk, n_boot - b0)
        w_pos = poisson_weights(rng, (c, len(pos_rows))).astype(np.float64)
        w_neg = poisson_weights(rng, (c, len(neg_rows)))
        denom = w_pos.sum(axis=1) * w_neg.sum(axis=1, dtype=np.int64)
        for k, (order, lo, hi) in enumerate(prepared):
            cum = np.zeros((c, len(neg_rows) + 1), dtype=np.int32)
            np.cumsum(np.take(w_neg, order, axis=1), axis=1, dtype=np.int32, out=cum[:, 1:])
            below = cum[:, lo]
            ties = cum[:, hi] - below
            with np.errstate(invalid="ignore", divide="ignore"):
                out[b0 : b0 + c, k] = (w_pos * (below + 0.5 * ties)).sum(axis=1) / denom
    if subsampled:  # centred on each score's AUC over every row
        for k, (s, (_, lo, hi)) in enumerate(zip(scores, prepared, strict=True)):
            sub_auc = float(np.sum(lo + 0.5 * (hi - lo))) / (len(pos_rows) * len(neg_rows))
            whole = aucs[k] if aucs is not None else auc_score(y, s)
            out[:, k] += whole - sub_auc
    return out


def _poisson_table() -> np.ndarray:
    p, cdf, k, table = math.exp(-1.0), 0.0, 0, []
    while cdf < 1.0 and k < 20:
        cdf += p
        table.append(min(round(cdf * 65536), 65536))
        k += 1
        p /= k
    return np.searchsorted(np.array(table), np.arange(65536), side="right").astype(np.uint8)


_POISSON = _poisson_table()


def poisson_weights(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Poisson(1) bootstrap weights as uint8, from 16-bit uniforms through the inverse
    CDF (exact to 1/65536 in probability; faster than ``rng.poisson``)."""
    return _POISSON[rng.integers(0, 65536, shape, dtype=np.uint16)]


def _interval(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return (math.nan, math.nan)
    lo, hi = np.percentile(finite, [2.5, 97.5])
    return float(lo), float(hi)


@dataclass(frozen=True, kw_only=True)
class Difference:
    """A paired comparison of two scores on the same rows: ``a`` minus ``b``."""

    a: str
    b: str
    roc_auc_diff: float
    roc_auc_diff_low: float
    roc_auc_diff_high: float
    lift_top10_diff: float
    lift_top10_diff_low: float
    lift_top10_diff_high: float

    def as_dict(self) -> dict:
        return asdict(self)


def ranked(y: np.ndarray, score: np.ndarray) -> Ranked | None:
    """``score`` sorted once (:class:`Ranked`) from :data:`SORTED_ABOVE` rows; None below,
    where scikit-learn's functions compute the metrics."""
    return Ranked.of(y, score) if len(y) >= SORTED_ABOVE else None


def paired_difference(
    y: np.ndarray,
    a: tuple[str, np.ndarray],
    b: tuple[str, np.ndarray],
    boot_aucs: np.ndarray,
    *,
    random_state: int = 0,
    ranks: tuple[Ranked | None, Ranked | None] = (None, None),
) -> Difference:
    """AUC and top-decile lift of ``a`` minus ``b`` with 95 % paired bootstrap intervals.

    ``boot_aucs`` holds the two scores' AUCs on the same resamples (columns a, b: see
    :func:`bootstrap_aucs`). For the lift, the top decile of each score is fixed and its
    rows reweighted by Poisson(1) weights, the same for both scores. ``ranks``: the
    scores sorted, if they are (:func:`ranked`)."""
    (name_a, sa), (name_b, sb) = a, b
    n_boot = boot_aucs.shape[0]
    rng = np.random.default_rng(random_state)
    k = max(1, math.ceil(0.10 * len(y)))
    tops = [
        (r.order if r is not None else ranking_order(s))[:k]
        for s, r in zip((sa, sb), ranks, strict=True)
    ]
    # only the rows of either top decile and the buyers need their own weight; the rest
    # enter through their total weight, one Poisson(count) draw
    needed = np.union1d(np.union1d(tops[0], tops[1]), np.flatnonzero(y == 1))
    rest = len(y) - len(needed)
    yn = y[needed].astype(np.float64)
    # each top decile as a 0/1 vector over the needed rows: its weighted counts are
    # matrix-vector products (sums of whole numbers: exact in any order)
    in_top = []
    for t in tops:
        ind = np.zeros(len(needed))
        ind[np.searchsorted(needed, t)] = 1.0
        in_top.append((ind, yn * ind))
    d_lift = np.empty(n_boot)
    step = max(1, min(50, LIFT_CELLS // max(len(needed), 1)))  # at most ~80 MB of weights
    for b0 in range(0, n_boot, step):
        c = min(step, n_boot - b0)
        w = poisson_weights(rng, (c, len(needed))).astype(np.float64)
        base = (w @ yn) / (w.sum(axis=1) + rng.poisson(float(rest), c))
        with np.errstate(invalid="ignore", divide="ignore"):
            la, lb = ((w @ buyers) / (w @ ind) / base for ind, buyers in in_top)
        d_lift[b0 : b0 + c] = la - lb
    auc_lo, auc_hi = _interval(boot_aucs[:, 0] - boot_aucs[:, 1])
    lift_lo, lift_hi = _interval(d_lift)
    ra, rb = ranks
    auc_a = ra.auc() if ra is not None else auc_score(y, sa)
    auc_b = rb.auc() if rb is not None else auc_score(y, sb)
    lift_a = ra.lift(0.10) if ra is not None else lift_at(y, sa, 0.10)
    lift_b = rb.lift(0.10) if rb is not None else lift_at(y, sb, 0.10)
    return Difference(
        a=name_a,
        b=name_b,
        roc_auc_diff=auc_a - auc_b,
        roc_auc_diff_low=auc_lo,
        roc_auc_diff_high=auc_hi,
        lift_top10_diff=lift_a - lift_b,
        lift_top10_diff_low=lift_lo,
        lift_top10_diff_high=lift_hi,
    )


LIFT_CELLS = 10_000_000
"""Resample weights drawn at once for the lift interval (50 resamples up to 200,000
rows; fewer resamples per draw above)."""


def ranking_order(score: np.ndarray, tiebreak: np.ndarray | None = None) -> np.ndarray:
    """Row indices from the highest score down; ties keep ``tiebreak`` (then row) order."""
    if tiebreak is None:  # a stable sort keeps tied rows in row order
        return np.argsort(-score, kind="stable")
    return np.lexsort((np.arange(len(score)), tiebreak, -score))


def lift_at(y: np.ndarray, score: np.ndarray, fraction: float) -> float:
    """Positive rate among the top ``fraction`` of rows, over the overall positive rate."""
    base = y.mean()
    if base == 0:
        return math.nan
    k = max(1, math.ceil(fraction * len(y)))
    top = ranking_order(score)[:k]
    return float(y[top].mean() / base)


def deciles(
    y: np.ndarray,
    score: np.ndarray,
    *,
    probabilities: bool = False,
    ranks: Ranked | None = None,
) -> dict[str, list[float] | list[int]]:
    """Per decile (1 = best): positive rate, lift, cumulative share of positives and the
    positives; for a score that is a probability, also the positives it expects (its sum
    over the decile). ``ranks``: the score sorted, if it is (:func:`ranked`)."""
    order = ranks.order if ranks is not None else ranking_order(score)
    parts = np.array_split(order, 10)
    base = y.mean() if len(y) else math.nan
    rate = [float(y[p].mean()) if len(p) else math.nan for p in parts]
    captured = np.cumsum([y[p].sum() for p in parts]) / max(y.sum(), 1)
    out: dict[str, list[float] | list[int]] = {
        "positive_rate": rate,
        "lift": [r / base if base else math.nan for r in rate],
        "cumulative_gain": [float(c) for c in captured],
        "positives": [int(y[p].sum()) for p in parts],
    }
    if probabilities:
        out["expected_positives"] = [float(score[p].sum()) for p in parts]
    return out


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
    boot_aucs: np.ndarray | None = None,
    n_boot: int = 200,
    random_state: int = 0,
    ranks: Ranked | None = None,
) -> RankingReport:
    """How ``score`` ranks ``y``; the AUC interval from ``boot_aucs`` (this score's AUC on
    bootstrap resamples) or, without it, from ``n_boot`` resamples drawn here.
    ``ranks``: the score sorted, if it is (:func:`ranked`)."""
    if boot_aucs is None:
        boot_aucs = bootstrap_aucs(y, [score], n_boot=n_boot, random_state=random_state)[:, 0]
    lo, hi = _interval(boot_aucs)
    r = ranks
    ap = r.average_precision() if r is not None else float(average_precision_score(y, score))
    return RankingReport(
        name=name,
        roc_auc=r.auc() if r is not None else auc_score(y, score),
        roc_auc_low=lo,
        roc_auc_high=hi,
        pr_auc=ap,
        lift_top10=r.lift(0.10) if r is not None else lift_at(y, score, 0.10),
        lift_top1=r.lift(0.01) if r is not None else lift_at(y, score, 0.01),
        brier=brier_score(y, score) if probabilities else None,
        positives=int(y.sum()),
        rows=len(y),
        expected_positives=float(score.sum()) if probabilities else None,
    )


def brier_score(y: np.ndarray, prob: np.ndarray) -> float:
    """scikit-learn's ``brier_score_loss`` for 0/1 labels (the same bits: the mean of
    the squared errors), without its input checks, which copy and sort the labels of
    millions of rows."""
    err = np.asarray(prob, dtype=float) - y
    np.square(err, out=err)
    return float(err.mean())


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
    varied = len(actual) > 2 and np.ptp(actual) > 0 and np.ptp(predicted) > 0
    rho = spearmanr(actual, predicted).statistic if varied else math.nan  # else undefined
    return {
        "name": name,
        "mae": float(np.abs(err).mean()) if len(err) else math.nan,
        "rmse": float(np.sqrt((err**2).mean())) if len(err) else math.nan,
        "spearman": float(rho),
        "buyers": len(actual),
    }


def normalized_gini_score(actual: np.ndarray, predicted: np.ndarray) -> float:
    """The Gini of ``actual`` ordered by ``predicted``, over the Gini of the best order
    (1: the perfect ranking of value, 0: a random one). Ties in ``predicted`` count at
    their mean position."""
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    order = np.argsort(-predicted, kind="stable")
    best = np.sort(actual)[::-1]
    return _normalized_gini(actual[order], predicted[order], best)


def _normalized_gini(by_prediction: np.ndarray, prediction: np.ndarray, best: np.ndarray) -> float:
    """:func:`normalized_gini_score` from ``actual`` sorted by ``prediction`` (highest
    first, ``prediction`` sorted with it) and from ``actual`` sorted itself (highest
    first): each Gini is a sum over the groups of tied positions, so no rank array of
    every row is built (a backtest window holds millions)."""
    total = float(by_prediction.sum())
    if len(by_prediction) < 2 or not total > 0 or np.isnan(prediction).any():
        return math.nan  # (rankdata's ranks of a NaN prediction are NaN: so is the Gini)
    ceiling = _gini(best, best, total)
    return _gini(by_prediction, prediction, total) / ceiling if ceiling else math.nan


GINI_BLOCK = 1 << 20
"""Rows per block of :func:`_gini` (a tie group is never split): its arrays stay this
size whatever the number of customers."""


def _gini(values: np.ndarray, keys: np.ndarray, total: float) -> float:
    """The Gini of ``values`` in their order (``keys``, descending, give the ties: a
    tied group counts at its mean position, as ``rankdata(method="average")`` ranks),
    block by block: ``sum(values * (n - rank + 0.5))`` is ``(n + 0.5) * total`` less the
    values weighted by their ranks."""
    n = len(values)
    weighted = 0.0  # sum of values times the mean rank of their tie group (1 = the highest)
    lo = 0
    while lo < n:
        hi = _group_end(keys, min(lo + GINI_BLOCK, n))
        k = keys[lo:hi]
        starts = np.flatnonzero(np.concatenate(([True], k[1:] != k[:-1])))
        ends = np.append(starts[1:], hi - lo)
        mean_rank = lo + (starts + 1 + ends) / 2.0
        weighted += float(np.add.reduceat(values[lo:hi], starts) @ mean_rank)
        lo = hi
    share = ((n + 0.5) * total - weighted) / (total * n)
    return share - 0.5


def _group_end(keys: np.ndarray, at: int) -> int:
    """The first position from ``at`` on whose key differs from ``keys[at - 1]``: the
    end of the tie group that position ``at - 1`` is in (``len(keys)`` if it runs to the
    end), looked for a block at a time."""
    n = len(keys)
    if at >= n:
        return n
    key = keys[at - 1]
    while at < n:
        differs = np.flatnonzero(keys[at : at + GINI_BLOCK] != key)
        if len(differs):
            return at + int(differs[0])
        at += GINI_BLOCK
    return n


def value_report(expected: np.ndarray, realized: np.ndarray) -> dict:
    """What a user plans with, summed: total expected value against realized spend, per
    decile of expected value (the highest first), and the normalized Gini of value.

    One sort of the expected values serves both: the deciles are consecutive runs of it
    (a tie across a decile's edge is split by position, as the ranked score file does),
    and the Gini sums over its groups of ties."""
    expected = np.asarray(expected, dtype=float)
    realized = np.maximum(np.asarray(realized, dtype=float), 0.0)
    n = len(expected)
    order = np.argsort(-expected, kind="stable")
    by_value = expected[order]
    real_by_value = realized[order]
    del order
    # decile d holds the positions i (1-based) with ceil(i * 10 / n) == d: from
    # (d - 1) * n // 10 to d * n // 10, 0-based, end excluded
    deciles = []
    for d in range(1, 11):
        lo, hi = (d - 1) * n // 10, d * n // 10
        pred, real = float(by_value[lo:hi].sum()), float(real_by_value[lo:hi].sum())
        deciles.append(
            {
                "decile": d,
                "expected": pred,
                "realized": real,
                "ratio": pred / real if real > 0 else math.nan,
            }
        )
    total_pred, total_real = float(expected.sum()), float(realized.sum())
    best = np.sort(realized)[::-1]
    return {
        "expected_total": total_pred,
        "realized_total": total_real,
        "ratio": total_pred / total_real if total_real > 0 else math.nan,
        "deciles": deciles,
        "normalized_gini": _normalized_gini(real_by_value, by_value, best),
    }
