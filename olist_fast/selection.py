"""Choosing a setup on evidence: rolling-origin folds and the one-standard-error rule.

Each fold trains every setup on the snapshots before its test snapshot and measures ROC
AUC on it (:mod:`olist_fast.protocol`). Across folds each setup has a mean AUC. The
choice is the **simplest setup whose mean lies within one standard error of the best
mean**, simplicity as in :data:`olist_fast.models.SIMPLICITY_ORDER`, where the standard
error is that of the setup's fold-by-fold difference to the best (paired: the folds test
the same customers with every setup). On realistically hard data the windows drift: a
harder window lowers every setup, and that shared drift cancels in the difference. What
stays is how much the ranking of the two changes from window to window; a more complex
setup is chosen only when it beats the simpler one by more than that. The unpaired
standard error of each mean (drift included) is reported beside it. With fewer than two
usable folds there is no spread to judge by, and the simplest setup is taken.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import polars as pl

from olist_fast.evaluate import auc_score
from olist_fast.models import Setup, by_slices, fit_setup, predict_positive
from olist_fast.parallel import threads
from olist_fast.protocol import Snapshots, labels_of, training_set, usable_folds

MIN_GAIN = 0.002
"""Mean AUC differences up to this are never worth a more complex setup."""


@dataclass(frozen=True)
class FoldResult:
    """Every setup's ROC AUC on one fold's test snapshot."""

    test_date: datetime
    train_dates: tuple[datetime, ...]
    buyers: int
    rows: int
    auc: dict[str, float]

    def as_dict(self) -> dict:
        return {
            "test_date": self.test_date.isoformat(),
            "train_dates": [d.isoformat() for d in self.train_dates],
            "buyers": self.buyers,
            "rows": self.rows,
            "roc_auc": self.auc,
        }


@dataclass(frozen=True)
class Selection:
    """The fold table, the summary per setup, the chosen setup and why."""

    pool: list[Setup]
    folds: list[FoldResult]
    chosen: Setup
    reason: str
    notes: list[str] = field(default_factory=list)

    @property
    def mean(self) -> dict[str, float]:
        return {
            c.name: float(np.mean([f.auc[c.name] for f in self.folds])) if self.folds else math.nan
            for c in self.pool
        }

    def _se(self, values: list[float]) -> float:
        k = len(values)
        return float(np.std(values, ddof=1) / math.sqrt(k)) if k >= 2 else math.nan

    @property
    def standard_error(self) -> dict[str, float]:
        """Of each setup's mean AUC over the folds (window drift included)."""
        return {c.name: self._se([f.auc[c.name] for f in self.folds]) for c in self.pool}

    @property
    def best(self) -> str:
        mean = self.mean
        return max(self.pool, key=lambda c: mean[c.name]).name

    @property
    def difference_standard_error(self) -> dict[str, float]:
        """Of each setup's mean difference to the best setup, fold by fold (paired)."""
        b = self.best
        return {c.name: self._se([f.auc[b] - f.auc[c.name] for f in self.folds]) for c in self.pool}

    def as_dict(self) -> dict:
        return {
            "rule": "simplest setup whose mean fold AUC is within one standard error of the "
            f"best (the standard error of its fold-by-fold difference to the best; at least "
            f"{MIN_GAIN})",
            "simplicity_order": [c.name for c in self.pool],
            "folds": [f.as_dict() for f in self.folds],
            "mean_roc_auc": self.mean,
            "standard_error": self.standard_error,
            "best": self.best if self.folds else None,
            "difference_to_best_standard_error": self.difference_standard_error,
            "chosen": self.chosen.name,
            "reason": self.reason,
            "notes": self.notes,
        }


def one_standard_error_choice(
    pool: Sequence[Setup], mean: dict[str, float], diff_se: dict[str, float]
) -> tuple[Setup, str]:
    """The simplest setup (pool order) whose mean is at least the best mean minus the
    standard error of its difference to the best, or minus ``MIN_GAIN`` if that is more
    (a setup that wins every fold by a hair has a tiny standard error, but no gain worth
    its complexity)."""
    best = max(pool, key=lambda c: mean[c.name])
    chosen = next(
        c for c in pool if mean[best.name] - mean[c.name] <= max(diff_se[c.name], MIN_GAIN)
    )
    gap, se = mean[best.name] - mean[chosen.name], diff_se[chosen.name]
    within = (
        f"within one standard error of it ({gap:.4f} below, standard error of the difference "
        f"{se:.4f})"
        if gap <= se
        else f"less than {MIN_GAIN} below it, the least gain worth a more complex setup "
        f"({gap:.4f} below; standard error of the difference {se:.4f})"
    )
    reason = (
        f"best mean AUC {mean[best.name]:.4f} ({best.name}); {chosen.name} is the simplest {within}"
    )
    return chosen, reason


