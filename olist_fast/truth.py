"""How well could anyone do? Ceilings of generated data, from the generator's own truth.

On data from :func:`olist_fast.synth.simulate` each person's true probability of buying
again is known (:meth:`~olist_fast.synth.Simulation.true_probability`). Ranking by it
gives the oracle AUC; ranking by the best function of the feature table gives the
feature ceiling, which no model trained on these features can beat except by chance. A
model's AUC reads against these two, not against 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from olist_fast.schema import is_eligible
from olist_fast.synth import COLLAPSE, EPOCH, REPEAT_WINDOW_DAYS, Simulation


def feature_ceiling(
    snapshot: pl.DataFrame,
    true_probability: np.ndarray,
    *,
    random_state: int = 0,
    folds: int = 5,
) -> np.ndarray:
    """Out-of-fold predictions of the true probability from the snapshot's features.

    A gradient-boosted regression of the probability itself (its conditional mean given
    the features is the best ranking they allow), cross-fitted over ``folds`` shuffled
    folds so no row is predicted by a model that saw it.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.model_selection import KFold
    from threadpoolctl import threadpool_limits

    from olist_fast.encode import Encoding

    y = np.asarray(true_probability, dtype=np.float64)
    if y.shape != (snapshot.height,):
        raise ValueError(
            f"true_probability has shape {y.shape}; the snapshot has {snapshot.height} rows"
        )
    x = Encoding.fit(snapshot).transform(snapshot)
    out = np.empty(y.size)
    # one OpenMP thread: waiting OpenMP workers spin, which on shared cores costs far more
    # than a second thread gains
    with threadpool_limits(limits=1, user_api="openmp"):
        for train, test in KFold(folds, shuffle=True, random_state=random_state).split(x):
            model = HistGradientBoostingRegressor(random_state=random_state)
            model.fit(x[train], y[train])
            out[test] = model.predict(x[test])
    return out


def expected_auc(true_probability: np.ndarray, scores: np.ndarray) -> float:
    """The ROC AUC that ``scores`` are expected to reach over the outcomes the true
    probabilities would draw: every customer counts as a buyer with weight ``p`` and as
    a non-buyer with weight ``1 - p`` (the ratio of the expected counts of correctly and
    wrongly ordered pairs, which one draw's AUC approaches as customers grow).

    One window's outcomes put noise of about +-0.01 AUC on a few hundred buyers; this
    measure has none, so the gap between a model and the feature ceiling in it is the
    gap in quality alone."""
    from sklearn.metrics import roc_auc_score

    p = np.asarray(true_probability, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    if p.shape != s.shape or p.ndim != 1:
        raise ValueError(f"true_probability {p.shape} and scores {s.shape} must be equal 1-d")
    n = p.size
    y = np.r_[np.ones(n), np.zeros(n)]
    return float(roc_auc_score(y, np.r_[s, s], sample_weight=np.r_[p, 1.0 - p]))


def aligned_truth(
    sim: Simulation, snapshot: pl.DataFrame, as_of: datetime, horizon_days: int
) -> np.ndarray:
    """The true probabilities in the snapshot's row order; raises unless the persons match."""
    truth = sim.true_probability(as_of, horizon_days)
    ids = snapshot["customer_unique_id"]
    if truth.height != ids.len() or not truth["customer_unique_id"].equals(ids):
        raise ValueError(
            f"the snapshot's {ids.len()} customers are not the {truth.height} of the simulation"
            f" at {as_of} (expected the same persons sorted by customer_unique_id)"
        )
    return truth["true_probability"].to_numpy()


def truth_report(
    sim: Simulation,
    snapshot: pl.DataFrame,
    horizon_days: int,
    as_of: datetime,
    *,
    random_state: int = 0,
    scores: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Oracle and feature-ceiling AUC on the snapshot's true outcomes (``bought_again``),
    with the base rate and the expected against the actual number of buyers; and the
    expected AUC (:func:`expected_auc`, no outcome noise) of the oracle, the ceiling and
    each of ``scores`` (name to one score per snapshot row)."""
    from sklearn.metrics import roc_auc_score

    if "bought_again" not in snapshot.columns:
        raise ValueError("the snapshot has no bought_again column (its window is not covered)")
    p = aligned_truth(sim, snapshot, as_of, horizon_days)
    y = snapshot["bought_again"].to_numpy()
    ceiling = feature_ceiling(snapshot, p, random_state=random_state)
    expected = {"oracle": expected_auc(p, p), "feature_ceiling": expected_auc(p, ceiling)}
    expected |= {name: expected_auc(p, s) for name, s in (scores or {}).items()}
    return {
        "oracle_auc": float(roc_auc_score(y, p)),
        "feature_ceiling_auc": float(roc_auc_score(y, ceiling)),
        "expected_auc": expected,
        "base_rate": float(y.mean()),
        "expected_buyers": float(p.sum()),
        "buyers": int(y.sum()),
    }


def realised_repeat_rate(
    tables: Mapping[str, pl.DataFrame | pl.LazyFrame], *, days: int = REPEAT_WINDOW_DAYS
) -> float:
    """The share of first-time buyers who bought again within ``days``: what ``repeat_rate``
    of :func:`~olist_fast.synth.simulate` sets.

    A first-time buyer is a person's first eligible order whose whole window lies before
    the collapse (2018-09-01); buying again is another eligible order in the window on a
    later calendar day (same-day split orders are one basket, not a return).
    """
    ts = pl.col("order_purchase_timestamp")
    orders = (
        tables["orders"]
        .lazy()
        .filter(is_eligible())
        .join(tables["customers"].lazy(), on="customer_id")
        .select("customer_unique_id", ts)
    )
    end = EPOCH + timedelta(seconds=COLLAPSE)
    window = timedelta(days=days)
    first = (
        orders.group_by("customer_unique_id")
        .agg(ts.min().alias("first"))
        .filter(pl.col("first") + window <= end)
    )
    again = (
        orders.join(first, on="customer_unique_id")
        .filter(ts.dt.date() > pl.col("first").dt.date(), ts < pl.col("first") + window)
        .select(pl.col("customer_unique_id").n_unique())
    )
    n_first, n_again = pl.collect_all([first.select(pl.len()), again])
    return n_again.item() / max(n_first.item(), 1)


__all__ = [
    "aligned_truth",
    "expected_auc",
    "feature_ceiling",
    "realised_repeat_rate",
    "truth_report",
]
