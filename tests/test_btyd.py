"""The BG/NBD + Gamma-Gamma baseline against data drawn from those very models: the fit
recovers the parameters, and the closed-form forecasts add up to what the draw did next."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from olist_fast.btyd import (
    BGNBD,
    Histories,
    btyd_forecast,
    fit_bgnbd,
    fit_gamma_gamma,
)

TRUE = BGNBD(r=0.6, alpha=40.0, a=0.8, b=2.5)
HORIZON = 90.0


def draw(n: int, seed: int) -> tuple[Histories, np.ndarray, np.ndarray]:
    """BG/NBD customers with ages 30-600 days: their histories, and their purchases in the
    ``HORIZON`` days after (and whether they bought then)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(TRUE.r, 1.0 / TRUE.alpha, n)
    p = rng.beta(TRUE.a, TRUE.b, n)
    T = rng.uniform(30.0, 600.0, n)
    end = T + HORIZON
    t = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    x = np.zeros(n)
    t_x = np.zeros(n)
    later = np.zeros(n)
    going = np.ones(n, dtype=bool)
    while going.any():
        idx = np.flatnonzero(going)
        t[idx] += rng.exponential(1.0 / lam[idx])
        inside = t[idx] <= end[idx]
        before = inside & (t[idx] <= T[idx])
        x[idx[before]] += 1
        t_x[idx[before]] = t[idx[before]]
        after = inside & ~before
        later[idx[after]] += 1
        dies = inside & (rng.random(idx.size) < p[idx])
        alive[idx[dies]] = False
        going[idx[~inside | dies]] = False
    return Histories(x, t_x, T), later, later > 0


def test_bgnbd_recovers_its_parameters_and_forecasts_the_next_window() -> None:
    h, later, bought = draw(30_000, seed=1)
    fit = fit_bgnbd(h)
    assert fit.r == pytest.approx(TRUE.r, rel=0.15)
    assert fit.alpha == pytest.approx(TRUE.alpha, rel=0.2)
    assert fit.a == pytest.approx(TRUE.a, rel=0.3)
    assert fit.b == pytest.approx(TRUE.b, rel=0.3)
    # totals: buyers and purchases in the next window, within a few percent
    assert fit.p_buy(h, HORIZON).sum() == pytest.approx(bought.sum(), rel=0.04)
    assert fit.expected_purchases(h, HORIZON).sum() == pytest.approx(later.sum(), rel=0.05)
    # and the true parameters' forecasts agree with the draw too (the formulas, not the fit)
    assert TRUE.p_buy(h, HORIZON).sum() == pytest.approx(bought.sum(), rel=0.04)
    # ranking: customers with a longer silence after many purchases are less likely alive
    p = fit.p_alive(Histories(np.array([5.0, 5.0, 0.0]), np.array([500.0, 100.0, 0.0]),
                              np.array([510.0, 510.0, 510.0])))  # fmt: skip
    assert p[0] > p[1] and p[2] == 1.0


def test_gamma_gamma_recovers_its_parameters() -> None:
    rng = np.random.default_rng(2)
    p_true, q_true, g_true = 4.0, 3.0, 60.0
    n = rng.integers(1, 6, 20_000).astype(float)
    nu = rng.gamma(q_true, 1.0 / g_true, n.size)
    m = np.array([rng.gamma(p_true, 1.0 / v, int(k)).mean() for v, k in zip(nu, n, strict=True)])
    gg = fit_gamma_gamma(n, m)
    assert gg.p == pytest.approx(p_true, rel=0.15)
    assert gg.q == pytest.approx(q_true, rel=0.15)
    assert gg.gamma == pytest.approx(g_true, rel=0.2)
    assert gg.mean == pytest.approx(p_true * g_true / (q_true - 1), rel=0.1)
    # a refund-only customer (mean order value <= 0) gets the population mean
    assert gg.expected_order_value(np.array([2.0]), np.array([-5.0]))[0] == gg.mean


def test_forecast_reads_the_feature_table() -> None:
    h, _, _ = draw(5_000, seed=3)
    snap = pl.DataFrame({
        "n_purchase_days": (h.x + 1).astype(np.int64),
        "n_orders": (h.x + 1).astype(np.int64),
        "tenure_days": h.T,
        "recency_days": h.T - h.t_x,
        "avg_order_value": np.where(h.x > 3, -1.0, 100.0 + h.x),
    })  # fmt: skip
    f = btyd_forecast(snap, 90)
    assert f.p_buy.shape == (5_000,) and np.all((f.p_buy >= 0) & (f.p_buy <= 1))
    assert np.all(f.expected_purchases >= f.p_buy - 1e-9)  # E[N] >= P(N > 0)
    assert np.all(np.isfinite(f.expected_value)) and np.all(f.expected_value >= 0)
