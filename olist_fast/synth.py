"""The generated demo dataset: nine Olist tables with the real files' statistics and bytes.

``make_olist`` draws typed frames; ``write_olist`` writes them in the exact
conventions of the Kaggle CSVs (quoted headers, values quoted only when they
start with a digit, CRLF and multi-line comments in reviews, BOM in the
translation file). ``simulate`` also keeps what the generator knows, so
``Simulation.true_probability`` gives every customer's exact chance of buying
again. Everything is vectorised numpy; one seed gives one set of bytes.

Repeat purchases. Everyone makes a first order on the arrival curve (below); after
it, a person's next order arrives in continuous time with the intensity (per day)

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

``beta0`` is solved so that the share of first-time buyers who buy again on a
later day within 90 days of their first eligible order is ``repeat_rate``
(:func:`solve_beta0`); the default, 1.1 %, together with the shape above gives
the real data's 3.1 % of customers with two or more orders (2.2 % on two or more
days, 0.26 % with three or more).

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

``beta0`` is solved per kind (the pilot is drawn with the kind's arrivals and ``G``), so
``repeat_rate`` means the same for every kind.
"""

from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from olist_fast._reference import CATEGORY_TRANSLATION, PRODUCTS_PER_CATEGORY
from olist_fast.errors import OlistDataError, OlistUsageError
from olist_fast.io import BOM, atomic_path
from olist_fast.schema import TABLES, TIMESTAMP_FORMAT

DAY = 86_400
EPOCH = datetime(1970, 1, 1)


def _ts(text: str) -> int:
    return int((datetime.fromisoformat(text) - EPOCH).total_seconds())


# Orders per month, all statuses, in the real data (olist-facts 2.2).
MONTHLY_ORDERS: dict[str, int] = {
    "2016-09": 4, "2016-10": 324, "2016-11": 0, "2016-12": 1,
    "2017-01": 800, "2017-02": 1780, "2017-03": 2682, "2017-04": 2404,
    "2017-05": 3700, "2017-06": 3245, "2017-07": 4026, "2017-08": 4331,
    "2017-09": 4285, "2017-10": 4631, "2017-11": 7544, "2017-12": 5673,
    "2018-01": 7269, "2018-02": 6728, "2018-03": 7211, "2018-04": 6939,
    "2018-05": 6873, "2018-06": 6167, "2018-07": 6292, "2018-08": 6512,
    "2018-09": 16, "2018-10": 4,
}  # fmt: skip
COLLAPSE = _ts("2018-09-01 00:00:00")
LAST_PURCHASE = _ts("2018-10-17 17:30:18")
FIRST_PURCHASE = _ts("2016-09-04 21:15:19")
DATA_END = _ts("2018-10-17 23:59:59")

REAL_ORDERS = 99_441
REAL_CUSTOMERS = 96_096
REAL_PRODUCTS = 32_951
REAL_SELLERS = 3_095
REAL_GEO_ROWS = 1_000_163
REAL_GEO_PREFIXES = 19_015

