"""The repeat process: the intensity of a person's next order, integrated exactly.

Everyone makes a first order on the arrival curve (:mod:`olist_fast.synth._generator`);
after it, a person's next order arrives in continuous time with the intensity (per day)

    mu(t) = e^(a + beta0 + c(n) + x) S(t) G(t) (1 + A e^(-s/tau)) + B e^(rho a) e^(-s/tau_s)

for ``s = t - t0`` after ``t0``, the purchase time of their latest eligible
order (their first order until they have one); zero from the collapse
(2018-09-01) on, where the real data stops but for a trickle of new customers'
undelivered orders. The parts (values in ``RepeatProcess`` and the constants
below):

* ``a ~ N(0, taste_sd^2)``: a persistent taste that no feature sees;
* ``x``: how that order went (``EXPERIENCE``): late or slow delivery and a bad
  review (score <= 2) lower it, score 5 and a voucher payment raise it, plus the
  customer's state; ``c(n)``: the lift once a person has two eligible orders;
* ``S``: the season (November and December high, Black Friday weekend doubled);
  ``G``: growth, the intensity rising through 2017-18, so a model calibrated on
  an older snapshot underestimates a newer one;
* ``1 + A e^(-s/tau)``: recency, an extra that fades over weeks;
* ``B e^(-s/tau_s)``: same-day split orders, a spike hours long that ends at the
  next midnight (the real data has 2,997 people with two or more orders but
  only 2,149 on two or more days).

Every order's status is drawn the same way, from its day alone. An ineligible
(canceled or unavailable) order leaves the state as it was and the next order
is drawn afresh from its time; so eligible orders arrive with intensity
``q mu``, ``q`` the eligible share of the day, whatever the ineligible ones do.
``S``, ``G`` and ``q`` are constant within a day and the kernels integrate in
closed form, so integrals of the intensity are exact; the next order time is
drawn by inverting them (bisection, vectorised over people, round by round).
The intensity depends on the latest eligible order only, never on a sum over
past orders, so it cannot explode.

``beta0`` is solved for a target repeat rate (:mod:`olist_fast.synth._repeat_rate`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from olist_fast.synth._reference import COLLAPSE, DAY, STATUS_P, _ts

GRID_START = _ts("2016-09-01 00:00:00")  # day 0 of the intensity's day grid (a midnight)
GRID_DAYS = (COLLAPSE - GRID_START) // DAY  # the intensity is zero from the collapse on
# season of repeat orders by month (Jan..Dec) and the Black Friday weekend (Fri..Mon)
SEASON = np.array([0.95, 0.9, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.3, 1.15])
BLACK_FRIDAYS = ("2016-11-25", "2017-11-24")
BLACK_FRIDAY_BOOST = 2.0
GROWTH_PER_YEAR = 0.7  # slope of the log intensity in years (reference: 2018-01-01)
# shifts of the log intensity after an order, by how the order went
EXPERIENCE = {
    "late": -0.6,  # delivered after the estimated date
    "slow": -0.03,  # per delivery day beyond 10 (capped at 40 days)
    "bad_review": -0.6,  # score 1 or 2
    "top_review": 0.3,  # score 5
    "voucher": 0.7,  # paid with a voucher
    "sao_paulo": 0.3,  # the customer lives in SP
}
_STATUS_SHARE = STATUS_P / STATUS_P.sum()
_DRIFT_START = _ts("2017-01-01 00:00:00")


def _non_delivered_scale(midnight: np.ndarray) -> np.ndarray:
    """How many times the average share of undelivered orders an order of this day has
    (about 93 % delivered early in 2017, 98 % in mid 2018); constant within a day."""
    frac = np.clip((midnight - _DRIFT_START) / (540 * DAY), 0, 1)
    return 1.75 - 1.3 * frac


def _is_eligible(status: np.ndarray) -> np.ndarray:
    return (status != 2) & (status != 3)  # not canceled, not unavailable


def _grid_days(seconds: np.ndarray) -> np.ndarray:
    return (seconds - GRID_START) / DAY


def _day_factors() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per grid day: season x growth, the season alone (``G = 1``), and the share of that
    day's orders that are eligible."""
    day0 = np.datetime64("2016-09-01")
    days = np.arange(GRID_DAYS)
    month = (day0 + days).astype("datetime64[M]").astype(np.int64) % 12
    season = SEASON[month]
    for bf in BLACK_FRIDAYS:
        k = int((np.datetime64(bf) - day0).astype(np.int64))
        season[k : k + 4] *= BLACK_FRIDAY_BOOST
    years = (days - int((np.datetime64("2018-01-01") - day0).astype(np.int64))) / 365.25
    bad = _STATUS_SHARE[2] + _STATUS_SHARE[3]
    eligible = 1.0 - bad * _non_delivered_scale(GRID_START + DAY * days)
    return season * np.exp(GROWTH_PER_YEAR * years), season, eligible


_SEASON_GROWTH, _SEASON, _ELIGIBLE_SHARE = _day_factors()


@dataclass(frozen=True)
class _Weights:
    """A day-step weight, its running sum, and the tail sums of its decaying integral."""

    w: np.ndarray
    cum: np.ndarray  # cum[k] = sum of w[:k]
    tail: np.ndarray  # tail[k] = integral from day k to the end of w(t) exp(-t / tau)
    spike: np.ndarray  # the weight of the split spike (the eligible share, or 1)


@functools.cache
def _weights(tau: float, eligible: bool, growth: bool) -> _Weights:
    q = _ELIGIBLE_SHARE if eligible else np.ones(GRID_DAYS)
    w = (_SEASON_GROWTH if growth else _SEASON) * q
    j = np.arange(GRID_DAYS)
    piece = w * tau * np.exp(-j / tau) * -np.expm1(-1.0 / tau)
    tail = np.append(np.cumsum(piece[::-1])[::-1], 0.0)  # summed from the small end
    return _Weights(w, np.append(0.0, np.cumsum(w)), tail, q)


