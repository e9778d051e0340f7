"""The classic buy-till-you-die baseline: BG/NBD for who buys (Fader, Hardie and Lee,
"Counting your customers the easy way", Marketing Science 2005) and Gamma-Gamma for how
much (Fader, Hardie and Lee, "RFM and CLV", Journal of Marketing Research 2005), fitted by
maximum likelihood on one snapshot's histories.

It reads three numbers per customer from the feature table: repeat purchase days
``x = n_purchase_days - 1``, the time from the first to the last purchase
``t_x = tenure_days - recency_days`` and the age ``T = tenure_days`` (all in days), and
for spend the mean order value over ``n_orders`` orders. It needs no labels: fitted on
the snapshot at d, it forecasts the window [d, d + H).

The Gamma-Gamma model is fitted on every customer's orders, the first included (in Olist
most customers have one order; fitting on repeat orders alone would leave a few percent
of the customers to estimate everyone's spend); customers whose mean order value is not
positive (refunds) are left out of the fit and get the population mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from scipy.optimize import minimize
from scipy.special import gammaln, hyp2f1

from olist_fast.errors import OlistUsageError


@dataclass(frozen=True)
class Histories:
    """Per customer: repeat purchase days, first-to-last purchase and age (days)."""

    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray

    @classmethod
    def of(cls, snapshot: pl.DataFrame) -> Histories:
        x = snapshot["n_purchase_days"].to_numpy().astype(np.float64) - 1.0
        T = snapshot["tenure_days"].to_numpy().astype(np.float64)
        t_x = T - snapshot["recency_days"].to_numpy().astype(np.float64)
        # a customer whose every purchase lies on one day has t_x = 0 whatever the hours
        t_x = np.where(x > 0, np.clip(t_x, 0.0, T), 0.0)
        return cls(np.maximum(x, 0.0), t_x, np.maximum(T, 1e-9))


@dataclass(frozen=True)
class BGNBD:
    """Fitted BG/NBD parameters: purchase rates Gamma(r, alpha), per-purchase dropout
    probabilities Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float

    def _odds_dead(self, h: Histories) -> np.ndarray:
        """(a / (b + x - 1)) ((alpha + T) / (alpha + t_x))^(r + x) for x > 0, else 0."""
        x = h.x
        with np.errstate(divide="ignore", invalid="ignore"):
            log_odds = (
                np.log(self.a)
                - np.log(np.maximum(self.b + x - 1.0, 1e-300))
                + (self.r + x) * (np.log(self.alpha + h.T) - np.log(self.alpha + h.t_x))
            )
        return np.where(x > 0, np.exp(np.minimum(log_odds, 700.0)), 0.0)

    def p_alive(self, h: Histories) -> np.ndarray:
        return 1.0 / (1.0 + self._odds_dead(h))

    def p_buy(self, h: Histories, days: float) -> np.ndarray:
        """P(at least one purchase in the next ``days``): alive now, times a Poisson with
        the posterior Gamma rate buying at least once (a customer can drop out only right
        after a purchase, so one alive now makes the next purchase at their rate)."""
        shape, rate = self.r + h.x, self.alpha + h.T
        return self.p_alive(h) * -np.expm1(shape * np.log(rate / (rate + days)))

    def expected_purchases(self, h: Histories, days: float) -> np.ndarray:
        """E[purchases in the next ``days`` | history] (the paper's equation 10)."""
        a, b, r, alpha, x = self.a, self.b, self.r, self.alpha, h.x
        z = days / (alpha + h.T + days)
        head = (a + b + x - 1.0) / (a - 1.0)
        tail = 1.0 - ((alpha + h.T) / (alpha + h.T + days)) ** (r + x) * hyp2f1(
            r + x, b + x, a + b + x - 1.0, z
        )
        return head * tail / (1.0 + self._odds_dead(h))


