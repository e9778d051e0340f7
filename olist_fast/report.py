"""The figure ``model_plots.png``: how well the chosen model ranks and how honest it is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve


def plot_run(
    curves: dict, backtest: dict, importance: dict[str, float], path: Path, *, title: str
) -> None:
    """ROC and PR curves with the baselines, gains and lift by decile, calibration in
    quantile bins, value calibration by decile (expected value against realized spend),
    and the final model's feature importance; one PNG."""
    y = curves["y"]
    series = [
        ("chosen (calibrated)", curves["chosen"], "C0"),
        ("notebook approach", curves.get("notebook"), "C1"),
        ("naive: orders, recency", curves["naive"], "C2"),
    ]
    # a Figure without pyplot: no global backend is chosen or changed (a library user's
    # notebook keeps its own), no figure registry to leak into, safe off the main thread
    fig = Figure(figsize=(21, 9.5))
    panels = fig.subplot_mosaic(
        [["roc", "pr", "gains", "value"], ["lift", "calibration", "importance", "importance"]]
    )
    ax = panels["roc"]
    for label, s, color in series:
        if s is None:
            continue
        fpr, tpr, _ = roc_curve(y, s)
        auc = np.trapezoid(tpr, fpr)
        ax.plot(fpr, tpr, color=color, label=f"{label}: AUC {auc:.3f}")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set(title="ROC (backtest)", xlabel="false positive rate", ylabel="true positive rate")
    ax.legend(loc="lower right", fontsize=8)
    ax = panels["pr"]
    for label, s, color in series:
        if s is None:
            continue
        prec, rec, _ = precision_recall_curve(y, s)
        keep = np.unique(np.linspace(0, len(rec) - 1, min(len(rec), 2000)).astype(int))
        ax.plot(rec[keep], prec[keep], color=color, label=label)  # 2,000 points draw the same
    ax.axhline(y.mean(), color="grey", lw=0.8, ls="--", label=f"base rate {y.mean():.2%}")
    ax.set_ylim(0, min(1.0, max(0.05, 15 * y.mean())))
    ax.set(title="Precision-recall (backtest)", xlabel="recall", ylabel="precision")
    ax.legend(loc="upper right", fontsize=8)
    dec = backtest["deciles"]
    x = np.arange(1, 11)
    ax = panels["gains"]
    ax.plot(
        np.r_[0, x * 10],
        np.r_[0, dec["chosen"]["cumulative_gain"]] * 100,
        "o-",
        color="C0",
        label="chosen",
    )
    ax.plot(
        np.r_[0, x * 10],
        np.r_[0, dec["naive"]["cumulative_gain"]] * 100,
        "s-",
        color="C2",
        label="naive",
    )
    ax.plot([0, 100], [0, 100], color="grey", lw=0.8, ls="--", label="random")
    ax.set(
        title="Cumulative gains",
        xlabel="% of customers contacted (best first)",
        ylabel="% of buyers reached",
    )
    ax.legend(fontsize=8)
    ax = panels["lift"]
    ax.bar(x - 0.2, dec["chosen"]["lift"], width=0.4, color="C0", label="chosen")
    ax.bar(x + 0.2, dec["naive"]["lift"], width=0.4, color="C2", label="naive")
    ax.axhline(1, color="grey", lw=0.8, ls="--")
    ax.set(title="Lift by decile (1 = best)", xlabel="decile", ylabel="lift", xticks=x)
    ax.legend(fontsize=8)
    ax = panels["calibration"]
    cal = backtest["calibration_bins"]
    ax.plot(cal["predicted"], cal["observed"], "o-", color="C0")
    top = max(max(cal["predicted"]), max(cal["observed"])) * 1.05 or 1.0
    ax.plot([0, top], [0, top], color="grey", lw=0.8, ls="--")
    ch = backtest["chosen"]
    ax.set(
        title=f"Calibration (quantile bins): expected {ch['expected_positives']:.0f}, "
        f"observed {ch['positives']} buyers",
        xlabel="mean predicted probability",
        ylabel="observed rate",
    )
    ax.title.set_fontsize(9)
    _value_panel(panels["value"], backtest.get("value") or {})
    ax = panels["importance"]
    if importance:
        # the 15 largest, zeros left out (a sparse model sets most coefficients to 0)
        top_items = sorted((kv for kv in importance.items() if kv[1] > 0), key=lambda kv: kv[1])[
            -15:
        ]
        ax.barh([k for k, _ in top_items], [v for _, v in top_items], color="C0")
        ax.tick_params(axis="y", labelsize=7)
    ax.set(title="Feature importance (final model)")
    fig.suptitle(title)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.06, top=0.93, wspace=0.42, hspace=0.3)
    fig.savefig(path, dpi=100, format="png")


def _value_panel(ax, value: dict) -> None:
    """Per decile of expected value (1 = highest): the expected value summed against the
    spend that came, and the totals in the title (what a user plans revenue with)."""
    deciles = value.get("deciles") or []
    if not deciles:
        ax.set(title="Value calibration (backtest): not measured")
        return
    x = np.array([d["decile"] for d in deciles])
    ax.bar(
        x - 0.2,
        [d["expected"] for d in deciles],
        width=0.4,
        color="C0",
        label="expected value (propensity x spend)",
    )
    ax.bar(x + 0.2, [d["realized"] for d in deciles], width=0.4, color="C3", label="realized spend")
    ax.set(
        title=f"Value calibration (backtest): expected {value['expected_total']:,.0f}, "
        f"realized {value['realized_total']:,.0f}",
        xlabel="decile of expected value",
        ylabel="spend in the window, summed",
        xticks=x,
    )
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8)