# state: (customer share %, seller share %, zip range start, end, lat, lng, cities)
STATES: dict[str, tuple[float, float, int, int, float, float, tuple[str, ...]]] = {
    "SP": (41.98, 59.7, 1000, 19999, -23.2, -47.3,
           ("sao paulo", "campinas", "guarulhos", "sao bernardo do campo", "santo andre",
            "osasco", "santos", "ribeirao preto", "sorocaba", "franca", "mogi das cruzes")),
    "RJ": (12.92, 5.5, 20000, 28999, -22.6, -43.2,
           ("rio de janeiro", "niteroi", "nova iguacu", "duque de caxias", "sao goncalo")),
    "MG": (11.70, 7.9, 30000, 39999, -19.6, -44.2,
           ("belo horizonte", "juiz de fora", "uberlandia", "contagem", "betim")),
    "RS": (5.50, 4.2, 90000, 99999, -29.8, -51.8,
           ("porto alegre", "caxias do sul", "canoas", "pelotas", "santa maria")),
    "PR": (5.07, 11.3, 80000, 87999, -25.0, -50.8,
           ("curitiba", "londrina", "maringa", "ponta grossa", "cascavel")),
    "SC": (3.66, 6.1, 88000, 89999, -27.3, -49.6,
           ("florianopolis", "joinville", "blumenau", "itajai", "sao jose")),
    "BA": (3.40, 0.6, 40000, 48999, -12.9, -40.2, ("salvador", "feira de santana", "ilheus")),
    "DF": (2.15, 1.0, 70000, 72799, -15.8, -47.9, ("brasilia", "taguatinga")),
    "ES": (2.04, 0.8, 29000, 29999, -20.0, -40.5, ("vitoria", "vila velha", "serra")),
    "GO": (2.03, 1.3, 72800, 76799, -16.6, -49.3, ("goiania", "anapolis")),
    "PE": (1.66, 0.3, 50000, 56999, -8.1, -35.5, ("recife", "olinda", "jaboatao dos guararapes")),
    "CE": (1.34, 0.4, 60000, 63999, -3.8, -38.6, ("fortaleza", "caucaia")),
    "PA": (0.98, 0.1, 66000, 68899, -1.4, -48.5, ("belem", "ananindeua")),
    "MT": (0.91, 0.1, 78000, 78899, -15.6, -56.1, ("cuiaba", "varzea grande")),
    "MA": (0.75, 0.1, 65000, 65999, -2.5, -44.3, ("sao luis", "imperatriz")),
    "MS": (0.72, 0.2, 79000, 79999, -20.5, -54.6, ("campo grande", "dourados")),
    "PB": (0.54, 0.2, 58000, 58999, -7.1, -34.9, ("joao pessoa", "campina grande")),
    "PI": (0.50, 0.05, 64000, 64999, -5.1, -42.8, ("teresina",)),
    "RN": (0.49, 0.2, 59000, 59999, -5.8, -35.2, ("natal", "mossoro")),
    "AL": (0.42, 0.05, 57000, 57999, -9.7, -35.7, ("maceio",)),
    "SE": (0.35, 0.05, 49000, 49999, -10.9, -37.1, ("aracaju",)),
    "TO": (0.28, 0.05, 77000, 77999, -10.2, -48.3, ("palmas",)),
    "RO": (0.25, 0.05, 76800, 76999, -8.8, -63.9, ("porto velho",)),
    "AM": (0.15, 0.05, 69000, 69299, -3.1, -60.0, ("manaus",)),
    "AC": (0.08, 0.0, 69900, 69999, -9.97, -67.8, ("rio branco",)),
    "AP": (0.07, 0.0, 68900, 68999, 0.03, -51.1, ("macapa",)),
    "RR": (0.05, 0.0, 69300, 69399, 2.8, -60.7, ("boa vista",)),
}  # fmt: skip
STATE_NAMES = tuple(STATES)
CITY_OFFSET = np.cumsum([0] + [len(STATES[s][6]) for s in STATE_NAMES])[:-1]
# every city name, state by state; the accented spelling last (geolocation only)
CITIES = (*(c for s in STATE_NAMES for c in STATES[s][6]), "são paulo")
# Extra delay (days) and slower delivery where the real late rate is high.
STATE_DELAY = {"AL": 6.5, "MA": 5.5, "PI": 4.5, "CE": 4.3, "SE": 4.3, "BA": 3.8, "RJ": 3.8,
               "PA": 3.0, "RR": 3.0, "AM": 2.0, "AP": 2.0, "ES": 2.5, "SP": -2.0}  # fmt: skip

STATUS = ("delivered", "shipped", "canceled", "unavailable", "invoiced", "processing",
          "created", "approved")  # fmt: skip
