"""Metrics, the paired bootstrap and the one-standard-error rule, on hand-built numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from olist_fast.calibration import PlattCalibration
from olist_fast.evaluate import (
    auc_score,
    bootstrap_aucs,
    lift_at,
    paired_difference,
    poisson_weights,
)
from olist_fast.models import compared_setups, setup_named
from olist_fast.selection import one_standard_error_choice


def scores(n: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.03).astype(np.int64)
    strong = rng.normal(size=n) + 0.8 * y
    weak = rng.normal(size=n) + 0.3 * y
    return y, strong, weak


def test_poisson_weights_have_mean_and_variance_one() -> None:
    w = poisson_weights(np.random.default_rng(0), (200, 5_000)).astype(float)
    assert w.mean() == pytest.approx(1.0, abs=0.01)
    assert w.var() == pytest.approx(1.0, abs=0.02)
    assert np.mean(w == 0) == pytest.approx(math.exp(-1), abs=0.01)


def test_bootstrap_aucs_centre_on_the_auc_with_a_sensible_spread() -> None:
    y, strong, weak = scores()
    boot = bootstrap_aucs(y, [strong, weak], n_boot=300, random_state=1)
    assert boot.shape == (300, 2)
    for k, s in enumerate((strong, weak)):
        assert boot[:, k].mean() == pytest.approx(auc_score(y, s), abs=0.005)
    # the Hanley-McNeil standard error of an AUC near 0.7 with ~600 buyers is about 0.012
    assert 0.006 < boot[:, 0].std() < 0.02


def test_bootstrap_counts_ties_half() -> None:
    y = np.array([1, 0, 1, 0])
    s = np.array([0.5, 0.5, 0.5, 0.5])
    boot = bootstrap_aucs(y, [s], n_boot=20)[:, 0]
    finite = boot[np.isfinite(boot)]  # NaN: a resample that drew no buyer or no non-buyer
    assert len(finite) > 5 and np.all(finite == 0.5)


def test_paired_difference_is_exactly_zero_for_the_same_score() -> None:
    y, strong, _ = scores()
    boot = bootstrap_aucs(y, [strong, strong], n_boot=100)
    d = paired_difference(y, ("a", strong), ("b", strong), boot)
    assert d.roc_auc_diff == d.roc_auc_diff_low == d.roc_auc_diff_high == 0.0
    assert d.lift_top10_diff == d.lift_top10_diff_low == d.lift_top10_diff_high == 0.0


def test_paired_difference_finds_a_real_difference() -> None:
    y, strong, weak = scores()
    boot = bootstrap_aucs(y, [strong, weak], n_boot=200)
    d = paired_difference(y, ("strong", strong), ("weak", weak), boot)
    assert d.roc_auc_diff == pytest.approx(auc_score(y, strong) - auc_score(y, weak))
    assert 0 < d.roc_auc_diff_low < d.roc_auc_diff < d.roc_auc_diff_high
    assert d.lift_top10_diff == pytest.approx(lift_at(y, strong, 0.1) - lift_at(y, weak, 0.1))
    assert d.lift_top10_diff_low > 0


def test_one_standard_error_rule_prefers_the_simpler_setup() -> None:
    pool = [setup_named(n) for n in ("logistic", "logistic+smote", "xgboost", "random_forest")]
    mean = {"logistic": 0.620, "logistic+smote": 0.600, "xgboost": 0.628, "random_forest": 0.61}
    se = {"logistic": 0.01, "logistic+smote": 0.01, "xgboost": 0.0, "random_forest": 0.01}
    chosen, reason = one_standard_error_choice(pool, mean, se)
    assert chosen.name == "logistic" and "xgboost" in reason
    se["logistic"] = 0.005  # now logistic is more than one standard error below
    assert one_standard_error_choice(pool, mean, se)[0].name == "xgboost"  # the best
    se["logistic+smote"] = 0.03  # within one (wide) standard error, and simpler
    assert one_standard_error_choice(pool, mean, se)[0].name == "logistic+smote"


def test_paired_standard_error_cancels_shared_drift() -> None:
    """A setup that wins every window by the same margin is chosen, however much the
    windows drift; one whose lead flips is not."""
    from datetime import datetime

    from olist_fast.selection import FoldResult, Selection

    pool = [c for c in compared_setups() if c.name in ("logistic", "random_forest")]
    folds = [
        FoldResult(datetime(2018, 1, 1), (), 100, 1000, {"logistic": a, "random_forest": a + 0.01})
        for a in (0.55, 0.60, 0.65)
    ]
    sel = Selection(pool, folds, pool[0], "")
    assert sel.standard_error["logistic"] > 0.02  # the drift
    assert sel.difference_standard_error["logistic"] < 1e-9  # cancels in the difference
    assert one_standard_error_choice(pool, sel.mean, sel.difference_standard_error)[0] == pool[1]
    flips = [FoldResult(f.test_date, (), 100, 1000,
                        {"logistic": f.auc["logistic"] + d, "random_forest": f.auc["logistic"]})
             for f, d in zip(folds, (0.02, -0.03, 0.02), strict=True)]  # fmt: skip
    sel = Selection(pool, flips, pool[0], "")
    assert one_standard_error_choice(pool, sel.mean, sel.difference_standard_error)[0] == pool[0]


def test_platt_calibration_recovers_a_known_map() -> None:
    rng = np.random.default_rng(2)
    s = rng.uniform(0.01, 0.99, 50_000)
    z = 0.7 * np.log(s / (1 - s)) - 1.5
    y = (rng.random(s.size) < 1 / (1 + np.exp(-z))).astype(int)
    cal = PlattCalibration.fit(s, y)
    assert cal.a == pytest.approx(0.7, abs=0.05) and cal.b == pytest.approx(-1.5, abs=0.05)


def test_platt_calibration_never_turns_the_ranking_upside_down() -> None:
    """Scores that rank the calibration window's buyers backwards (a handful of buyers)
    would give a negative slope; the map keeps slope 1 and fits the level only."""
    rng = np.random.default_rng(3)
    s = rng.uniform(0.05, 0.95, 2_000)
    y = (rng.random(s.size) < 0.08 * (1.2 - s)).astype(int)  # more buyers at low scores
    w = np.where(y == 1, 1.0, 3.0)  # sampled non-buyers, weighted back
    cal = PlattCalibration.fit(s, y, sample_weight=w)
    assert cal.a == 1.0
    p = cal(s)
    order = np.argsort(s)
    assert np.all(np.diff(p[order]) >= 0)  # the model's ranking stands
    assert float(np.sum(w * p)) == pytest.approx(float(np.sum(w * y)), rel=1e-6)


def test_normalized_gini_is_one_for_the_best_order_and_near_zero_for_noise() -> None:
    from olist_fast.evaluate import normalized_gini_score

    rng = np.random.default_rng(0)
    actual = rng.lognormal(3, 1, 5000) * (rng.random(5000) < 0.1)
    assert normalized_gini_score(actual, actual) == pytest.approx(1.0)
    assert normalized_gini_score(actual, actual * 3 + 1) == pytest.approx(1.0)  # order only
    assert normalized_gini_score(actual, -actual) < -0.9
    assert abs(normalized_gini_score(actual, rng.random(5000))) < 0.05


def test_value_report_sums_and_deciles() -> None:
    from olist_fast.evaluate import value_report

    expected = np.arange(100, dtype=float)
    realized = np.where(np.arange(100) >= 90, 20.0, 0.0)
    realized[0] = -5.0  # a refund: realized spend is floored at zero
    r = value_report(expected, realized)
    assert r["expected_total"] == pytest.approx(4950.0) and r["realized_total"] == 200.0
    assert r["deciles"][0]["expected"] == pytest.approx(sum(range(90, 100)))
    assert r["deciles"][0]["realized"] == 200.0 and r["deciles"][1]["realized"] == 0.0
    assert r["normalized_gini"] == pytest.approx(1.0)


def _reference_value_report(expected: np.ndarray, realized: np.ndarray) -> tuple:
    """The value report as first written: a decile per row and rankdata ranks."""
    from scipy.stats import rankdata

    realized = np.maximum(realized, 0.0)
    n = len(expected)
    order = np.argsort(-expected, kind="stable")
    decile = np.empty(n, dtype=np.int64)
    decile[order] = np.ceil(np.arange(1, n + 1) * 10 / n).astype(np.int64)
    sums = [(expected[decile == d].sum(), realized[decile == d].sum()) for d in range(1, 11)]

    def gini(by: np.ndarray) -> float:
        ranks = rankdata(-by, method="average")
        return (realized * (n - ranks + 0.5)).sum() / (realized.sum() * n) - 0.5

    return sums, gini(expected) / gini(realized)


@pytest.mark.parametrize("block", [None, 7, 64])  # small blocks: tie groups span several
@pytest.mark.parametrize("n", [2, 7, 10, 13, 999, 20_001])
def test_value_report_matches_per_row_deciles_and_average_ranks_under_heavy_ties(
    n, block, monkeypatch
) -> None:
    import olist_fast.evaluate as E
    from olist_fast.evaluate import normalized_gini_score, value_report

    if block:
        monkeypatch.setattr(E, "GINI_BLOCK", block)

    rng = np.random.default_rng(n)
    expected = np.round(rng.gamma(0.5, 20, n), 0)  # many ties, some across decile edges
    realized = np.where(rng.random(n) < 0.3, np.round(rng.lognormal(3, 1, n), 0), 0.0)
    realized[: n // 5] *= -1  # refunds count as zero
    realized[-1] = 50.0
    got = value_report(expected, realized)
    sums, gini = _reference_value_report(expected, realized)
    for row, (pred, real) in zip(got["deciles"], sums, strict=True):
        assert row["expected"] == pytest.approx(pred, rel=1e-12, abs=1e-9)
        assert row["realized"] == pytest.approx(real, rel=1e-12, abs=1e-9)
    assert got["normalized_gini"] == pytest.approx(gini, rel=1e-9, abs=1e-12)
    floored = np.maximum(realized, 0.0)
    assert normalized_gini_score(floored, expected) == pytest.approx(gini, rel=1e-9, abs=1e-12)


def test_deciles_count_observed_and_expected_buyers_per_decile() -> None:
    from olist_fast.evaluate import deciles

    prob = np.linspace(0.001, 0.5, 1000)
    y = np.zeros(1000, dtype=np.int64)
    y[-30:] = 1  # the 30 highest probabilities buy: all in decile 1
    y[:5] = 1  # and 5 of the lowest: decile 10
    d = deciles(y, prob, probabilities=True)
    assert d["positives"][0] == 30 and d["positives"][-1] == 5 and sum(d["positives"]) == 35
    assert d["expected_positives"][0] == pytest.approx(prob[-100:].sum())
    assert sum(d["expected_positives"]) == pytest.approx(prob.sum())
    assert "expected_positives" not in deciles(y, prob)  # a ranking score expects nothing


def test_value_panel_draws_expected_against_realized_per_decile() -> None:
    from matplotlib.figure import Figure

    from olist_fast.evaluate import value_report
    from olist_fast.report import _value_panel

    expected = np.arange(100, dtype=float)
    realized = np.where(expected >= 90, 20.0, 0.0)
    value = value_report(expected, realized)
    ax = Figure().subplots()
    _value_panel(ax, value)
    heights = [p.get_height() for p in ax.patches]
    assert heights[:10] == [d["expected"] for d in value["deciles"]]
    assert heights[10:] == [d["realized"] for d in value["deciles"]]
    assert "expected 4,950" in ax.get_title() and "realized 200" in ax.get_title()
    empty = Figure().subplots()
    _value_panel(empty, {})
    assert not empty.patches and "not measured" in empty.get_title()


def test_bootstrap_on_a_sample_of_non_buyers_is_centred_and_no_narrower(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Above BOOT_MAX_NEGATIVES non-buyers the resamples draw from a sample of them: each
    score's resampled AUCs centre on its AUC over every row, and the interval is at least
    as wide as the full bootstrap's (the sample's non-buyers vary more)."""
    import olist_fast.evaluate as E

    y, strong, weak = scores(n=60_000, seed=3)
    full = bootstrap_aucs(y, [strong, weak], n_boot=300, random_state=2)
    monkeypatch.setattr(E, "BOOT_MAX_NEGATIVES", 5_000)
    sub = E.bootstrap_aucs(y, [strong, weak], n_boot=300, random_state=2)
    for k, s in enumerate((strong, weak)):
        assert sub[:, k].mean() == pytest.approx(auc_score(y, s), abs=0.003)
        assert sub[:, k].std() >= 0.95 * full[:, k].std()
        assert sub[:, k].std() < 2 * full[:, k].std()


