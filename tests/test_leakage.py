"""No leakage: facts at or after ``as_of`` change no feature and no score.

At a busy date (2018-06-01 with a 60-day horizon, three months before the data ends),
on top of deleting the later rows every value whose own timestamp is at or after
``as_of`` (``shared/feature-contract.md``: a fact is known at its own timestamp) is
rewritten on the rows that are kept:

* orders bought at or after ``as_of``: status, every timestamp, the person behind them
  (their customer rows), their items, payments and reviews;
* orders bought before it: delivery, carrier and approval dates at or after ``as_of``
  (moved, some to exactly ``as_of``; undelivered ones given a date at or after it,
  delivered-later ones made undelivered);
* reviews answered at or after ``as_of``: score, comment, title, creation and answer
  dates (the answer kept at or after ``as_of``);
* items of earlier orders: the shipping limit dates at or after ``as_of`` (not a feature
  input at all).

The feature table (without labels) must stay byte-identical, and so must the scores of a
saved model and of a model trained on the rewritten data. The property test at the end
does the same at random dates, with random shares of the deletions and rewrites and with
new later orders and reviews appended, under text and integer keys.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import olist_fast
from olist_fast.features import FEATURES, LABELS
from olist_fast.synth import generate, write_olist
from tests.helpers import features, truncate

AS_OF = datetime(2018, 6, 1)
HORIZON = 60
PURCHASE = "order_purchase_timestamp"
ANSWER = "review_answer_timestamp"
ORDER_DATES = ("order_approved_at", "order_delivered_carrier_date",
               "order_delivered_customer_date")  # fmt: skip
STATUSES = ["delivered", "shipped", "canceled", "unavailable", "invoiced", None]


# -- the rewrites ----------------------------------------------------------------------------
def _at(at: datetime, seconds: np.ndarray) -> pl.Series:
    return pl.Series([at + timedelta(seconds=int(s)) for s in seconds], dtype=pl.Datetime("us"))


def _later(rng: np.random.Generator, n: int, at: datetime, *, days: int = 120) -> pl.Series:
    """``n`` whole-second times at or after ``at`` (one in five exactly ``at``)."""
    secs = rng.integers(0, days * 86_400, n)
    secs[rng.random(n) < 0.2] = 0
    return _at(at, secs)


def _pick(rng: np.random.Generator, values: list, n: int) -> pl.Series:
    return pl.Series([values[i] for i in rng.integers(0, len(values), n)])


def _rewrite_where(df: pl.DataFrame, mask: pl.Series, new: dict[str, pl.Series]) -> pl.DataFrame:
    """``df`` with the columns of ``new`` replaced on the rows of ``mask`` (the new series
    have one value per row of ``df``; only the masked ones are used)."""
    return df.with_columns(
        pl.when(mask).then(series).otherwise(pl.col(name)).alias(name)
        for name, series in new.items()
    )


def rewrite_after(
    tables: dict[str, pl.DataFrame], as_of: datetime, *, seed: int, share: float = 1.0
) -> dict[str, pl.DataFrame]:
    """Every value whose own timestamp is at or after ``as_of`` rewritten, on ``share`` of
    the rows that hold one (1.0: all of them); nothing known before ``as_of`` touched."""
    rng = np.random.default_rng(seed)
    t = dict(tables)

    def chosen(mask: pl.Series) -> pl.Series:
        return mask & pl.Series(rng.random(len(mask)) < share)

    orders = t["orders"]
    n = orders.height
    purchase = orders[PURCHASE]
    later = (purchase >= as_of).fill_null(False)
    later_ids = orders.filter(later)["order_id"]
    # orders bought at or after as_of: everything but their ids
    new_purchase = purchase + pl.Series(rng.integers(0, 20 * 86_400, n) * 1_000_000).cast(
        pl.Duration("us")
    )
    late_orders = {
        "order_status": _pick(rng, STATUSES, n).cast(pl.String),
        PURCHASE: new_purchase,
        "order_estimated_delivery_date": _later(rng, n, as_of),
        **{c: _later(rng, n, as_of) for c in ORDER_DATES},
    }
    rewritten = _rewrite_where(orders, chosen(later), late_orders)
    # orders bought before as_of: their dates at or after as_of move; half of the customer
    # deliveries at or after as_of disappear instead, and undelivered ones get a date
    delivered = "order_delivered_customer_date"
    coin = pl.Series(rng.random(n) < 0.5)
    for c in ORDER_DATES:
        at_or_after = (orders[c] >= as_of).fill_null(False) & ~later
        if c == delivered:
            rewritten = _rewrite_where(
                rewritten,
                chosen(at_or_after & coin),
                {c: pl.Series([None] * n, dtype=pl.Datetime("us"))},
            )
            at_or_after = at_or_after & ~coin
        rewritten = _rewrite_where(rewritten, chosen(at_or_after), {c: _later(rng, n, as_of)})
    undelivered = orders[delivered].is_null() & ~later
    rewritten = _rewrite_where(
        rewritten, chosen(undelivered), {delivered: _later(rng, n, as_of, days=5)}
    )
    t["orders"] = rewritten

    # the people behind later orders: customer rows used by no earlier order
    earlier_customers = orders.filter(~later)["customer_id"].implode()
    cust = t["customers"]
    m = cust.height
    only_later = ~cust["customer_id"].is_in(earlier_customers)
    t["customers"] = _rewrite_where(
        cust,
        chosen(only_later),
        {
            "customer_unique_id": _pick(rng, cust["customer_unique_id"].to_list(), m),
            "customer_state": _pick(rng, ["SP", "RJ", "AC", "RR"], m),
            "customer_city": _pick(rng, ["x", "y"], m),
            "customer_zip_code_prefix": _pick(rng, ["01000", "99999"], m),
        },
    )

    # items: those of later orders entirely; the shipping limits at or after as_of
    items = t["order_items"]
    k = items.height
    of_later = items["order_id"].is_in(later_ids.implode())
    t["order_items"] = _rewrite_where(
        items,
        chosen(of_later),
        {
            "product_id": _pick(rng, t["products"]["product_id"].to_list(), k),
            "seller_id": _pick(rng, t["sellers"]["seller_id"].to_list(), k),
            "price": pl.Series(rng.uniform(0, 5000, k).round(2)),
            "freight_value": pl.Series(rng.uniform(0, 500, k).round(2)),
        },
    )
    limit_later = (items["shipping_limit_date"] >= as_of).fill_null(False)
    t["order_items"] = _rewrite_where(
        t["order_items"], chosen(limit_later), {"shipping_limit_date": _later(rng, k, as_of)}
    )

    # payments of later orders
    pay = t["order_payments"]
    k = pay.height
    t["order_payments"] = _rewrite_where(
        pay,
        chosen(pay["order_id"].is_in(later_ids.implode())),
        {
            "payment_type": _pick(rng, ["voucher", "boleto", "debit_card", "not_defined"], k),
            "payment_installments": pl.Series(rng.integers(0, 24, k)),
            "payment_value": pl.Series(rng.uniform(0, 9000, k).round(2)),
        },
    )

    # reviews answered at or after as_of (every review of a later order is among them)
    rev = t["order_reviews"]
    k = rev.height
    answered_later = (rev[ANSWER] >= as_of).fill_null(False)
    new_answer = _later(rng, k, as_of)
    # a creation date at or after as_of moves too, staying between as_of and the answer
    lead = (new_answer - as_of).dt.total_seconds().to_numpy() * rng.random(k)
    new_created = _at(as_of, np.floor(lead))
    created = rev["review_creation_date"]
    t["order_reviews"] = _rewrite_where(
        rev,
        chosen(answered_later),
        {
            "review_score": pl.Series(rng.integers(1, 6, k)),
            "review_comment_message": _pick(rng, [None, "   ", "péssimo", "ótimo"], k),
            "review_comment_title": _pick(rng, [None, "Ruim", "Bom"], k),
            ANSWER: new_answer,
            "review_creation_date": pl.when(created >= as_of).then(new_created).otherwise(created),
        },
    )
    return t


def append_after(
    tables: dict[str, pl.DataFrame], as_of: datetime, *, seed: int, n: int
) -> dict[str, pl.DataFrame]:
    """``n`` new orders bought at or after ``as_of`` by people already in the data (new
    customer rows, items and payments), and ``n`` new reviews of existing orders answered
    at or after it. The new ids are 32 hex digits, like the generated ones."""
    rng = np.random.default_rng(seed)
    t = dict(tables)
    new_ids = pl.Series([f"{seed:016x}{i:016x}" for i in range(n)], dtype=pl.String)
    when = _later(rng, n, as_of, days=200)
    people = t["customers"].sample(n, with_replacement=True, seed=seed)
    t["customers"] = pl.concat([t["customers"], people.with_columns(customer_id=new_ids)])
    t["orders"] = pl.concat([t["orders"], t["orders"].head(n).with_columns(
        order_id=new_ids, customer_id=new_ids, order_status=pl.lit("delivered"),
        **{PURCHASE: when},
    )])  # fmt: skip
    for name in ("order_items", "order_payments"):
        t[name] = pl.concat([t[name], t[name].head(n).with_columns(order_id=new_ids)])
    reviewed = t["orders"]["order_id"].sample(n, with_replacement=True, seed=seed)
    t["order_reviews"] = pl.concat([t["order_reviews"], t["order_reviews"].head(n).with_columns(
        order_id=reviewed, review_score=pl.lit(1, dtype=pl.Int64), **{ANSWER: when},
    )])  # fmt: skip
    return t


# -- helpers ---------------------------------------------------------------------------------
def assert_same_bytes(a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert_frame_equal(a, b, check_exact=True)  # a readable diff first
    assert a.write_csv() == b.write_csv()


def changed_cells(a: pl.DataFrame, b: pl.DataFrame, column: str) -> int:
    return int((a[column].ne_missing(b[column])).sum())


# -- data ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated data busy at 2018-06-01 (about 3,000 orders, 10 % repeat buyers)."""
    folder = tmp_path_factory.mktemp("leak-data")
    generate(folder, scale=0.03, random_state=17, repeat_rate=0.1)
    return folder


