"""The out-of-time backtest: the chosen setup, trained and calibrated as the final model
is, scored on the last labelled window before ``as_of`` (which no choice has seen).

Beside it: the naive ranking (more orders, then more recent), and with ``compare`` the
other setups, the notebook approach, the unstacked check and the buy-till-you-die
baseline (BG/NBD for who buys, Gamma-Gamma for how much), whose buyers and value are
summed like the chosen model's. Differences the summary claims come with paired
bootstrap intervals (the same resampled rows for both scores).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from olist_fast.btyd import btyd_forecast
from olist_fast.calibration import DRIFT_MIN_BUYERS, Drift, measure_drift, with_drift
from olist_fast.evaluate import (
    Difference,
    RankingReport,
    auc_score,
    bootstrap_aucs,
    calibration_bins,
    deciles,
    paired_difference,
    ranked,
    ranking_report,
    spend_report,
    value_report,
)
from olist_fast.fitting import fit_calibrated
from olist_fast.models import Setup, by_slices, fit_setup, notebook_setups, predict_positive
from olist_fast.protocol import Snapshots, TrainingSet, training_set

TEST = 1
"""The backtest's test snapshot: labels in [A-H, A)."""
BTYD_NAME = "peer:BG/NBD + Gamma-Gamma"
"""The buy-till-you-die baseline of ``compare`` (:mod:`olist_fast.btyd`), fitted on the
test snapshot's histories."""
Truth = Callable[[datetime, pl.DataFrame, dict[str, np.ndarray]], dict[str, Any] | None]
"""On generated data: the truth report of a labelled snapshot, given named scores of its
rows (:func:`olist_fast.truth.truth_report`)."""


def naive_ranking(snapshot: pl.DataFrame) -> np.ndarray:
    """More orders first, then more recent first (one number that sorts that way)."""
    n = snapshot["n_orders"].to_numpy().astype(np.float64)
    recency = snapshot["recency_days"].to_numpy()
    return n - recency / (recency.max() + 1.0)


@dataclass(frozen=True)
class Curves:
    """The backtest's labels and scores, for the plots (never written to metrics)."""

    y: np.ndarray
    chosen: np.ndarray
    naive: np.ndarray
    notebook: np.ndarray | None = None
    points: dict[str, dict[str, np.ndarray]] | None = None
    """Each series' ROC and precision-recall points (:meth:`Ranked.curves`) when the
    scores were sorted for the metrics (large windows); else the plot computes them."""


@dataclass(frozen=True)
class Backtest:
    test_date: datetime
    train_dates: tuple[datetime, ...]
    chosen: RankingReport
    naive: RankingReport
    notebook_best: RankingReport | None
    comparison: list[RankingReport]
    differences: list[Difference]
    calibration_bins: dict
    deciles: dict
    spend: dict
    curves: Curves
    value: dict = field(default_factory=dict)
    """Expected value (propensity x expected spend) against realized spend: totals, per
    decile, normalized Gini (:func:`olist_fast.evaluate.value_report`)."""
    truth: dict[str, Any] | None = None
    drift: Drift | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "test_date": self.test_date.isoformat(),
            "train_dates": [d.isoformat() for d in self.train_dates],
            "chosen": self.chosen.as_dict(),
            "baselines": {
                "naive": self.naive.as_dict(),
                "notebook_best": self.notebook_best.as_dict() if self.notebook_best else None,
            },
            "comparison": [r.as_dict() for r in self.comparison],
            "differences": [d.as_dict() for d in self.differences],
            "calibration_bins": self.calibration_bins,
            "deciles": self.deciles,
            "spend": self.spend,
            "value": self.value,
            "truth": self.truth,
            "calibration_drift": self.drift.as_dict() if self.drift else None,
            "notes": self.notes,
        }


