"""A generated dataset with the process that drew it, so its truth is known.

``Simulation.true_probability`` gives every customer's exact chance of buying again in a
window; ``make_olist`` keeps the tables only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from olist_fast.errors import OlistUsageError
from olist_fast.synth._generator import _Generator
from olist_fast.synth._process import (
    GRID_START,
    RepeatProcess,
    _grid_days,
    _is_eligible,
    _process_for,
)
from olist_fast.synth._reference import DAY, EPOCH
from olist_fast.synth._repeat_rate import check_repeat_rate, solve_beta0
from olist_fast.synth._tables import _assemble


@dataclass(frozen=True)
class _History:
    """Per order (in the orders table's time order) and per person: what the truth needs."""

    person: np.ndarray
    purchase: np.ndarray  # epoch seconds
    eligible: np.ndarray
    level: np.ndarray  # the state's level when the order is eligible
    taste: np.ndarray  # per person
    uid: pl.Series  # per person


@dataclass(frozen=True, eq=False)
class Simulation:
    """A generated dataset together with the process that drew it.

    The truth is that of these tables: it no longer holds once they are edited, filtered
    or appended to.
    """

    tables: dict[str, pl.DataFrame]
    process: RepeatProcess
    repeat_rate: float
    history: _History = field(repr=False)
    arrivals: str = "growth"

    def true_probability(self, as_of: datetime, horizon_days: int) -> pl.DataFrame:
        """Each person's chance of an eligible order in ``[as_of, as_of + horizon_days)``.

        One row per person with an eligible order before ``as_of`` (the population of the
        snapshot at ``as_of``), sorted by ``customer_unique_id``, with the intensity frozen
        at the latest of those orders: ``1 - exp(-integral of q(t) mu(t))``, q the day's
        eligible share. Exact for the process, because an ineligible order never moves the
        state and statuses are drawn independently of the times, so eligible orders arrive
        with intensity ``q mu``.
        """
        if horizon_days < 1:
            raise OlistUsageError(f"horizon_days must be >= 1, got {horizon_days}")
        h = self.history
        cut = (as_of - EPOCH) // timedelta(microseconds=1)
        idx = np.flatnonzero(h.eligible & (h.purchase * 1_000_000 < cut))
        idx = idx[np.argsort(h.person[idx], kind="stable")]  # by person, then time
        person = h.person[idx]
        last = idx[np.append(person[1:] != person[:-1], True)] if idx.size else idx
        who = h.person[last]
        start = np.full(who.size, (cut / 1e6 - GRID_START) / DAY)
        lam = self.process.integral(
            h.taste[who],
            h.level[last],
            _grid_days(h.purchase[last]),
            start,
            start + horizon_days,
            eligible=True,
        )
        return pl.DataFrame(
            {
                "customer_unique_id": h.uid.gather(who),
                "true_probability": pl.Series(-np.expm1(-lam), dtype=pl.Float64),
            }
        ).sort("customer_unique_id")


def simulate(
    *,
    scale: float = 1.0,
    random_state: int = 0,
    repeat_rate: float | None = None,
    arrivals: str = "growth",
) -> Simulation:
    """Draw the nine Olist tables and keep what is needed for their true probabilities.

    ``repeat_rate`` is the share of first-time buyers who buy again (an eligible order on
    a later day) within 90 days of their first eligible order, between 0.001 and 0.6;
    None is the realistic default. ``arrivals`` is the curve of first orders: ``growth``
    (the real one), ``steady`` or ``cohort`` (:mod:`olist_fast.synth._generator`).
    """
    rate = check_repeat_rate(repeat_rate)
    g = _Generator(scale, random_state, arrivals)
    process = _process_for(solve_beta0(rate, arrivals), arrivals)
    g.people()
    g.sellers()
    g.products()
    g.orders(process)
    tables = _assemble(g)
    o = g.o
    history = _History(
        person=o.person,
        purchase=o.purchase,
        eligible=_is_eligible(o.status),
        level=process.level(o.experience, o.n_eligible),
        taste=process.taste_sd * g.p_taste,
        uid=g.p_uid,
    )
    return Simulation(
        tables=tables, process=process, repeat_rate=rate, history=history, arrivals=arrivals
    )


def make_olist(
    *,
    scale: float = 1.0,
    random_state: int = 0,
    repeat_rate: float | None = None,
    arrivals: str = "growth",
) -> dict[str, pl.DataFrame]:
    """Draw the nine Olist tables at ``scale`` (1.0 is about 99k orders) as typed frames."""
    return simulate(
        scale=scale, random_state=random_state, repeat_rate=repeat_rate, arrivals=arrivals
    ).tables
