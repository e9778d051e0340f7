"""What a run reports: the figure ``model_plots.png`` (how well the chosen model ranks
and how honest it is) and the text summaries the commands print."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from olist_fast.validation import ValidationReport


def plot_run(
    curves: dict, backtest: dict, importance: dict[str, float], path: Path, *, title: str
) -> None:
    """ROC and PR curves with the baselines, gains and lift by decile, calibration in
    quantile bins, value calibration by decile (expected value against realized spend),
    and the final model's feature importance; one PNG."""
    # imported here: the text summaries below need neither, and the CLI imports them
    from matplotlib.figure import Figure
    from sklearn.metrics import precision_recall_curve, roc_curve

    y = curves["y"]
    series = [
        ("chosen (calibrated)", curves["chosen"], "C0", "chosen"),
        ("notebook approach", curves.get("notebook"), "C1", "notebook"),
        ("naive: orders, recency", curves["naive"], "C2", "naive"),
    ]
    # the curves' points, computed with the metrics on large windows (each score sorted
    # once); else here, with scikit-learn
    points = curves.get("points") or {}
    # a Figure without pyplot: no global backend is chosen or changed (a library user's
    # notebook keeps its own), no figure registry to leak into, safe off the main thread
    fig = Figure(figsize=(21, 9.5))
    panels = fig.subplot_mosaic(
        [["roc", "pr", "gains", "value"], ["lift", "calibration", "importance", "importance"]]
    )
    ax = panels["roc"]
    for label, s, color, key in series:
        if s is None:
            continue
        if key in points:
            fpr, tpr, auc = points[key]["fpr"], points[key]["tpr"], float(points[key]["auc"])
        else:
            fpr, tpr, _ = roc_curve(y, s)
            auc = np.trapezoid(tpr, fpr)
        ax.plot(fpr, tpr, color=color, label=f"{label}: AUC {auc:.3f}")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set(title="ROC (backtest)", xlabel="false positive rate", ylabel="true positive rate")
    ax.legend(loc="lower right", fontsize=8)
    ax = panels["pr"]
    for label, s, color, key in series:
        if s is None:
            continue
        if key in points:
            prec, rec = points[key]["precision"], points[key]["recall"]
        else:
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


def validation_summary(report: ValidationReport) -> tuple[list[str], list[str]]:
    """What ``olist-fast validate`` prints: (lines for stdout, lines for stderr)."""
    out: list[str] = []
    err: list[str] = []
    for line in report.errors:
        err.append(f"error: {line}")
    for line in report.warnings:
        err.append(f"warning: {line}")
    if report.rows:
        out.append("Rows per table:")
        for name, n in report.rows.items():
            out.append(f"  {name:<22}{n:>12,}")
    if report.purchase_range:
        lo, hi = report.purchase_range
        out.append(f"Purchases from {lo} to {hi}")
    if report.monthly is not None:
        out.append("Orders per month (all / eligible):")
        for month, total, elig in report.monthly.iter_rows():
            out.append(f"  {month:%Y-%m} {total:>10,} {elig:>10,}")
    if report.health:
        h = report.health
        where = (
            f"eligible orders fall below 10% of the busiest month in {h.collapse_month}"
            if h.collapse_month
            else "no month after the busiest falls below 10% of it"
        )
        out.append(
            f"Data health: busiest month {h.busiest_month} ({h.busiest_orders:,} eligible "
            f"orders); {where}. Healthy period ends {h.healthy_end:%Y-%m-%d} "
            "(the default --as-of)."
        )
    return out, err