def select_setup(
    pool: list[Setup], snaps: Snapshots, *, seed: int, say: Callable[[str], None]
) -> Selection:
    """Evaluate every setup on every usable fold and choose by the one-standard-error rule."""
    folds, notes = usable_folds(snaps)
    for note in notes:
        say(note)
    results = evaluate_folds(pool, snaps, folds, seed=seed)
    if len(results) < 2:
        reason = (
            f"only {len(results)} usable fold(s): no spread to judge a more complex setup "
            f"by, so the simplest ({pool[0].name}) is used"
        )
        notes.append(reason)
        say(reason)
        return Selection(pool, results, pool[0], reason, notes)
    sel = Selection(pool, results, pool[0], "", notes)
    chosen, reason = one_standard_error_choice(pool, sel.mean, sel.difference_standard_error)
    return Selection(pool, results, chosen, reason, notes)


FOLD_MAX_NEGATIVES = 250_000
"""A fold's test window with more non-buyers than this is scored on all its buyers and a
uniform sample of this many non-buyers: the AUC (the chance that a buyer outranks a
non-buyer) is estimated without bias from the sample, with a standard error that the
buyers dominate at that size (the AUC's variance has a term over the buyers and one over
the non-buyers, and the buyers are the far smaller count); every setup is tested on the
same rows, so the differences the choice rests on share the sample. Predicting millions
of rows per setup and fold would cost more than it tells (docs/performance.md)."""


def fold_test_rows(snaps: Snapshots, j: int, *, seed: int) -> pl.DataFrame:
    """The rows fold ``j`` is tested on: every row, or above ``FOLD_MAX_NEGATIVES``
    non-buyers, every buyer and a sample of the non-buyers (drawn from each row's
    content and the seed, as the training sample is)."""
    y = snaps.labels(j)
    negatives = int(len(y) - y.sum())
    snapshot = snaps[j]
    if negatives <= FOLD_MAX_NEGATIVES:
        return snaps.whole(j)
    rate = FOLD_MAX_NEGATIVES / negatives
    snaps.sample_below(j, rate, "fold", seed)
    kept = labels_of(snapshot)
    keep = (kept == 1) | (snaps.uniforms(j, "fold", seed) < rate)
    return snapshot.filter(pl.Series(keep))


def evaluate_folds(
    pool: list[Setup], snaps: Snapshots, folds: list[int], *, seed: int
) -> list[FoldResult]:
    """Every setup's test AUC on every fold, the fits spread over
    :func:`olist_fast.parallel.threads` threads (scikit-learn's fits release the GIL
    in their compiled parts, so they overlap).

    The blend's scores are the mean of its two parts' probabilities, so where both parts
    are in the pool it is scored from their fits, not fitted again."""
    sets = {j: training_set(snaps, j, seed=seed) for j in folds}
    parts = {"logistic", "random_forest"}
    derive_blend = parts <= {c.name for c in pool}
    tasks = [(j, c) for j in folds for c in pool if not (derive_blend and c.kind == "blend")]

    tests = {j: fold_test_rows(snaps, j, seed=seed) for j in folds}

    def fit_and_score(task: tuple[int, Setup]) -> np.ndarray:
        j, c = task
        model = fit_setup(c, sets[j].X, sets[j].y, seed)
        test, encoding = tests[j], sets[j].encoding
        return by_slices(  # the test window encoded slice by slice: no matrix of all its rows
            test.height,
            lambda offset, length: encoding.transform(test.slice(offset, length)),
            lambda X: predict_positive(model, X),
        )

    with ThreadPoolExecutor(threads()) as ex:
        scores = dict(
            zip([(j, c.name) for j, c in tasks], ex.map(fit_and_score, tasks), strict=True)
        )
    out = []
    for j in folds:
        y = labels_of(tests[j])
        auc = {}
        for c in pool:
            s = scores.get((j, c.name))
            if s is None:  # the blend, from its parts
                s = (scores[(j, "logistic")] + scores[(j, "random_forest")]) / 2
            auc[c.name] = auc_score(y, s)
        rows = snaps.rows(j)  # every customer of the window, sampled or not
        out.append(FoldResult(snaps.protocol.date(j), sets[j].dates, int(y.sum()), rows, auc))
    return out