STATUS_P = np.array([96478, 1107, 625, 609, 314, 301, 5, 2], dtype=float)
PAYMENT_TYPES = ("credit_card", "boleto", "voucher", "debit_card", "not_defined")
SCORE_P = {  # P(score 1..5) by delivery experience
    "on_time": np.array([0.068, 0.024, 0.075, 0.205, 0.628]),
    "late": np.array([0.46, 0.10, 0.12, 0.11, 0.21]),
    "undelivered": np.array([0.58, 0.09, 0.10, 0.07, 0.16]),
}
MESSAGE_P = np.array([0.765, 0.681, 0.435, 0.312, 0.359])  # P(message | score 1..5)
GOOD_MESSAGES = (
    "Recebi bem antes do prazo estipulado.",
    "Parabéns lojas lannister adorei comprar pela Internet seguro e prático "
    "Parabéns a todos feliz Páscoa",
    "aparelho eficiente. no site a marca do aparelho esta impresso como 3desinfector e ao "
    "chegar esta com outro nome...atualizar com a marca correta uma vez que é o mesmo aparelho",
    "Mas um pouco ,travando...pelo valor ta Boa.\r\n",
    "Vendedor confiável, produto ok e entrega antes do prazo.",
    "Produto excelente, recomendo!",
    "Muito bom, chegou rápido.",
    "Ótimo produto, exatamente como o anúncio.",
    "A compra foi realizada facilmente.\r\nA entrega foi efetuada muito antes do prazo dado."
    "\r\nO produto já começou a ser usado e até o presente,\r\nsem problemas.",
    "Tudo certo, obrigado",
    'Produto "top", super indico',
)  # fmt: skip
BAD_MESSAGES = (
    "Não recebi o produto até agora.",
    "Produto veio com defeito, quero devolver.",
    "Comprei dois e recebi apenas um.\r\nAguardando retorno da loja.",
    "péssimo, atrasou muito",
    "O produto não foi entregue e ninguém responde",
    "Veio diferente do anúncio, cor errada",
)  # fmt: skip
TITLES = ("recomendo", "Muito bom", "Excelente", "ótimo", "Super recomendo", "Ruim",
          "Não recebi", "Bom", "Produto com defeito")  # fmt: skip


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


DOW_W = np.array([16.3, 16.1, 15.6, 14.8, 14.2, 10.95, 12.0])  # Mon..Sun
HOUR_W = np.repeat(np.array([4740, 22240, 38361, 34100]) / 6.0, 6)


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


# -- the repeat process ---------------------------------------------------------------------
GENERATOR_VERSION = 2  # bump when a seed would give other data or other truth
DEFAULT_REPEAT_RATE = 0.011
REPEAT_RATE_RANGE = (0.001, 0.6)
REPEAT_WINDOW_DAYS = 90
GRID_START = _ts("2016-09-01 00:00:00")  # day 0 of the intensity's day grid (a midnight)
GRID_DAYS = (COLLAPSE - GRID_START) // DAY  # the intensity is zero from the collapse on
# season of repeat orders by month (Jan..Dec) and the Black Friday weekend (Fri..Mon)
SEASON = np.array([0.95, 0.9, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.3, 1.15])
BLACK_FRIDAYS = ("2016-11-25", "2017-11-24")
BLACK_FRIDAY_BOOST = 2.0
GROWTH_PER_YEAR = 0.7  # slope of the log intensity in years (reference: 2018-01-01)
# the arrival curves of first orders (the module docstring); the first is the default
ARRIVALS = ("growth", "steady", "cohort")
COHORT_MONTHS = ("2017-01", "2017-02", "2017-03")
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
_HERMITE = np.polynomial.hermite_e.hermegauss(24)
_PILOT_SCALE = 0.25
_PILOT_SEED = 1


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


def check_arrivals(arrivals: str) -> str:
    """``arrivals`` when it names an arrival curve (``ARRIVALS``)."""
    if arrivals not in ARRIVALS:
        raise OlistUsageError(
            f"arrivals must be one of {', '.join(ARRIVALS)} (the curve of first orders), "
            f"got {arrivals!r}"
        )
    return arrivals


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