@dataclass(frozen=True, kw_only=True)
class RepeatProcess:
    """The intensity of a person's next order (per day); the module docstring has its shape.

    Times are grid days (days since ``GRID_START``, float). ``level`` is the part of the
    log intensity fixed by the latest eligible order: ``beta0 + c(n) + x``.
    """

    beta0: float
    taste_sd: float = 0.9  # sd of the latent taste a
    boost: float = 2.5  # A: the recency boost right after an order
    boost_days: float = 40.0  # tau: its time constant
    split_rate: float = 0.12  # B: the split spike's rate per day right after an order
    split_days: float = 2.0 / 24.0  # tau_s: its time constant (2 hours)
    split_taste: float = 0.5  # rho: how much the taste drives splitting
    repeater: float = 0.7  # c(n): the shift once a person has two or more eligible orders
    growth: bool = True  # G grows by GROWTH_PER_YEAR; False: G = 1

    def level(self, experience: np.ndarray, n_eligible: np.ndarray) -> np.ndarray:
        """``beta0 + c(n) + x`` for the experience ``x`` of an order and the ``n`` eligible
        orders up to it."""
        return self.beta0 + experience + self.repeater * (n_eligible >= 2)

    def components(
        self, t0: np.ndarray, u: np.ndarray, v: np.ndarray, *, eligible: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Integrals over ``[u, v)`` of the order profile ``S G (1 + A e^(-s/tau))`` and of
        the split spike ``e^(-s/tau_s)`` (until the midnight after ``t0``), with
        ``s = t - t0``, ``t0 <= u``; thinned by the eligible share when ``eligible``.
        Exact: the day factors are steps, the kernels are integrated in closed form."""
        wt = _weights(self.boost_days, eligible, self.growth)
        n = GRID_DAYS
        u = np.clip(u, 0.0, n)
        v = np.clip(v, u, n)
        t0 = np.minimum(t0, u)  # orders after the collapse: nothing to integrate
        ku = np.minimum(u.astype(np.int64), n - 1)
        kv = np.minimum(v.astype(np.int64), n - 1)
        flat = wt.cum[kv] + wt.w[kv] * (v - kv) - wt.cum[ku] - wt.w[ku] * (u - ku)
        tau = self.boost_days

        def rest(x: np.ndarray, k: np.ndarray) -> np.ndarray:  # from x to the end
            inside = np.exp(-(x - t0) / tau) - np.exp(-(k + 1 - t0) / tau)
            return np.exp(t0 / tau) * wt.tail[k + 1] + wt.w[k] * tau * inside

        slow = np.where(v > u, flat + self.boost * (rest(u, ku) - rest(v, kv)), 0.0)
        sd = self.split_days
        day = np.minimum(t0.astype(np.int64), n - 1)  # the spike ends at the next midnight
        hi = np.maximum(np.minimum(v, day + 1), u)
        spike = wt.spike[day] * sd * (np.exp(-(u - t0) / sd) - np.exp(-(hi - t0) / sd))
        return np.maximum(slow, 0.0), spike  # (rounding could make a tiny slow negative)

    def integral(
        self,
        taste: np.ndarray,
        level: np.ndarray,
        t0: np.ndarray,
        u: np.ndarray,
        v: np.ndarray,
        *,
        eligible: bool,
    ) -> np.ndarray:
        """The integrated intensity over ``[u, v)`` (of eligible orders when ``eligible``)."""
        slow, spike = self.components(t0, u, v, eligible=eligible)
        split = self.split_rate * np.exp(self.split_taste * taste)
        return np.exp(taste + level) * slow + split * spike

    def next_order(
        self,
        rng: np.random.Generator,
        taste: np.ndarray,
        level: np.ndarray,
        t0: np.ndarray,
        u: np.ndarray,
    ) -> np.ndarray:
        """The time of each person's next order (any status) after ``u``; inf if none comes
        before the collapse. Inversion: the integral from ``u`` equals an Exp(1) draw."""
        target = rng.standard_exponential(u.size)
        end = np.full(u.size, float(GRID_DAYS))
        total = self.integral(taste, level, t0, u, end, eligible=False)
        out = np.full(u.size, np.inf)
        hit = np.flatnonzero(target < total)
        if hit.size:
            a, lv, s, lo, e = taste[hit], level[hit], t0[hit], u[hit], target[hit]
            start, hi = lo.copy(), end[hit]
            for _ in range(40):  # 730 days / 2^40: well below a second
                mid = 0.5 * (lo + hi)
                below = self.integral(a, lv, s, start, mid, eligible=False) < e
                lo = np.where(below, mid, lo)
                hi = np.where(below, hi, mid)
            out[hit] = hi
        return out


def _experience(
    late: np.ndarray,
    deliv_days: np.ndarray,
    has_deliv: np.ndarray,
    score: np.ndarray,
    pay: np.ndarray,
    state: np.ndarray,
) -> np.ndarray:
    """How an order went, as a shift of the log intensity of the person's next order."""
    e = EXPERIENCE
    return (
        e["late"] * late
        + e["slow"] * (np.minimum(deliv_days, 40.0) - 10.0) * has_deliv
        + e["bad_review"] * (score <= 2)
        + e["top_review"] * (score == 5)
        + e["voucher"] * (pay == 2)
        + e["sao_paulo"] * (state == 0)
    )


def _process_for(beta0: float, arrivals: str) -> RepeatProcess:
    """The repeat process of a shop with these ``arrivals``: ``G`` grows only for growth."""
    return RepeatProcess(beta0=beta0, growth=arrivals == "growth")
