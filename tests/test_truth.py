"""The generator's truth: exact integrals, calibrated probabilities, ceilings, re-simulation."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from olist_fast import synth
from olist_fast.features import build_snapshots
from olist_fast.io import scan_olist
from olist_fast.synth import (
    GRID_DAYS,
    PARAMS_FILE,
    RepeatProcess,
    Simulation,
    generate,
    load_simulation,
    simulate,
)
from olist_fast.truth import feature_ceiling, truth_report

DATES = [datetime(2018, 1, 15), datetime(2018, 5, 1)]


Case = tuple[Simulation, list[pl.DataFrame]]


@pytest.fixture(scope="module")
def cases() -> dict[float | None, Case]:
    """Simulations at the default rate (more people, for enough buyers) and at 0.2, each
    with its snapshots at ``DATES``."""
    out: dict[float | None, Case] = {}
    for rate, scale in ((None, 0.3), (0.2, 0.08)):
        sim = simulate(scale=scale, random_state=11, repeat_rate=rate)
        lazy = {k: v.lazy() for k, v in sim.tables.items()}
        out[rate] = sim, build_snapshots(lazy, DATES, horizon_days=90)
    return out


def mu(proc: RepeatProcess, taste: float, level: float, t0: float, t: np.ndarray) -> np.ndarray:
    """The eligible intensity at times ``t``, written out point by point."""
    day = t.astype(np.int64)
    q = synth._ELIGIBLE_SHARE[day]
    orders = np.exp(taste + level) * synth._SEASON_GROWTH[day]
    orders = orders * (1 + proc.boost * np.exp(-(t - t0) / proc.boost_days))
    spike = proc.split_rate * np.exp(proc.split_taste * taste) * np.exp(-(t - t0) / proc.split_days)
    return q * (orders + np.where(day == int(t0), spike, 0.0))


@pytest.mark.parametrize(
    ("t0", "u", "v", "steps_per_day"),
    [
        (100.7, 100.7, 104.3, 1440),  # the split spike, two midnights
        (100.7, 101.0, 104.0, 1440),  # from the next midnight
        (430.25, 440.5, 520.75, 96),  # Black Friday 2017 and the December season
        (600.9, 650.0, 800.0, 96),  # cut at the collapse
    ],
)
def test_integral_is_exact(t0: float, u: float, v: float, steps_per_day: int) -> None:
    proc = RepeatProcess(beta0=-8.0)
    taste, level = np.array([0.4]), np.array([-8.3])
    got = proc.integral(taste, level, np.array([t0]), np.array([u]), np.array([v]), eligible=True)
    h = 1.0 / steps_per_day
    t = np.arange(u, min(v, GRID_DAYS), h) + h / 2
    want = mu(proc, 0.4, -8.3, t0, t).sum() * h
    assert got[0] == pytest.approx(want, rel=1e-5)


def test_truth_covers_exactly_the_snapshot_population(cases) -> None:
    for (sim, snaps), as_of, k in ((c, a, k) for c in cases.values() for k, a in enumerate(DATES)):
        snap = snaps[k]
        truth = sim.true_probability(as_of, 90)
        assert truth.schema == pl.Schema(
            {"customer_unique_id": pl.String, "true_probability": pl.Float64}
        )
        assert truth["customer_unique_id"].equals(snap["customer_unique_id"])


def test_truth_matches_observed_buyers_overall_and_by_half(cases) -> None:
    for (sim, snaps), as_of, k in ((c, a, k) for c in cases.values() for k, a in enumerate(DATES)):
        snap = snaps[k]
        p = sim.true_probability(as_of, 90)["true_probability"].to_numpy()
        y = snap["bought_again"].to_numpy()
        high = p > np.median(p)
        for part in (np.ones(p.size, bool), high, ~high):
            sd = np.sqrt((p[part] * (1 - p[part])).sum())
            assert abs(y[part].sum() - p[part].sum()) <= 3 * sd, (sim.repeat_rate, as_of)
        assert y[high].mean() > 1.5 * y[~high].mean()


def test_truth_is_zero_from_the_collapse_on(cases) -> None:
    sim, _ = cases[None]
    truth = sim.true_probability(datetime(2018, 9, 1), 30)
    assert truth.height > 0 and truth["true_probability"].max() == 0.0
    with pytest.raises(ValueError, match="horizon_days"):
        sim.true_probability(DATES[0], 0)


def test_truth_report_and_ceiling(cases) -> None:
    sim, snaps = cases[0.2]
    naive = snaps[1]["n_orders"].to_numpy().astype(float)
    report = truth_report(sim, snaps[1], 90, DATES[1], scores={"naive": naive})
    assert set(report) == {"oracle_auc", "feature_ceiling_auc", "expected_auc", "base_rate",
                           "expected_buyers", "buyers"}  # fmt: skip
    assert 0.5 < report["feature_ceiling_auc"] < report["oracle_auc"] < 1
    e = report["expected_auc"]
    # no ranking beats the truth in expectation; the features' best beats a coarse count
    assert 0.5 < e["naive"] < e["feature_ceiling"] < e["oracle"] < 1
    assert report["buyers"] == snaps[1]["bought_again"].sum()
    with pytest.raises(ValueError, match="not the"):
        truth_report(sim, snaps[1].slice(1), 90, DATES[1])
    with pytest.raises(ValueError, match="shape"):
        feature_ceiling(snaps[1], np.zeros(3))


def test_load_simulation_draws_the_files_again(tmp_path: Path) -> None:
    assert load_simulation(tmp_path) is None
    generate(tmp_path, scale=0.01, random_state=5, repeat_rate=0.05)
    sim = load_simulation(tmp_path)
    assert sim is not None and sim.repeat_rate == 0.05
    files = scan_olist(tmp_path)
    for name in ("orders", "customers", "order_payments"):
        assert sim.tables[name].equals(files[name].collect()), name
    params = json.loads((tmp_path / PARAMS_FILE).read_text())
    (tmp_path / PARAMS_FILE).write_text(json.dumps({**params, "generator_version": 1}))
    with pytest.raises(ValueError, match="generator version 1"):
        load_simulation(tmp_path)


def test_expected_auc_is_the_auc_when_outcomes_are_certain_and_the_mean_otherwise() -> None:
    from sklearn.metrics import roc_auc_score

    from olist_fast.truth import expected_auc

    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.2).astype(float)
    s = y + rng.normal(size=500)
    assert expected_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    # uncertain outcomes: the mean AUC over many draws (ratio vs mean of ratios: close at
    # 4,000 customers)
    p = rng.uniform(0.05, 0.4, 4_000)
    s = p + rng.normal(scale=0.1, size=4_000)
    draws = [roc_auc_score(rng.random(4_000) < p, s) for _ in range(300)]
    assert expected_auc(p, s) == pytest.approx(np.mean(draws), abs=0.002)
    with pytest.raises(ValueError, match="must be equal"):
        expected_auc(p, s[:-1])