def _process_for(beta0: float, arrivals: str) -> RepeatProcess:
    """The repeat process of a shop with these ``arrivals``: ``G`` grows only for growth."""
    return RepeatProcess(beta0=beta0, growth=arrivals == "growth")


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


def _masked(values: np.ndarray | pl.Series, valid: np.ndarray) -> pl.Series:
    return pl.select(pl.when(pl.Series(valid)).then(pl.Series(values)).otherwise(None)).to_series()


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
    (the real one), ``steady`` or ``cohort`` (the module docstring).
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


def _assemble(g: _Generator) -> dict[str, pl.DataFrame]:
    rng = g.rng
    o = g.o
    n = o.person.size
    # order rows in time order, as an export would list them after a shuffle
    order = np.argsort(o.purchase, kind="stable")
    for k in o.__dataclass_fields__:
        setattr(o, k, getattr(o, k)[order])
    perm = rng.permutation(n)
    order_id = _hex_ids(rng, n)
    customer_id = _hex_ids(rng, n)

    def ts(seconds: np.ndarray, valid: np.ndarray | None = None) -> pl.Series:
        valid = np.ones(n, bool) if valid is None else valid
        return _masked(seconds * 1_000_000, valid).cast(pl.Datetime("us"))

    orders = pl.DataFrame(
        {
            "order_id": order_id,
            "customer_id": customer_id,
            "order_status": _pick(STATUS, o.status),
            "order_purchase_timestamp": ts(o.purchase),
            "order_approved_at": ts(o.approved, ~o.no_appr),
            "order_delivered_carrier_date": ts(o.carrier, o.has_carrier),
            "order_delivered_customer_date": ts(o.delivered, o.has_deliv),
            "order_estimated_delivery_date": ts(o.est),
        }
    )
    customers = pl.DataFrame(
        {
            "customer_id": customer_id,
            "customer_unique_id": g.p_uid.gather(o.person),
            "customer_zip_code_prefix": pl.Series(g.p_zip[o.person]).cast(pl.String).str.zfill(5),
            "customer_city": _pick(CITIES, g.p_city[o.person]),
            "customer_state": _pick(STATE_NAMES, g.p_state[o.person]),
        }
    )
    items = _items(g, order_id)
    payments = _payments(g, order_id, items)
    reviews = _reviews(g, order_id)
    products = _products_table(g)
    sellers = pl.DataFrame(
        {
            "seller_id": g.s_id,
            "seller_zip_code_prefix": pl.Series(g.s_zip).cast(pl.String).str.zfill(5),
            "seller_city": _pick(CITIES, g.s_city),
            "seller_state": _pick(STATE_NAMES, g.s_state),
        }
    )
    geo = _geolocation(g, np.concatenate([g.p_zip, g.s_zip]))
    translation = pl.DataFrame(
        {
            "product_category_name": [p for p, _ in CATEGORY_TRANSLATION],
            "product_category_name_english": [e for _, e in CATEGORY_TRANSLATION],
        }
    )
    return {
        "orders": orders[perm],
        "customers": customers[perm],
        "order_items": items,
        "order_payments": payments,
        "order_reviews": reviews,
        "products": products,
        "sellers": sellers,
        "geolocation": geo,
        "category_translation": translation,
    }