@pytest.fixture(scope="module")
def tables(source: Path) -> dict[str, pl.DataFrame]:
    return {k: v.collect() for k, v in olist_fast.scan_olist(source).items()}


@pytest.fixture(scope="module")
def variants(
    tables: dict[str, pl.DataFrame], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The data cut at ``AS_OF``, with its later values rewritten, and both at once."""
    out = {}
    for name, t in {
        "cut": truncate(tables, AS_OF),
        "rewritten": rewrite_after(tables, AS_OF, seed=1),
        "cut_and_rewritten": rewrite_after(truncate(tables, AS_OF), AS_OF, seed=2),
    }.items():
        out[name] = tmp_path_factory.mktemp(name)
        write_olist(t, out[name])
    return out


# -- the tests -------------------------------------------------------------------------------
def test_the_cut_and_the_rewrites_reach_a_busy_window(
    tables: dict[str, pl.DataFrame], variants: dict[str, Path]
) -> None:
    """Guard: 2018-06-01 is busy (many rows to cut), every kind of rewrite happened, and the
    rewritten rows matter: the labels and a later snapshot's features move."""
    purchase = tables["orders"][PURCHASE]
    assert (purchase >= AS_OF).mean() > 0.2  # type: ignore[operator]
    assert (purchase >= AS_OF + timedelta(days=HORIZON)).mean() > 0.05  # type: ignore[operator]
    new = {k: v.collect() for k, v in olist_fast.scan_olist(variants["rewritten"]).items()}
    for table, columns in {
        "orders": ["order_status", PURCHASE, *ORDER_DATES],
        "customers": ["customer_unique_id", "customer_state"],
        "order_items": ["price", "seller_id", "shipping_limit_date"],
        "order_payments": ["payment_value", "payment_type"],
        "order_reviews": ["review_score", "review_comment_message", ANSWER,
                          "review_creation_date"],
    }.items():  # fmt: skip
        for c in columns:
            assert changed_cells(tables[table], new[table], c) >= 10, (table, c)
    # earlier orders: deliveries moved, added and removed, some to exactly as_of
    d = "order_delivered_customer_date"
    before = tables["orders"].filter(pl.col(PURCHASE) < AS_OF)[d]
    after = new["orders"].filter(pl.col(PURCHASE) < AS_OF)[d]
    assert (before.is_null() & after.is_not_null()).sum() > 0
    assert (before.is_not_null() & after.is_null()).sum() > 0
    assert (after == AS_OF).sum() > 0  # type: ignore[union-attr]
    # the rewritten facts matter once they are in the past, and they move the labels
    later = AS_OF + timedelta(days=HORIZON)
    assert not features(tables, later).equals(features(new, later))
    (a,) = olist_fast.build_snapshots({k: v.lazy() for k, v in tables.items()}, [AS_OF],
                                      horizon_days=HORIZON)  # fmt: skip
    (b,) = olist_fast.build_snapshots({k: v.lazy() for k, v in new.items()}, [AS_OF],
                                      horizon_days=HORIZON)  # fmt: skip
    assert set(LABELS) <= set(a.columns)
    assert not a.select(LABELS).equals(b.select(LABELS))


@pytest.mark.parametrize("variant", ["cut", "rewritten", "cut_and_rewritten"])
def test_features_at_a_busy_date_ignore_every_later_fact(
    source: Path, variants: dict[str, Path], variant: str
) -> None:
    reference = features(source, AS_OF)
    assert reference.height > 1_000 and reference.columns == ["customer_unique_id", *FEATURES]
    assert_same_bytes(features(variants[variant], AS_OF), reference)


@pytest.fixture(scope="module")
def reference_run(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The job at ``AS_OF`` on the full data, one fixed setup (no selection to wait for):
    its scores and its saved model."""
    out = tmp_path_factory.mktemp("leak-run")
    olist_fast.run(olist_fast.RunConfig(data=source, as_of=AS_OF, horizon_days=HORIZON,
                                        out=out, models=("logistic",), n_boot=10))  # fmt: skip
    return out


def scores_csv(model: Path, data: Path, out: Path) -> bytes:
    """The score table of every customer at ``AS_OF`` as CSV bytes, via the public ``score``."""
    table = olist_fast.score(model=model, data=data, as_of=AS_OF, out=out)
    written = (out / "user_propensity_scores.csv").read_bytes()
    assert table.write_csv().encode() == written
    return written


def test_saved_model_scores_ignore_every_later_fact(
    variants: dict[str, Path], reference_run: Path, tmp_path: Path
) -> None:
    reference = (reference_run / "user_propensity_scores.csv").read_bytes()
    assert reference.count(b"\n") > 1_000
    for name, folder in variants.items():
        assert scores_csv(reference_run / "model", folder, tmp_path / name) == reference, name


def test_the_job_on_cut_and_rewritten_data_gives_the_same_scores(
    variants: dict[str, Path], reference_run: Path, tmp_path: Path
) -> None:
    """Training too: the labels of every training snapshot end by ``AS_OF``, so the model
    trained on the cut and rewritten data is the same model."""
    olist_fast.run(olist_fast.RunConfig(data=variants["cut_and_rewritten"], as_of=AS_OF,
                                        horizon_days=HORIZON, out=tmp_path, models=("logistic",),
                                        n_boot=10))  # fmt: skip
    ours = (tmp_path / "user_propensity_scores.csv").read_bytes()
    assert ours == (reference_run / "user_propensity_scores.csv").read_bytes()


def test_train_saves_the_model_the_job_saves(
    source: Path, reference_run: Path, tmp_path: Path
) -> None:
    olist_fast.train(data=source, as_of=AS_OF, horizon_days=HORIZON,
                     model_dir=tmp_path / "model", setup="logistic")  # fmt: skip
    ours = scores_csv(tmp_path / "model", source, tmp_path / "scores")
    assert ours == (reference_run / "user_propensity_scores.csv").read_bytes()


def test_the_check_catches_a_review_read_after_as_of(
    tables: dict[str, pl.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The comparison is sharp enough: a plan that reads every review, whenever it was
    answered, is caught by the rewritten scores alone."""
    import olist_fast.features.orders as orders

    honest = orders.review_facts
    monkeypatch.setattr(orders, "review_facts", lambda reviews, *, as_of: honest(
        reviews, as_of=datetime(2100, 1, 1)))  # fmt: skip
    rewritten = rewrite_after(tables, AS_OF, seed=1)
    assert not features(tables, AS_OF).equals(features(rewritten, AS_OF))


# -- the property: random dates, random shares of the deletions and rewrites, added rows ----
def test_a_partial_cut_and_added_rows_move_the_labels(
    small_tables: dict[str, pl.DataFrame],
) -> None:
    """Guard for the property: deleting a share of the later rows, or adding later orders
    and reviews, reaches rows that matter (the labels move)."""
    as_of = datetime(2018, 3, 1)

    def labels(t: dict[str, pl.DataFrame]) -> pl.DataFrame:
        lazy = {k: v.lazy() for k, v in t.items()}
        return olist_fast.build_snapshot(lazy, as_of=as_of, horizon_days=90).collect()

    reference = labels(small_tables)
    assert set(LABELS) <= set(reference.columns)
    for changed in (
        truncate(small_tables, as_of, share=0.5, seed=1),
        append_after(small_tables, as_of, seed=1, n=30),
    ):
        assert not labels(changed)["future_spend"].equals(reference["future_spend"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    as_of=st.datetimes(datetime(2017, 3, 1), datetime(2018, 9, 1)).map(
        lambda d: d.replace(microsecond=0)
    ),
    seed=st.integers(0, 2**31 - 1),
    drop=st.sampled_from([0.0, 1.0]) | st.floats(0, 1),
    share=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
    add=st.integers(0, 40),
)
def test_rows_at_or_after_as_of_never_change_features(
    small_tables: dict[str, pl.DataFrame],
    as_of: datetime,
    seed: int,
    drop: float,
    share: float,
    add: int,
) -> None:
    """A ``drop`` share of the later rows deleted (1.0: all), a ``share`` of the later
    values rewritten, ``add`` later orders and reviews appended: the same features, with
    text keys and with integer keys."""
    changed = truncate(small_tables, as_of, share=drop, seed=seed)
    changed = rewrite_after(changed, as_of, seed=seed, share=share)
    changed = append_after(changed, as_of, seed=seed, n=add)
    reference = features(small_tables, as_of)
    assert features(changed, as_of, compact=False).equals(reference)
    assert features(changed, as_of, compact=True).equals(reference)