def run_backtest(
    chosen: Setup,
    pool: list[Setup],
    snaps: Snapshots,
    *,
    seed: int,
    n_boot: int,
    compare: bool,
    truth: Truth | None = None,
) -> Backtest:
    """Fit the chosen setup on the split testing snapshot 1 exactly as the final model is
    fitted, and measure it there against the baselines."""
    ts = training_set(snaps, TEST, seed=seed)
    # the test window's rows: a compact snapshot is read from its file, slice by slice
    # for the model and as the few columns the reports need
    whole = TEST not in snaps.compacted
    test = snaps[TEST] if whole else snaps.lazy(TEST)
    needed = ["n_orders", "recency_days", "future_spend", "avg_order_value"]
    columns = snaps.lazy(TEST).select(needed).collect()
    y = snaps.labels(TEST)
    model = fit_calibrated(chosen, ts, seed=seed, horizon_days=snaps.protocol.horizon_days)
    drift, notes = measure_drift(model, snaps, TEST), []
    if drift is None:
        notes.append(
            f"no level correction in the backtest: fewer than {DRIFT_MIN_BUYERS} buyers in "
            "its calibration window"
        )
    drifted = with_drift(model, drift)
    # the test window encoded slice by slice: no matrix of all its rows
    both = by_slices(
        len(y),
        model.encoder(test),
        lambda X: np.column_stack([model.score(X), model.spend_of(X)]),
    )
    prob, expected_spend = drifted.calibration(both[:, 0]), both[:, 1]
    naive = naive_ranking(columns)
    scores: dict[str, np.ndarray] = {
        f"chosen:{chosen.name} (calibrated)": prob,
        "baseline:naive (orders, then recency)": naive,
    }
    notebook_name, peer_value = None, {}
    if compare:
        full = snaps.whole(TEST)  # compare: every setup, small shops (never compact)
        X = ts.encoding.transform(full)
        extra = _compare_scores(chosen, pool, snaps, ts, X, seed=seed)
        btyd = btyd_forecast(full, snaps.protocol.horizon_days)
        extra[BTYD_NAME] = btyd.p_buy
        peer_value = {
            BTYD_NAME: {
                **value_report(btyd.expected_value, full["future_spend"].to_numpy()),
                "expected_buyers": float(btyd.p_buy.sum()),
                "parameters": {**asdict(btyd.bgnbd), **asdict(btyd.gamma_gamma)},
            }
        }
        scores.update(extra)
        nb = [k for k in extra if k.startswith("notebook:")]
        notebook_name = max(nb, key=lambda k: auc_score(y, extra[k])) if nb else None
    names = list(scores)
    # each score sorted once for every metric below (on large windows: see `ranked`)
    ranks = {k: ranked(y, scores[k]) for k in names}
    whole_aucs = [r.auc() if r is not None else auc_score(y, scores[k]) for k, r in ranks.items()]
    boot = bootstrap_aucs(
        y, [scores[k] for k in names], n_boot=n_boot, random_state=seed, aucs=whole_aucs
    )
    reports = {
        k: ranking_report(
            k,
            y,
            scores[k],
            probabilities=k.startswith("chosen:"),
            boot_aucs=boot[:, i],
            ranks=ranks[k],
        )
        for i, k in enumerate(names)
    }
    chosen_name, naive_name = names[0], names[1]
    differences = [
        paired_difference(
            y,
            (chosen_name, prob),
            (naive_name, naive),
            boot[:, [0, 1]],
            random_state=seed,
            ranks=(ranks[chosen_name], ranks[naive_name]),
        )
    ]
    if notebook_name:
        i = names.index(notebook_name)
        differences.append(
            paired_difference(
                y,
                (chosen_name, prob),
                (notebook_name, scores[notebook_name]),
                boot[:, [0, i]],
                random_state=seed,
                ranks=(ranks[chosen_name], ranks[notebook_name]),
            )
        )
    plotted = {"chosen": chosen_name, "naive": naive_name, "notebook": notebook_name}
    sorted_ = {key: ranks[name] for key, name in plotted.items() if name is not None}
    points = (
        {key: r.curves() for key, r in sorted_.items() if r is not None}
        if all(r is not None for r in sorted_.values())
        else None
    )
    buyers = y == 1
    realized = columns["future_spend"].to_numpy()
    actual = realized[buyers]
    model_spend = expected_spend[buyers]
    naive_spend = columns["avg_order_value"].to_numpy()[buyers]
    return Backtest(
        test_date=snaps.protocol.date(TEST),
        train_dates=ts.dates,
        chosen=reports[chosen_name],
        naive=reports[naive_name],
        notebook_best=reports[notebook_name] if notebook_name else None,
        comparison=[reports[k] for k in names[2:]],
        differences=differences,
        calibration_bins=calibration_bins(y, prob),
        deciles={
            "chosen": deciles(y, prob, probabilities=True, ranks=ranks[chosen_name]),
            "naive": deciles(y, naive, ranks=ranks[naive_name]),
        },
        spend={
            "hurdle_model": spend_report("E[spend | buy] model", actual, model_spend),
            "naive_avg_order_value": spend_report("past avg order value", actual, naive_spend),
        },
        curves=Curves(
            y, prob, naive, scores[notebook_name] if notebook_name else None, points=points
        ),
        value={
            **value_report(prob * expected_spend, realized),
            "spend_per_buyer": {
                "predicted_mean": float(model_spend.mean()),
                "realized_mean": float(actual.mean()),
            },
            "peers": peer_value,
        },
        truth=truth(snaps.protocol.date(TEST), snaps.whole(TEST), {"chosen": prob})
        if truth
        else None,
        drift=drift,
        notes=notes,
    )


def _compare_scores(
    chosen: Setup,
    pool: list[Setup],
    snaps: Snapshots,
    ts: TrainingSet,
    X: np.ndarray,
    *,
    seed: int,
) -> dict[str, np.ndarray]:
    """Scores of the test snapshot from: the other setups (trained like the chosen), the
    notebook approach (LR, RF, GB with SMOTE to full balance, on the latest training
    snapshot with every row), and the chosen setup on that one snapshot (not stacked)."""
    out = {}
    for c in pool:
        if c.name != chosen.name:
            out[c.name] = predict_positive(fit_setup(c, ts.X, ts.y, seed), X)
    latest = snaps[TEST + 1]
    Xl, yl = ts.encoding.transform(latest), snaps.labels(TEST + 1)
    for c in notebook_setups():
        out[c.name] = predict_positive(fit_setup(c, Xl, yl, seed), X)
    one = Snapshots(replace(snaps.protocol, train_snapshots=1), snaps.frames)
    single = training_set(one, TEST, seed=seed)
    s = predict_positive(
        fit_setup(chosen, single.X, single.y, seed), single.encoding.transform(snaps[TEST])
    )
    out[f"{chosen.name} (latest snapshot only, not stacked)"] = s
    return out