def _items(g: _Generator, order_id: pl.Series) -> pl.DataFrame:
    rng, o = g.rng, g.o
    k = o.n_items
    idx = np.repeat(np.arange(k.size), k)
    item_no = np.arange(idx.size) - np.repeat(np.cumsum(k) - k, k) + 1
    pop = g.pr_popularity / g.pr_popularity.sum()
    first_product = rng.choice(pop.size, size=k.size, p=pop)
    product = first_product[idx]
    # later items repeat the first product or come from the same seller
    later = item_no > 1
    u = rng.random(idx.size)
    other = rng.choice(pop.size, size=idx.size, p=pop)
    product = np.where(later & (u > 0.62), other, product)
    seller = g.pr_seller[product]
    price = g.pr_price[product]
    freight = np.round(
        np.exp(rng.normal(math.log(16.3), 0.55, idx.size)) * (g.pr_weight[product] / 700) ** 0.18,
        2,
    )
    freight = np.where(rng.random(idx.size) < 383 / 112650, 0.0, np.clip(freight, 0, 409.68))
    limit = o.approved[idx] + ((6 + rng.normal(0, 1.5, idx.size)) * DAY).astype(np.int64)
    return pl.DataFrame(
        {
            "order_id": order_id.gather(idx),
            "order_item_id": item_no.astype(np.int64),
            "product_id": g.pr_id.gather(product),
            "seller_id": g.s_id.gather(seller),
            "shipping_limit_date": pl.Series(limit * 1_000_000).cast(pl.Datetime("us")),
            "price": price,
            "freight_value": freight,
        }
    )


def _payments(g: _Generator, order_id: pl.Series, items: pl.DataFrame) -> pl.DataFrame:
    rng, o = g.rng, g.o
    n = o.person.size
    totals = items.group_by("order_id").agg(
        (pl.col("price") + pl.col("freight_value")).sum().round(2).alias("t")
    )
    total = (
        pl.DataFrame({"order_id": order_id})
        .join(totals, on="order_id", how="left")["t"]
        .fill_null(0.0)
        .to_numpy()
        .copy()
    )
    empty = total == 0
    total[empty] = np.round(np.exp(rng.normal(math.log(90), 0.8, int(empty.sum()))), 2)
    over = rng.random(n) < 264 / 98665
    total[over] += np.round(rng.uniform(0.01, 30, int(over.sum())), 2)
    under = rng.random(n) < 39 / 98665
    total[under] = np.round(total[under] * 0.9, 2)
    pay = o.pay.copy()
    not_defined = (o.status == 2) & (rng.random(n) < 0.005)
    # split: a card or boleto plus one or more vouchers
    split = (pay <= 1) & (rng.random(n) < 0.024)
    n_vouchers = np.where(split, rng.geometric(0.62, n), 0)
    n_vouchers = np.minimum(n_vouchers, 28)
    voucher_share = np.where(split, rng.uniform(0.05, 0.6, n), 0.0)
    main_value = np.round(total * (1 - voucher_share), 2)
    voucher_total = np.round(total - main_value, 2)
    rows_per = 1 + n_vouchers
    idx = np.repeat(np.arange(n), rows_per)
    seq = np.arange(idx.size) - np.repeat(np.cumsum(rows_per) - rows_per, rows_per) + 1
    is_main = seq == 1
    vouch_each = np.where(n_vouchers > 0, voucher_total / np.maximum(n_vouchers, 1), 0)
    value = np.where(is_main, main_value[idx], np.round(vouch_each[idx], 2))
    # the last voucher takes the rounding remainder
    last = seq == rows_per[idx]
    value = np.where(
        last & ~is_main,
        np.round(voucher_total[idx] - np.round(vouch_each[idx], 2) * (n_vouchers[idx] - 1), 2),
        value,
    )
    ptype = np.where(is_main, pay[idx], 2)
    ptype = np.where(is_main & not_defined[idx], 4, ptype)
    value = np.where(ptype == 4, 0.0, value)
    zero_voucher = (ptype == 2) & (rng.random(idx.size) < 6 / 5775)
    value = np.where(zero_voucher, 0.0, value)
    # instalments: only credit cards, more for larger values
    inst = np.ones(idx.size, dtype=np.int64)
    cc = ptype == 0
    lam = np.clip(np.log1p(value / 40.0) * 1.9 - 0.2, 0, None)
    draw = 1 + rng.poisson(lam)
    draw = np.where(rng.random(idx.size) < 0.31, 1, draw)
    inst[cc] = np.minimum(draw[cc], 24)
    inst[cc & (rng.random(idx.size) < 2 / 76795)] = 0
    drop = np.isin(idx, np.flatnonzero(rng.random(n) < 1 / 99441))
    df = pl.DataFrame(
        {
            "order_id": order_id.gather(idx),
            "payment_sequential": seq.astype(np.int64),
            "payment_type": _pick(PAYMENT_TYPES, ptype),
            "payment_installments": inst,
            "payment_value": np.round(value, 2),
        }
    ).filter(~pl.Series(drop))
    return df[rng.permutation(df.height)]


