"""The generator: people, sellers, products and orders, drawn from one random stream.

Every draw comes from the one ``numpy`` generator of a seed, in a fixed order (people,
sellers, products, orders, then the tables of :mod:`olist_fast.synth._tables`), so moving
or adding a draw changes the data: bump ``GENERATOR_VERSION`` when it does.

Arrivals. ``arrivals`` chooses the shop: when first orders come and whether ``G``
grows (``ARRIVALS``; every kind has the same number of people at a scale, but for the
trickle after the collapse, the same season, status and delivery profile, and the same
collapse at 2018-09-01):

* ``growth`` (the default): first orders on the real monthly curve (``MONTHLY_ORDERS``),
  rising through 2017-18, then the trickle of new people after the collapse; ``G``
  grows by ``GROWTH_PER_YEAR``;
* ``steady``: first orders at a constant rate per day from the first purchase
  (2016-09-04) to the collapse, the same trickle after it; ``G = 1``;
* ``cohort``: every first order within ``COHORT_MONTHS`` (2017-01..2017-03, a constant
  rate per day), no new people afterwards (no trickle either); ``G = 1``. By the
  collapse the cohort has aged 18 months. Only repeat orders follow the quarter, so the
  data-health rule (the healthy period ends at the first month after the busiest with
  under 10 % of its eligible orders) ends the healthy period on 2017-04-01 at the
  default rate; at high rates (0.2) no month falls that low and it ends after the data
  (2018-09-01). An explicit ``as_of`` of 2018-09-01 works at both.

Repeat orders come from the intensity of :mod:`olist_fast.synth._process`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import polars as pl

from olist_fast.errors import OlistUsageError
from olist_fast.synth._process import (
    _STATUS_SHARE,
    GRID_START,
    RepeatProcess,
    _experience,
    _grid_days,
    _is_eligible,
    _non_delivered_scale,
)
from olist_fast.synth._reference import (
    CITY_OFFSET,
    COLLAPSE,
    DATA_END,
    DAY,
    DOW_W,
    EPOCH,
    FIRST_PURCHASE,
    HOUR_W,
    LAST_PURCHASE,
    MONTHLY_ORDERS,
    PRODUCTS_PER_CATEGORY,
    REAL_CUSTOMERS,
    REAL_PRODUCTS,
    REAL_SELLERS,
    SCORE_P,
    STATE_DELAY,
    STATE_NAMES,
    STATES,
    _ts,
)

# the arrival curves of first orders (the module docstring); the first is the default
ARRIVALS = ("growth", "steady", "cohort")
COHORT_MONTHS = ("2017-01", "2017-02", "2017-03")


def check_arrivals(arrivals: str) -> str:
    """``arrivals`` when it names an arrival curve (``ARRIVALS``)."""
    if arrivals not in ARRIVALS:
        raise OlistUsageError(
            f"arrivals must be one of {', '.join(ARRIVALS)} (the curve of first orders), "
            f"got {arrivals!r}"
        )
    return arrivals


@dataclass(frozen=True)
class _Orders:
    person: np.ndarray
    purchase: np.ndarray
    seq: np.ndarray  # 1 for a person's first order, 2 for the second, ...


def _hex_ids(rng: np.random.Generator, n: int) -> pl.Series:
    """``n`` random 32-hex-digit ids, like the md5-style ids of the real data."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    out = np.empty((n, 32), dtype=np.uint8)
    out[:, 0::2] = digits[raw >> 4]
    out[:, 1::2] = digits[raw & 15]
    return pl.Series(out.view("S32").ravel()).cast(pl.String)


def _count(x: float, rng: np.random.Generator) -> int:
    """Stochastic rounding, so small scales keep rare things on average."""
    base = math.floor(x)
    return base + int(rng.random() < x - base)


def _month_start(month: str) -> int:
    return _ts(f"{month}-01 00:00:00")


def _next_month(month: str) -> str:
    y, m = map(int, month.split("-"))
    return f"{y + (m == 12)}-{m % 12 + 1:02d}"