def bgnbd_loglik(params: np.ndarray, h: Histories) -> np.ndarray:
    """Per-customer log-likelihood of (r, alpha, a, b)."""
    r, alpha, a, b = params
    x = h.x
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + h.T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.log(a) - np.log(b + x - 1.0) - (r + x) * np.log(alpha + h.t_x)
    a4 = np.where(x > 0, a4, -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


def fit_bgnbd(h: Histories) -> BGNBD:
    """Maximum likelihood (L-BFGS-B on the log parameters, from several starts)."""
    if len(h.x) == 0:
        raise OlistUsageError("BG/NBD needs at least one customer")
    scale = max(float(np.mean(h.T)), 1.0)  # alpha is in days: start it near the ages

    def loss(theta: np.ndarray) -> float:
        v = -float(np.mean(bgnbd_loglik(np.exp(theta), h)))
        return v if np.isfinite(v) else 1e300

    best: Any = None
    for start in ([0.5, scale, 1.0, 2.0], [1.0, scale / 10, 0.5, 5.0]):
        res = minimize(loss, np.log(start), method="L-BFGS-B", bounds=[(-12.0, 12.0)] * 4)
        if best is None or res.fun < best.fun:
            best = res
    r, alpha, a, b = np.exp(best.x)
    return BGNBD(float(r), float(alpha), float(a), float(b))


@dataclass(frozen=True)
class GammaGamma:
    """Fitted Gamma-Gamma parameters: order values Gamma(p, nu), nu ~ Gamma(q, gamma)."""

    p: float
    q: float
    gamma: float

    @property
    def mean(self) -> float:
        """The population's mean order value."""
        return self.p * self.gamma / (self.q - 1.0) if self.q > 1 else float("nan")

    def expected_order_value(self, n: np.ndarray, m: np.ndarray) -> np.ndarray:
        """E[order value | n orders with mean m]; the population mean where m <= 0."""
        n = np.asarray(n, dtype=np.float64)
        m = np.asarray(m, dtype=np.float64)
        ok = (m > 0) & (n > 0)
        post = (self.p * (self.gamma + n * np.where(ok, m, 0.0))) / (self.p * n + self.q - 1.0)
        return np.where(ok, post, self.mean)


def gamma_gamma_loglik(params: np.ndarray, n: np.ndarray, m: np.ndarray) -> np.ndarray:
    p, q, g = params
    return (
        gammaln(p * n + q)
        - gammaln(p * n)
        - gammaln(q)
        + q * np.log(g)
        + (p * n - 1.0) * np.log(m)
        + p * n * np.log(n)
        - (p * n + q) * np.log(g + n * m)
    )


def fit_gamma_gamma(n: np.ndarray, m: np.ndarray) -> GammaGamma:
    """Maximum likelihood on the customers with a positive mean order value."""
    n = np.asarray(n, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    ok = (m > 0) & (n > 0)
    if ok.sum() < 2:
        raise OlistUsageError("Gamma-Gamma needs at least two customers with positive spend")
    n, m = n[ok], m[ok]
    level = float(np.median(m))

    def loss(theta: np.ndarray) -> float:
        v = -float(np.mean(gamma_gamma_loglik(np.exp(theta), n, m)))
        return v if np.isfinite(v) else 1e300

    res = minimize(loss, np.log([2.0, 3.0, level]), method="L-BFGS-B", bounds=[(-12.0, 12.0)] * 3)
    p, q, g = np.exp(res.x)
    return GammaGamma(float(p), float(q), float(g))


@dataclass(frozen=True)
class BTYDForecast:
    """The baseline's forecast of one window, per customer of the snapshot."""

    p_buy: np.ndarray
    expected_purchases: np.ndarray
    expected_value: np.ndarray
    bgnbd: BGNBD
    gamma_gamma: GammaGamma


def btyd_forecast(snapshot: pl.DataFrame, horizon_days: int) -> BTYDForecast:
    """BG/NBD and Gamma-Gamma fitted on ``snapshot`` (its customers' histories as of its
    date), forecasting the ``horizon_days`` after it: P(buys), expected purchases, and
    expected spend = expected purchases x expected order value."""
    h = Histories.of(snapshot)
    bg = fit_bgnbd(h)
    n = snapshot["n_orders"].to_numpy()
    m = snapshot["avg_order_value"].to_numpy()
    gg = fit_gamma_gamma(n, m)
    purchases = bg.expected_purchases(h, horizon_days)
    return BTYDForecast(
        p_buy=bg.p_buy(h, horizon_days),
        expected_purchases=purchases,
        expected_value=purchases * gg.expected_order_value(n, m),
        bgnbd=bg,
        gamma_gamma=gg,
    )