def _reviews(g: _Generator, order_id: pl.Series) -> pl.DataFrame:
    rng, o = g.rng, g.o
    n = o.person.size
    n_rev = np.ones(n, dtype=np.int64)
    u = rng.random(n)
    n_rev[u < 768 / 99441] = 0
    n_rev[(u > 0.5) & (u < 0.5 + 543 / 99441)] = 2
    n_rev[(u > 0.6) & (u < 0.6 + 4 / 99441)] = 3
    idx = np.repeat(np.arange(n), n_rev)
    m = idx.size
    nth = np.arange(m) - np.repeat(np.cumsum(n_rev) - n_rev, n_rev)
    score = o.score[idx].copy()
    redo = (nth > 0) & (rng.random(m) < 0.37)
    score[redo] = rng.integers(1, 6, int(redo.sum()))
    # survey sent on delivery, or on the estimated date when the parcel is late
    deliv = o.has_deliv[idx]
    late = o.late[idx]
    send = np.where(
        deliv, _midnight(o.delivered[idx]) + DAY * (rng.random(m) < 0.6), o.est[idx] + DAY
    )
    send = np.where(late & (rng.random(m) < 0.6), o.est[idx] + DAY, send)
    send = send + DAY * nth
    answer = send + np.exp(rng.normal(math.log(1.1 * DAY), 1.0, m)).astype(np.int64)
    has_msg = rng.random(m) < MESSAGE_P[score - 1]
    good = rng.choice(len(GOOD_MESSAGES), size=m)
    bad = rng.choice(len(BAD_MESSAGES), size=m)
    msg = _pick(
        GOOD_MESSAGES + BAD_MESSAGES, np.where(score >= 4, good, len(GOOD_MESSAGES) + bad), has_msg
    )
    has_title = rng.random(m) < np.where(has_msg, 0.22, 0.045)
    title = _pick(TITLES, rng.choice(len(TITLES), m), has_title)
    review_id = _hex_ids(rng, m)
    df = pl.DataFrame(
        {
            "review_id": review_id,
            "order_id": order_id.gather(idx),
            "review_score": score,
            "review_comment_title": title,
            "review_comment_message": msg,
            "review_creation_date": pl.Series(send * 1_000_000).cast(pl.Datetime("us")),
            "review_answer_timestamp": pl.Series(answer * 1_000_000).cast(pl.Datetime("us")),
        }
    )
    # the same review filed under several orders (identical content, same id)
    n_dup = _count(789 * g.scale, rng)
    src = rng.choice(m, size=min(n_dup, m), replace=False)
    targets = rng.choice(n, size=src.size)
    dups = df[src].with_columns(order_id=order_id.gather(targets))
    n_three = min(_count(25 * g.scale, rng), dups.height)
    thirds = dups.head(n_three).with_columns(order_id=order_id.gather(rng.choice(n, size=n_three)))
    df = pl.concat([df, dups, thirds]).unique(
        subset=["order_id", "review_id"], keep="first", maintain_order=True
    )
    return df[rng.permutation(df.height)]