def _purchase_times(rng: np.random.Generator, counts: dict[str, int]) -> np.ndarray:
    """Purchase timestamps (epoch seconds) with the monthly, weekday and hour profile."""
    parts = []
    for month, n in counts.items():
        if n == 0:
            continue
        start, end = _month_start(month), _month_start(_next_month(month))
        if month == "2016-09":
            start = FIRST_PURCHASE
        if month == "2018-10":
            end = LAST_PURCHASE
        first_day = start // DAY
        days = np.arange(first_day, (end - 1) // DAY + 1)
        w = DOW_W[(days + 3) % 7]  # 1970-01-01 was a Thursday
        day = rng.choice(days, size=n, p=w / w.sum())
        hour = rng.choice(24, size=n, p=HOUR_W / HOUR_W.sum())
        t = day * DAY + hour * 3600 + rng.integers(0, 3600, size=n)
        parts.append(np.clip(t, start, end - 1))
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _midnight(t: np.ndarray) -> np.ndarray:
    return (t // DAY) * DAY


def _pick(
    names: tuple[str, ...] | list[str], idx: np.ndarray, valid: np.ndarray | None = None
) -> pl.Series:
    """``names[idx]`` as a String series, null where ``valid`` is false."""
    s = pl.Series(list(names), dtype=pl.String).gather(np.asarray(idx, dtype=np.int64))
    return s if valid is None else _masked(s, valid)


def _masked(values: np.ndarray | pl.Series, valid: np.ndarray) -> pl.Series:
    return pl.select(pl.when(pl.Series(valid)).then(pl.Series(values)).otherwise(None)).to_series()


def _even_months(start: int, end: int) -> dict[str, float]:
    """The share of each month in ``[start, end)`` (epoch seconds) at a constant rate."""
    shares: dict[str, float] = {}
    m = (EPOCH + timedelta(seconds=start)).strftime("%Y-%m")
    while _month_start(m) < end:
        lo, hi = max(_month_start(m), start), min(_month_start(_next_month(m)), end)
        shares[m] = (hi - lo) / (end - start)
        m = _next_month(m)
    return shares


class _Generator:
    """Holds the random state and the drawn entities while the tables are built."""

    def __init__(self, scale: float, seed: int, arrivals: str = "growth") -> None:
        if not scale > 0:
            raise OlistUsageError(f"scale must be > 0, got {scale}")
        self.scale = scale
        self.arrivals = check_arrivals(arrivals)
        self.rng = np.random.default_rng(seed)

    # -- people, sellers, products ------------------------------------------------------
    def people(self) -> None:
        rng = self.rng
        n = max(1, round(REAL_CUSTOMERS * self.scale))
        share = np.array([STATES[s][0] for s in STATE_NAMES])
        self.p_state = rng.choice(len(STATE_NAMES), size=n, p=share / share.sum())
        self.p_taste = rng.normal(0.0, 1.0, size=n)  # the latent taste, in units of its sd
        # the payment habit of each person
        self.p_pay = rng.choice(4, size=n, p=[0.762, 0.198, 0.024, 0.016])
        self.p_uid = _hex_ids(rng, n)
        self.p_zip, self.p_city = self._places(self.p_state)

    def _places(self, state_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rng = self.rng
        lo = np.array([STATES[s][2] for s in STATE_NAMES])[state_idx]
        hi = np.array([STATES[s][3] for s in STATE_NAMES])[state_idx]
        # zip prefixes cluster: the capital's range is denser
        u = rng.random(state_idx.size) ** 2.0
        zips = (lo + u * (hi - lo)).astype(np.int64)
        cities = np.empty(state_idx.size, dtype=np.int64)
        for i, s in enumerate(STATE_NAMES):
            mask = state_idx == i
            k = len(STATES[s][6])
            w = 1.0 / np.arange(1, k + 1) ** 1.3
            cities[mask] = CITY_OFFSET[i] + rng.choice(k, size=int(mask.sum()), p=w / w.sum())
        return zips, cities

    def sellers(self) -> None:
        rng = self.rng
        n = max(1, round(REAL_SELLERS * self.scale))
        share = np.array([STATES[s][1] for s in STATE_NAMES])
        self.s_state = rng.choice(len(STATE_NAMES), size=n, p=share / share.sum())
        self.s_id = _hex_ids(rng, n)
        self.s_zip, self.s_city = self._places(self.s_state)
        # heavy concentration: Gini near 0.78
        self.s_weight = rng.pareto(0.9, size=n) + 0.05

    def products(self) -> None:
        rng = self.rng
        n = max(1, round(REAL_PRODUCTS * self.scale))
        cats = list(PRODUCTS_PER_CATEGORY)
        w = np.array([PRODUCTS_PER_CATEGORY[c] for c in cats], dtype=float)
        cat = rng.choice(len(cats), size=n, p=w / w.sum())
        no_cat = rng.random(n) < 610 / REAL_PRODUCTS
        self.pr_id = _hex_ids(rng, n)
        self.pr_cat = _pick(cats, cat, ~no_cat)
        sw = self.s_weight / self.s_weight.sum()
        self.pr_seller = rng.choice(self.s_weight.size, size=n, p=sw)
        base = np.exp(rng.normal(math.log(75.0), 0.97, size=n))
        ending = rng.random(n)
        whole = np.floor(base)
        price = np.where(
            ending < 0.45,
            np.maximum(whole - (whole % 10) + 9.90, 0.85),
            np.where(ending < 0.6, whole + 0.99, np.where(ending < 0.75, whole, np.round(base, 2))),
        )
        self.pr_price = np.clip(np.round(price, 2), 0.85, 6735.0)
        self.pr_weight = np.clip(np.exp(rng.normal(math.log(700), 1.2, size=n)), 50, 40425)
        self.pr_popularity = rng.pareto(1.2, size=n) + 0.02
        self.pr_no_cat = no_cat

    # -- orders ----------------------------------------------------------------------------
    def _first_orders(self) -> _Orders:
        """Everyone's first order on the arrival curve, then (but for a cohort) the trickle
        after the collapse (new people)."""
        rng = self.rng
        n_people = self.p_state.size
        if self.arrivals == "growth":
            counts = {m: c for m, c in MONTHLY_ORDERS.items() if m < "2018-09"}
            total = sum(counts.values())
            month_p = np.array(list(counts.values()), dtype=float) / total
            months = list(counts)
        else:  # a constant rate per day over the range or the cohort's quarter
            if self.arrivals == "steady":
                start, end = FIRST_PURCHASE, COLLAPSE
            else:
                start = _month_start(COHORT_MONTHS[0])
                end = _month_start(_next_month(COHORT_MONTHS[-1]))
            shares = _even_months(start, end)
            month_p, months = np.array(list(shares.values())), list(shares)
        # repeat orders add a few per cent to the volume; first orders fill the rest
        per_month = rng.multinomial(n_people, month_p)
        first = _purchase_times(rng, dict(zip(months, per_month, strict=True)))
        rng.shuffle(first)
        if self.arrivals == "cohort":  # nobody new after the quarter
            return _Orders(np.arange(first.size), first, np.ones(first.size, np.int64))
        tail = {m: _count(MONTHLY_ORDERS[m] * self.scale, rng) for m in ("2018-09", "2018-10")}
        tail_t = _purchase_times(rng, tail)
        if tail_t.size:
            self._add_people(tail_t.size)
        purchase = np.concatenate([first, tail_t])
        return _Orders(np.arange(purchase.size), purchase, np.ones(purchase.size, np.int64))

    def orders(self, process: RepeatProcess) -> None:
        """First orders, then repeat orders from the intensity ``process``, round by round:
        each round draws every pending person's next order (any status); an eligible one
        moves their state to it, an ineligible one leaves the state as it was."""
        cur = self._first_orders()
        facts = self._order_facts(cur)
        eligible = _is_eligible(facts.status)
        n_elig = eligible.astype(np.int64)
        facts.n_eligible = n_elig
        self.o = _OrderFacts.empty()
        self.o.extend(facts)
        person, seq = cur.person, cur.seq
        taste = process.taste_sd * self.p_taste[person]
        level = process.level(facts.experience, n_elig)
        t0 = u = _grid_days(cur.purchase)
        while person.size:
            t = process.next_order(self.rng, taste, level, t0, u)
            hit = np.isfinite(t)
            person, seq, taste, level, t0, n_elig = (
                x[hit] for x in (person, seq, taste, level, t0, n_elig)
            )
            if not person.size:
                break
            purchase = GRID_START + np.floor(t[hit] * DAY).astype(np.int64)
            facts = self._order_facts(_Orders(person, purchase, seq + 1))
            eligible = _is_eligible(facts.status)
            n_elig = n_elig + eligible
            facts.n_eligible = n_elig
            self.o.extend(facts)
            u = _grid_days(purchase)
            t0 = np.where(eligible, u, t0)
            level = np.where(eligible, process.level(facts.experience, n_elig), level)
            seq = seq + 1
        self.o.finish()

    def _add_people(self, n: int) -> None:
        rng = self.rng
        share = np.array([STATES[s][0] for s in STATE_NAMES])
        st = rng.choice(len(STATE_NAMES), size=n, p=share / share.sum())
        z, c = self._places(st)
        self.p_state = np.concatenate([self.p_state, st])
        self.p_taste = np.concatenate([self.p_taste, rng.normal(size=n)])
        self.p_pay = np.concatenate([self.p_pay, rng.choice(4, size=n, p=[0.76, 0.2, 0.02, 0.02])])
        self.p_uid = pl.concat([self.p_uid, _hex_ids(rng, n)])
        self.p_zip = np.concatenate([self.p_zip, z])
        self.p_city = np.concatenate([self.p_city, c])

    def _order_facts(self, cur: _Orders) -> _OrderFacts:
        rng = self.rng
        n = cur.person.size
        t = cur.purchase
        state = self.p_state[cur.person]
        # status: non-delivered shares fall from early 2017 to mid 2018
        p = _STATUS_SHARE
        u = rng.random(n)
        nd = p[1:] / p[1:].sum()
        non_delivered = u < (1 - p[0]) * _non_delivered_scale(_midnight(t))
        status = np.zeros(n, dtype=np.int64)
        status[non_delivered] = 1 + rng.choice(len(nd), size=int(non_delivered.sum()), p=nd)
        after = t >= COLLAPSE
        status[after] = rng.choice(
            [1, 2, 4, 5, 6], size=int(after.sum()), p=[0.2, 0.55, 0.1, 0.1, 0.05]
        )
        # approval
        lag = np.where(
            rng.random(n) < 0.7, rng.exponential(1200, n), np.exp(rng.normal(math.log(DAY), 0.8, n))
        )
        approved = (t + lag).astype(np.int64)
        no_appr = (
            (status == 6)
            | ((status == 2) & (rng.random(n) < 0.226))
            | ((status == 0) & (rng.random(n) < 0.00015))
        )
        # delivery: speed varies by state and month (drift), ~12 days on average
        state_shift = np.array([STATE_DELAY.get(s, 1.0) for s in STATE_NAMES])[state]
        month_idx = (t - _ts("2017-01-01 00:00:00")) / (30.4 * DAY)
        drift = (
            1.0
            + 0.25 * np.exp(-(((month_idx - 14.5) / 1.5) ** 2))
            - 0.3 * np.clip((month_idx - 16) / 4, 0, 1)
        )
        deliv_days = np.exp(rng.normal(math.log(9.7), 0.55, n)) * drift * (1 + 0.06 * state_shift)
        deliv_days = np.clip(deliv_days, 0.6, 209)
        delivered_at = (t + deliv_days * DAY).astype(np.int64)
        handover = np.minimum(rng.gamma(2.0, 1.6, n), 0.6 * deliv_days)
        carrier = (approved + handover * DAY).astype(np.int64)
        carrier = np.minimum(carrier, delivered_at - 3600)
        # estimated date: delay = delivered - estimated, heavy right tail (t with 3 dof)
        delay = (
            -13.0
            + 6.0 * rng.standard_t(3, n)
            + state_shift
            + 3.5 * np.exp(-(((month_idx - 14.5) / 1.2) ** 2))
            - 3.0 * np.clip((month_idx - 16.5) / 2, 0, 1)
        )
        delay = np.clip(delay, -147, 188)
        est = _midnight(delivered_at - (delay * DAY).astype(np.int64))
        lead = np.clip(rng.normal(23.4, 8.0, n), 3, 60)
        est_undeliv = _midnight(t + (lead * DAY).astype(np.int64))
        is_deliv = status == 0
        est = np.where(is_deliv, est, est_undeliv)
        est = np.maximum(est, _midnight(t) + 2 * DAY)
        # delivered after the data ends -> still shipped
        too_late = is_deliv & (delivered_at > DATA_END)
        status[too_late] = 1
        is_deliv = status == 0
        missing_deliv = is_deliv & (rng.random(n) < 8 / 96478)
        canceled_deliv = (status == 2) & (rng.random(n) < 0.0096)
        has_deliv = (is_deliv & ~missing_deliv) | canceled_deliv
        has_carrier = is_deliv | (status == 1) | ((status == 2) & (rng.random(n) < 0.12))
        late = has_deliv & (delivered_at > est)
        # items: unavailable and created orders are empty, a share of canceled too
        empty = (
            (status == 3) & (rng.random(n) < 0.99)
            | (status == 6)
            | ((status == 2) & (rng.random(n) < 0.26))
            | ((status == 4) & (rng.random(n) < 0.006))
            | ((status == 1) & (rng.random(n) < 0.001))
        )
        n_items = rng.choice(
            np.arange(1, 11),
            size=n,
            p=np.array([88863, 7516, 1322, 505, 204, 198, 22, 8, 3, 25]) / 98666,
        )
        tenplus = n_items == 10
        n_items[tenplus] = rng.integers(10, 22, size=int(tenplus.sum()))
        n_items[empty] = 0
        # review score from the delivery experience
        kind = np.where(has_deliv & ~late, 0, np.where(late, 1, 2))
        score = np.empty(n, dtype=np.int64)
        for k, name in enumerate(("on_time", "late", "undelivered")):
            m = kind == k
            score[m] = 1 + rng.choice(5, size=int(m.sum()), p=SCORE_P[name])
        pay = self._order_payment_type(cur.person)
        experience = _experience(late, deliv_days, has_deliv, score, pay, state)
        return _OrderFacts(
            person=cur.person,
            purchase=t,
            seq=cur.seq,
            status=status,
            approved=approved,
            no_appr=no_appr,
            carrier=carrier,
            has_carrier=has_carrier,
            delivered=delivered_at,
            has_deliv=has_deliv,
            est=est,
            late=late,
            deliv_days=deliv_days,
            n_items=n_items,
            score=score,
            pay=pay,
            experience=experience,
            n_eligible=np.zeros(n, np.int64),
        )

    def _order_payment_type(self, person: np.ndarray) -> np.ndarray:
        habit = self.p_pay[person]
        other = self.rng.choice(4, size=person.size, p=[0.74, 0.19, 0.055, 0.015])
        return np.where(self.rng.random(person.size) < 0.85, habit, other)


@dataclass
class _OrderFacts:
    person: np.ndarray
    purchase: np.ndarray
    seq: np.ndarray
    status: np.ndarray
    approved: np.ndarray
    no_appr: np.ndarray
    carrier: np.ndarray
    has_carrier: np.ndarray
    delivered: np.ndarray
    has_deliv: np.ndarray
    est: np.ndarray
    late: np.ndarray
    deliv_days: np.ndarray
    n_items: np.ndarray
    score: np.ndarray
    pay: np.ndarray
    experience: np.ndarray  # the shift of the next order's log intensity
    n_eligible: np.ndarray  # the person's eligible orders up to and including this one

    @classmethod
    def empty(cls) -> _OrderFacts:
        return cls(**{k: [] for k in cls.__dataclass_fields__})  # type: ignore[arg-type]

    def extend(self, other: _OrderFacts) -> None:
        for k in self.__dataclass_fields__:
            getattr(self, k).append(getattr(other, k))

    def finish(self) -> None:
        for k in self.__dataclass_fields__:
            setattr(self, k, np.concatenate(getattr(self, k)))