def test_the_lift_interval_draws_its_weights_in_bounded_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Drawing the lift's resample weights a few resamples at a time (many rows) gives an
    interval as good as drawing 50 at once."""
    import olist_fast.evaluate as E

    y, strong, weak = scores(n=60_000, seed=4)
    boot = bootstrap_aucs(y, [strong, weak], n_boot=200)
    wide = paired_difference(y, ("strong", strong), ("weak", weak), boot)
    monkeypatch.setattr(E, "LIFT_CELLS", 30_000)  # a few resamples per block here
    narrow = E.paired_difference(y, ("strong", strong), ("weak", weak), boot)
    assert narrow.lift_top10_diff == wide.lift_top10_diff
    width = wide.lift_top10_diff_high - wide.lift_top10_diff_low
    assert narrow.lift_top10_diff_low == pytest.approx(wide.lift_top10_diff_low, abs=0.25 * width)
    assert narrow.lift_top10_diff_high == pytest.approx(wide.lift_top10_diff_high, abs=0.25 * width)


def _tied(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, a score with many distinct values and one with heavy ties (as the naive
    ranking's order counts)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.05).astype(np.int64)
    smooth = rng.random(n) + 0.3 * y
    tied = rng.integers(0, 5, n) + y * rng.integers(0, 2, n) - 0.0
    return y, smooth, tied.astype(np.float64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_sort_gives_scikit_learns_metrics(seed: int) -> None:
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_curve

    from olist_fast.evaluate import Ranked, deciles, ranking_order

    y, smooth, tied = _tied(5_000, seed)
    for s in (smooth, tied, np.zeros(len(y))):
        r = Ranked.of(y, s)
        assert np.array_equal(r.order, np.lexsort((np.arange(len(s)), -s)))  # the old order
        assert np.array_equal(ranking_order(s), r.order)
        assert r.auc() == pytest.approx(auc_score(y, s), abs=1e-12)
        assert r.average_precision() == pytest.approx(average_precision_score(y, s), abs=1e-12)
        for f in (0.01, 0.1, 0.5):
            assert r.lift(f) == lift_at(y, s, f)
        assert deciles(y, s, ranks=r, probabilities=True) == deciles(y, s, probabilities=True)
        points = r.curves(points=50)
        fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
        on_roc = {(round(a, 12), round(b, 12)) for a, b in zip(fpr, tpr, strict=True)}
        assert all(
            (round(a, 12), round(b, 12)) in on_roc
            for a, b in zip(points["fpr"], points["tpr"], strict=True)
        )
        prec, rec, _ = precision_recall_curve(y, s)
        on_pr = {(round(a, 12), round(b, 12)) for a, b in zip(rec, prec, strict=True)}
        assert all(
            (round(a, 12), round(b, 12)) in on_pr
            for a, b in zip(points["recall"], points["precision"], strict=True)
        )
        assert float(points["auc"]) == r.auc()


def test_sorted_reports_equal_the_unsorted_ones() -> None:
    """The backtest's reports from one sort per score equal scikit-learn's (to the last
    bits of a float sum), for the report and for the paired difference."""
    from olist_fast.evaluate import ranked, ranking_report

    y, smooth, tied = _tied(300_000, 3)
    ra, rb = ranked(y, smooth), ranked(y, tied)
    assert ra is not None and rb is not None and ranked(y[:1000], smooth[:1000]) is None
    boot = bootstrap_aucs(y, [smooth, tied], n_boot=30)
    for s, r, k in ((smooth, ra, 0), (tied, rb, 1)):
        a = ranking_report("s", y, s, probabilities=False, boot_aucs=boot[:, k], ranks=r)
        b = ranking_report("s", y, s, probabilities=False, boot_aucs=boot[:, k])
        for field, value in a.as_dict().items():
            assert value == pytest.approx(b.as_dict()[field], abs=1e-12), field
    d1 = paired_difference(y, ("a", smooth), ("b", tied), boot, ranks=(ra, rb))
    d2 = paired_difference(y, ("a", smooth), ("b", tied), boot)
    for field, value in d1.as_dict().items():
        assert value == pytest.approx(d2.as_dict()[field], abs=1e-12), field


@pytest.mark.parametrize("n", [1, 10, 100_003])
def test_brier_score_is_scikit_learn_s(n: int) -> None:
    from sklearn.metrics import brier_score_loss

    from olist_fast.evaluate import brier_score

    rng = np.random.default_rng(n)
    y = (rng.random(n) < 0.1).astype(np.int64)
    p = rng.random(n)
    assert brier_score(y, p) == brier_score_loss(y, p)
    assert brier_score(y.astype(np.int8), p) == brier_score_loss(y, p)


def test_gini_is_nan_where_rankdata_s_was() -> None:
    """No ordering of equal spends beats another (the best order's Gini is 0), and a NaN
    prediction has no rank: NaN, not an error or a number."""
    from olist_fast.evaluate import normalized_gini_score, value_report

    assert math.isnan(normalized_gini_score(np.array([5.0, 5.0]), np.array([0.2, 0.1])))
    assert math.isnan(value_report(np.array([0.2, 0.1]), np.array([5.0, 5.0]))["normalized_gini"])
    assert math.isnan(normalized_gini_score(np.array([5.0, 0, 1]), np.array([np.nan, 0.1, 0.2])))
    assert math.isnan(normalized_gini_score(np.zeros(3), np.array([0.3, 0.1, 0.2])))