def _products_table(g: _Generator) -> pl.DataFrame:
    rng = g.rng
    n = g.pr_id.len()
    no_cat = g.pr_no_cat
    name_len = np.clip(rng.normal(49, 10, n), 5, 76).astype(np.int64)
    desc_len = np.clip(np.exp(rng.normal(math.log(595), 0.65, n)), 4, 3992).astype(np.int64)
    photos = np.clip(1 + rng.geometric(0.55, n) - 1, 1, 20)
    weight = np.round(g.pr_weight).astype(np.int64)
    weight[rng.random(n) < 4 / 32951] = 0
    length = np.clip(np.exp(rng.normal(math.log(25), 0.5, n)), 7, 105).astype(np.int64)
    height = np.clip(np.exp(rng.normal(math.log(13), 0.7, n)), 2, 105).astype(np.int64)
    width = np.clip(np.exp(rng.normal(math.log(20), 0.45, n)), 6, 118).astype(np.int64)
    no_dims = rng.random(n) < 2 / 32951
    ok = ~no_cat
    return pl.DataFrame(
        {
            "product_id": g.pr_id,
            "product_category_name": g.pr_cat,
            "product_name_lenght": _masked(name_len, ok),
            "product_description_lenght": _masked(desc_len, ok),
            "product_photos_qty": _masked(photos.astype(np.int64), ok),
            "product_weight_g": _masked(weight, ~no_dims),
            "product_length_cm": _masked(length, ~no_dims),
            "product_height_cm": _masked(height, ~no_dims),
            "product_width_cm": _masked(width, ~no_dims),
        }
    )


def _geolocation(g: _Generator, used_zips: np.ndarray) -> pl.DataFrame:
    """Many rows per zip prefix, duplicates and spelling variants, a few points abroad."""
    rng = g.rng
    n_prefix = min(round(REAL_GEO_PREFIXES * g.scale), 60_000)
    used = np.unique(used_zips)
    if used.size >= n_prefix:
        prefixes = rng.choice(used, size=max(n_prefix, 1), replace=False)
    else:
        pool = np.setdiff1d(np.arange(1000, 99991), used)
        prefixes = np.concatenate(
            [used, rng.choice(pool, size=n_prefix - used.size, replace=False)]
        )
    n_rows = round(REAL_GEO_ROWS * min(g.scale, n_prefix / REAL_GEO_PREFIXES))
    w = rng.pareto(1.3, prefixes.size) + 0.05
    which = rng.choice(prefixes.size, size=n_rows, p=w / w.sum())
    zips = prefixes[which]
    lo = np.array([STATES[s][2] for s in STATE_NAMES])
    order = np.argsort(lo)
    st = order[np.searchsorted(lo[order], zips, side="right") - 1]
    lat0 = np.array([STATES[s][4] for s in STATE_NAMES])[st]
    lng0 = np.array([STATES[s][5] for s in STATE_NAMES])[st]
    zip_jitter = (zips % 997) / 997.0 - 0.5
    lat = lat0 + 1.5 * zip_jitter + rng.normal(0, 0.02, n_rows)
    lng = lng0 + 1.5 * zip_jitter + rng.normal(0, 0.02, n_rows)
    abroad = rng.random(n_rows) < 42 / REAL_GEO_ROWS
    lat[abroad] = rng.uniform(20, 45.07, int(abroad.sum()))
    lng[abroad] = rng.uniform(-101, 121, int(abroad.sum()))
    k = np.array([len(STATES[s][6]) for s in STATE_NAMES])
    cities = CITY_OFFSET[st] + zips % k[st]
    accent = (cities == 0) & (rng.random(n_rows) < 0.155)
    cities[accent] = len(CITIES) - 1
    df = pl.DataFrame(
        {
            "geolocation_zip_code_prefix": pl.Series(zips).cast(pl.String).str.zfill(5),
            "geolocation_lat": lat,
            "geolocation_lng": lng,
            "geolocation_city": _pick(CITIES, cities),
            "geolocation_state": _pick(STATE_NAMES, st),
        }
    )
    dup = rng.random(n_rows) < 0.2
    src = rng.choice(n_rows, size=int(dup.sum()))
    return pl.concat([df.filter(~pl.Series(dup)), df[src]])[rng.permutation(n_rows)]