def run_summary(result: Any) -> list[str]:
    """The text ``olist-fast run`` prints after the job: the fold table and choice, the
    backtest against the baselines, what the totals came to, and the files written."""
    lines: list[str] = []
    m = result.metrics
    sel, bt = m["selection"], m["backtest"]
    names = sel["simplicity_order"]
    lines.append("")
    lines.append("Selection: ROC AUC per fold (setups simplest first)")
    lines.append(f"  {'fold test date':<16}{'buyers':>8}" + "".join(f"{n[:16]:>17}" for n in names))
    for f in sel["folds"]:
        aucs = "".join(f"{f['roc_auc'][n]:>17.4f}" for n in names)
        lines.append(f"  {f['test_date'][:10]:<16}{f['buyers']:>8}{aucs}")
    if sel["folds"]:
        mean = "".join(f"{_num(sel['mean_roc_auc'][n]):>17}" for n in names)
        se = "".join(f"{_num(sel['standard_error'][n]):>17}" for n in names)
        dse = "".join(f"{_num(sel['difference_to_best_standard_error'][n]):>17}" for n in names)
        lines.append(f"  {'mean':<24}{mean}")
        lines.append(f"  {'standard error':<24}{se}")
        lines.append(f"  {'s.e. of gap to best':<24}{dse}")
    lines.append(f"  rule: {sel['rule']}")
    lines.append(f"  chosen: {sel['chosen']}: {sel['reason']}")
    lines.append("")
    lines.append(
        f"Backtest: labels in [{bt['test_date'][:10]}, as_of), trained on "
        f"{', '.join(d[:10] for d in bt['train_dates'])}"
    )
    lines.append(
        f"  {'model':<48}{'ROC AUC (95% CI)':>22}{'PR AUC':>9}{'lift@10%':>10}"
        f"{'lift@1%':>9}{'buyers':>8}"
    )
    rows = [bt["chosen"], *bt["comparison"], bt["baselines"]["naive"]]
    for r in rows:
        auc = f"{r['roc_auc']:.3f} ({r['roc_auc_low']:.3f}-{r['roc_auc_high']:.3f})"
        lines.append(
            f"  {r['name'][:47]:<48}{auc:>22}{r['pr_auc']:>9.4f}{r['lift_top10']:>10.2f}"
            f"{r['lift_top1']:>9.2f}{r['positives']:>8}"
        )
    truth = bt.get("truth")
    if truth:
        lines.append(
            f"  generated data: oracle AUC {truth['oracle_auc']:.3f} (ranking by the true "
            f"probability), feature ceiling {truth['feature_ceiling_auc']:.3f}"
        )
        e = truth.get("expected_auc") or {}
        if "chosen" in e:
            lines.append(
                f"  expected AUC over the true probabilities (no outcome noise): chosen "
                f"{e['chosen']:.4f}, feature ceiling {e['feature_ceiling']:.4f} "
                f"({e['chosen'] - e['feature_ceiling']:+.4f}), oracle "
                f"{e['oracle']:.4f}"
            )
    for d in bt["differences"]:
        b = "naive" if d["b"].startswith("baseline:naive") else d["b"]
        lines.append(
            f"  chosen minus {b}: AUC {d['roc_auc_diff']:+.3f} "
            f"({d['roc_auc_diff_low']:+.3f} to {d['roc_auc_diff_high']:+.3f}), lift@10% "
            f"{d['lift_top10_diff']:+.2f} ({d['lift_top10_diff_low']:+.2f} to "
            f"{d['lift_top10_diff_high']:+.2f}), paired bootstrap 95%"
        )
    ch = bt["chosen"]
    lines.append(
        f"  calibrated: expected {ch['expected_positives']:.0f} buyers, observed "
        f"{ch['positives']}; Brier {ch['brier']:.5f}"
    )
    dec = bt["deciles"]["chosen"]
    if "expected_positives" in dec:
        top = ", ".join(
            f"{e:.0f}/{o}"
            for e, o in zip(dec["expected_positives"][:3], dec["positives"][:3], strict=True)
        )
        lines.append(f"  buyers expected/observed in the top deciles: {top}")
    sp = bt["spend"]
    lines.append(
        f"  spend of buyers, MAE: model {sp['hurdle_model']['mae']:.1f}, past average "
        f"order value {sp['naive_avg_order_value']['mae']:.1f}"
    )
    if value := bt.get("value"):
        per = value["spend_per_buyer"]
        top = ", ".join(_fixed(d["ratio"], 2) for d in value["deciles"][:3])
        lines.append(
            f"  value: expected {value['expected_total']:,.0f}, realized "
            f"{value['realized_total']:,.0f} ({_fixed(value['ratio'], 2)}); spend per "
            f"buyer predicted {_fixed(per['predicted_mean'], 1)}, realized "
            f"{_fixed(per['realized_mean'], 1)}; top deciles {top}; normalized Gini "
            f"{_fixed(value['normalized_gini'], 3)}"
        )
        for name, peer in (value.get("peers") or {}).items():
            lines.append(
                f"  {name.removeprefix('peer:')}: expected {peer['expected_buyers']:.0f} "
                f"buyers; value expected {peer['expected_total']:,.0f} "
                f"({_fixed(peer['ratio'], 2)}); normalized Gini "
                f"{_fixed(peer['normalized_gini'], 3)}"
            )
    lines.append(f"Chosen setup: {result.chosen}. Files:")
    for name, path in result.files.items():
        lines.append(f"  {name:<9}{path}")
    return lines


def _fixed(x: float | None, digits: int) -> str:
    """A number with ``digits`` decimals; "-" for one that is undefined (null in JSON)."""
    return "-" if x is None else f"{x:.{digits}f}"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"
