"""The target repeat rate, and the intercept ``beta0`` of the process that gives it.

``beta0`` is solved so that the share of first-time buyers who buy again on a
later day within 90 days of their first eligible order is ``repeat_rate``
(:func:`solve_beta0`); the default, 1.1 %, together with the shape of the process
(:mod:`olist_fast.synth._process`) gives the real data's 3.1 % of customers with two or
more orders (2.2 % on two or more days, 0.26 % with three or more).

``beta0`` is solved per kind of arrivals (the pilot is drawn with the kind's arrivals and
``G``), so ``repeat_rate`` means the same for every kind.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from olist_fast.errors import OlistUsageError
from olist_fast.synth._generator import _Generator, check_arrivals
from olist_fast.synth._process import GRID_DAYS, _grid_days, _is_eligible, _process_for

DEFAULT_REPEAT_RATE = 0.011
REPEAT_RATE_RANGE = (0.001, 0.6)
REPEAT_WINDOW_DAYS = 90
_HERMITE = np.polynomial.hermite_e.hermegauss(24)
_PILOT_SCALE = 0.25
_PILOT_SEED = 1


def check_repeat_rate(repeat_rate: float | None) -> float:
    """The target repeat rate: ``repeat_rate``, or the realistic default when None."""
    if repeat_rate is None:
        return DEFAULT_REPEAT_RATE
    lo, hi = REPEAT_RATE_RANGE
    if not lo <= repeat_rate <= hi:
        raise OlistUsageError(
            f"repeat_rate must be between {lo} and {hi} (the share of first-time buyers who"
            f" buy again within {REPEAT_WINDOW_DAYS} days), got {repeat_rate}"
        )
    return float(repeat_rate)


@functools.cache
def _pilot(arrivals: str) -> tuple[np.ndarray, np.ndarray]:
    """First purchase (grid days) and experience of the first-time buyers of a fixed pilot
    draw with these arrivals whose whole repeat window lies before the collapse."""
    g = _Generator(_PILOT_SCALE, _PILOT_SEED, arrivals)
    g.people()
    f = g._order_facts(g._first_orders())
    t1 = _grid_days(f.purchase)
    keep = _is_eligible(f.status) & (t1 + REPEAT_WINDOW_DAYS <= GRID_DAYS)
    return t1[keep], f.experience[keep]


@functools.cache
def solve_beta0(repeat_rate: float, arrivals: str = "growth") -> float:
    """The intercept that makes the expected repeat rate ``repeat_rate`` for a shop with
    these ``arrivals`` (their first orders' dates and ``G`` both move the share).

    The expected share, over the pilot's first-time buyers with the taste integrated out
    by Gauss-Hermite quadrature, of those with an eligible order on a later day within the
    window (the split spike ends at midnight, so only the order profile counts), solved
    for ``beta0`` by Newton's method. The expectation ignores that a same-day split order
    moves the state before the later days start.
    """
    proc = _process_for(0.0, check_arrivals(arrivals))
    t1, x = _pilot(arrivals)
    slow, _ = proc.components(t1, np.floor(t1) + 1.0, t1 + REPEAT_WINDOW_DAYS, eligible=True)
    z, w = _HERMITE
    scaled = np.exp(proc.taste_sd * z[:, None] + x) * slow
    weights = w / w.sum()

    def share(beta0: float) -> tuple[float, float]:  # and its derivative
        rate = math.exp(beta0) * scaled
        survive = np.exp(-rate)
        return float(weights @ (1.0 - survive).mean(axis=1)), float(
            weights @ (rate * survive).mean(axis=1)
        )

    lo, hi, beta0 = -30.0, 10.0, -10.0  # Newton's method, kept inside a shrinking bracket
    for _ in range(200):
        value, slope = share(beta0)
        if value < repeat_rate:
            lo = beta0
        else:
            hi = beta0
        if abs(value - repeat_rate) <= 1e-10 * repeat_rate or hi - lo < 1e-12:
            break
        step = beta0 - (value - repeat_rate) / slope if slope > 0 else math.nan
        beta0 = step if lo < step < hi else 0.5 * (lo + hi)
    return beta0