# -- writing the real byte format ----------------------------------------------------------
def _quoted(name: str, dtype: pl.DataType) -> pl.Expr:
    """A text column as the Kaggle export writes it: quoted only when needed or digit-led."""
    c = pl.col(name)
    if dtype != pl.String:
        return c
    needs = c.str.contains(r'^[0-9]|[",\r\n]')
    escaped = pl.lit('"') + c.str.replace_all('"', '""', literal=True) + pl.lit('"')
    return pl.when(needs).then(escaped).otherwise(c).alias(name)


def write_table_csv(df: pl.DataFrame, path: Path, *, name: str) -> None:
    """Write one table in the real file's conventions (atomically)."""
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        if name == "category_translation":
            lines = [",".join(df.columns)] + [f"{a},{b}" for a, b in df.iter_rows()]
            fh.write(BOM + "\r\n".join(lines).encode("utf-8"))
            return
        eol = "\r\n" if name == "order_reviews" else "\n"
        fh.write((",".join(f'"{c}"' for c in df.columns) + eol).encode("utf-8"))
        body = df.select(_quoted(c, t) for c, t in df.schema.items())
        body.write_csv(
            fh,
            include_header=False,
            quote_style="never",
            line_terminator=eol,
            datetime_format=TIMESTAMP_FORMAT,
            float_precision=None if name == "geolocation" else 2,
        )


def write_olist(tables: dict[str, pl.DataFrame], out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write the tables as the nine Kaggle CSV files in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, df in tables.items():
        path = out / f"{TABLES[name].stem}.csv"
        write_table_csv(df, path, name=name)
        paths.append(path)
    return paths


PARAMS_FILE = "olist_fast_generator.json"


def generate(
    out_dir: str | os.PathLike[str],
    *,
    scale: float = 1.0,
    random_state: int = 0,
    repeat_rate: float | None = None,
    arrivals: str = "growth",
) -> list[Path]:
    """Draw the demo dataset and write it as CSV files, plus ``PARAMS_FILE`` (the generator's
    arguments, so :func:`load_simulation` can draw it again); returns the paths written."""
    check_repeat_rate(repeat_rate)
    check_arrivals(arrivals)
    tables = make_olist(
        scale=scale, random_state=random_state, repeat_rate=repeat_rate, arrivals=arrivals
    )
    paths = write_olist(tables, out_dir)
    params = {
        "scale": scale,
        "random_state": random_state,
        "repeat_rate": repeat_rate,
        "arrivals": arrivals,
        "generator_version": GENERATOR_VERSION,
    }
    path = Path(out_dir) / PARAMS_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(params, indent=2) + "\n")
    return [*paths, path]


def read_generator_params(data_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The arguments ``generate`` wrote into ``data_dir``; None when it holds none."""
    path = Path(data_dir) / PARAMS_FILE
    if not path.is_file():
        return None
    params: dict[str, Any] = json.loads(path.read_text())
    return params


def load_simulation(data_dir: str | os.PathLike[str]) -> Simulation | None:
    """Draw the generated data in ``data_dir`` again, with its truth; None if it was not
    generated (no ``PARAMS_FILE``).

    The same arguments give the same tables, so the truth is that of the files as long as
    nobody edited them; this is not checked. Files without ``arrivals`` (written before
    it existed) are ``growth``.
    """
    params = read_generator_params(data_dir)
    if params is None:
        return None
    version = params.get("generator_version")
    if version != GENERATOR_VERSION:
        raise OlistDataError(
            f"{Path(data_dir) / PARAMS_FILE}: generator version {version}, this is version"
            f" {GENERATOR_VERSION}; the data cannot be drawn again"
        )
    return simulate(
        scale=params["scale"],
        random_state=params["random_state"],
        repeat_rate=params["repeat_rate"],
        arrivals=params.get("arrivals", "growth"),
    )
