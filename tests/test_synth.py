"""The generated dataset: real byte format, determinism, and statistics close to the real data.

The reference figures are those of ``shared/olist-facts.md`` (the real full files);
each tolerance is stated next to its figure.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from olist_fast.cli import app
from olist_fast.io import scan_olist
from olist_fast.schema import TABLES
from olist_fast.synth import (
    COHORT_MONTHS,
    DEFAULT_REPEAT_RATE,
    GENERATOR_VERSION,
    PARAMS_FILE,
    Simulation,
    generate,
    load_simulation,
    make_olist,
    read_generator_params,
    simulate,
    solve_beta0,
    write_olist,
)
from olist_fast.truth import realised_repeat_rate


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a, b, c = (tmp_path / x for x in "abc")
    generate(a, scale=0.01, random_state=3)
    generate(b, scale=0.01, random_state=3)
    generate(c, scale=0.01, random_state=4)
    assert digest(a) == digest(b)
    assert digest(a)["olist_orders_dataset.csv"] != digest(c)["olist_orders_dataset.csv"]


def test_translation_file_is_byte_identical_to_the_real_one(
    small_csv_dir: Path, real_samples: Path
) -> None:
    name = "product_category_name_translation.csv"
    assert (small_csv_dir / name).read_bytes() == (real_samples / name).read_bytes()


@pytest.mark.parametrize("name", [n for n in TABLES if n != "category_translation"])
def test_headers_match_the_real_files_byte_for_byte(
    small_csv_dir: Path, real_samples: Path, name: str
) -> None:
    stem = TABLES[name].stem
    first = (small_csv_dir / f"{stem}.csv").read_bytes().split(b"\n", 1)[0]
    real = (real_samples / f"{stem}.csv").read_bytes().split(b"\n", 1)[0]
    assert first == real


def test_values_are_quoted_like_the_real_export(small_csv_dir: Path) -> None:
    lines = (small_csv_dir / "olist_customers_dataset.csv").read_text().splitlines()[1:]
    for line in lines[:200]:
        cid, uid, zip_, city, state = line.split(",")
        for v in (cid, uid, zip_):
            raw = v.strip('"')
            assert (v.startswith('"')) == raw[0].isdigit(), line
        assert zip_.startswith('"') and len(zip_) == 7, line  # "01234": always digit-led
        assert not city.startswith('"') and not state.startswith('"')
    orders = (small_csv_dir / "olist_orders_dataset.csv").read_text().splitlines()
    assert all(",20" in ln for ln in orders[1:50])  # timestamps unquoted


def test_reviews_use_crlf_and_multiline_comments(small_csv_dir: Path) -> None:
    raw = (small_csv_dir / "olist_order_reviews_dataset.csv").read_bytes()
    assert raw.split(b"\n", 1)[0].endswith(b"\r")
    assert raw.count(b"\n") == raw.count(b"\r\n")
    df = scan_olist(small_csv_dir, tables=["order_reviews"])["order_reviews"].collect()
    assert df["review_comment_message"].str.contains("\r\n").sum() > 0
    assert df["review_comment_message"].str.contains(",").sum() > 0


def test_typed_frames_round_trip_through_csv(small_tables, small_csv_dir: Path) -> None:
    read = {k: v.collect() for k, v in scan_olist(small_csv_dir).items()}
    for name, df in small_tables.items():
        assert read[name].equals(df), name


# -- statistics at scale 1 ------------------------------------------------------------------
@pytest.fixture(scope="module")
def scale1(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataFrame]:
    out = tmp_path_factory.mktemp("scale1")
    write_olist(make_olist(scale=1.0, random_state=0), out)
    return {k: v.collect() for k, v in scan_olist(out).items()}


def within(value: float, target: float, rel: float) -> bool:
    return abs(value - target) <= rel * abs(target)


def test_table_sizes(scale1) -> None:
    real = {"orders": 99_441, "order_items": 112_650, "order_payments": 103_886,
            "order_reviews": 99_224, "products": 32_951, "sellers": 3_095,
            "geolocation": 1_000_163, "category_translation": 71}  # fmt: skip
    for name, n in real.items():
        assert within(scale1[name].height, n, 0.04), (name, scale1[name].height, n)


def test_customers_and_repeat_behaviour(scale1) -> None:
    oc = scale1["orders"].join(scale1["customers"], on="customer_id")
    per = oc.group_by("customer_unique_id").agg(
        n=pl.len(), days=pl.col("order_purchase_timestamp").dt.date().n_unique()
    )
    assert within(per.height, 96_096, 0.02)
    assert within((per["n"] >= 2).mean(), 0.0312, 0.15)  # 3.12 % repeat
    assert within((per["days"] >= 2).mean(), 0.0224, 0.20)  # 2.24 % on two days
    assert within((per["n"] >= 3).mean(), 0.0026, 0.5)  # 0.26 % three or more
    elig = oc.filter(~pl.col("order_status").is_in(["canceled", "unavailable"]))
    # The share of customers who buy again within 90 days (the rate the model predicts),
    # measured on seeds 0-7 at scale 1: 2017-12-01 0.0066-0.0078 (mean 0.0072, about 270
    # buyers), 2018-03-01 0.0070-0.0089 (0.0079, about 450), 2018-05-01 0.0079-0.0092
    # (0.0087, about 610); it rises with the shop's growth. The seed-to-seed spread is
    # about the buyers' count noise, a relative sd of 1/sqrt(buyers) = 6.1 %, 4.7 % and
    # 4.0 % (measured sd 5 %, 7 % and 5 %; the largest miss of the mean, 13 %): 20 % is
    # about 3 sd on each date, while the old range (0.004-0.012, 3x) let the rate halve
    # or rise by half unnoticed.
    expected = {"2017-12-01": 0.0072, "2018-03-01": 0.0079, "2018-05-01": 0.0087}
    for as_of, rate in expected.items():
        a = datetime.fromisoformat(as_of)
        ts = pl.col("order_purchase_timestamp")
        pop = elig.filter(ts < a)["customer_unique_id"].unique()
        fut = elig.filter(ts >= a, ts < a + timedelta(days=90))["customer_unique_id"].unique()
        share = pop.is_in(fut.implode()).mean()
        assert within(share, rate, 0.20), (as_of, share, rate)


def test_monthly_curve_and_collapse(scale1) -> None:
    o = scale1["orders"]
    monthly = dict(
        o.group_by(pl.col("order_purchase_timestamp").dt.strftime("%Y-%m")).len().iter_rows()
    )
    peak = max(monthly, key=lambda m: monthly[m])
    assert peak == "2017-11"
    for month, real in {"2017-01": 800, "2017-06": 3245, "2017-11": 7544, "2018-03": 7211,
                        "2018-08": 6512}.items():  # fmt: skip
        assert within(monthly[month], real, 0.10), (month, monthly[month])
    assert monthly.get("2018-09", 0) < 40 and monthly.get("2018-10", 0) < 15
    assert o["order_purchase_timestamp"].max() < datetime(2018, 10, 18)


def test_status_and_delivery(scale1) -> None:
    o = scale1["orders"]
    share = dict(o["order_status"].value_counts(normalize=True).iter_rows())
    assert within(share["delivered"], 0.9702, 0.01)
    for status, real in {"shipped": 0.0111, "canceled": 0.0063, "unavailable": 0.0061}.items():
        assert within(share[status], real, 0.35), (status, share[status])
    d = o.filter(pl.col("order_delivered_customer_date").is_not_null())
    days = (d["order_delivered_customer_date"] - d["order_purchase_timestamp"]).dt.total_seconds()
    delay = d["order_delivered_customer_date"] - d["order_estimated_delivery_date"]
    delay_days = delay.dt.total_seconds() / 86400
    assert within((days / 86400).mean(), 12.09, 0.06)
    assert within(delay_days.median(), -12.0, 0.12)
    assert within((delay_days > 0).mean(), 0.0811, 0.15)
    assert within(o["order_delivered_customer_date"].null_count() / o.height, 0.0298, 0.25)


def test_items_prices_payments_reviews(scale1) -> None:
    it, p, r = scale1["order_items"], scale1["order_payments"], scale1["order_reviews"]
    per_order = it.group_by("order_id").len()["len"]
    assert within((per_order == 1).mean(), 88_863 / 98_666, 0.02)
    assert within(it["price"].median(), 74.99, 0.12)
    assert within(it["price"].mean(), 120.65, 0.08)
    assert within(it["freight_value"].median(), 16.26, 0.08)
    no_items = scale1["orders"].height - it["order_id"].n_unique()
    assert within(no_items, 775, 0.25)
    types = dict(p["payment_type"].value_counts(normalize=True).iter_rows())
    for t, real in {"credit_card": 0.7392, "boleto": 0.1904, "voucher": 0.0556,
                    "debit_card": 0.0147}.items():  # fmt: skip
        assert within(types[t], real, 0.2), (t, types[t])
    cc = p.filter(pl.col("payment_type") == "credit_card")["payment_installments"]
    assert within(cc.mean(), 2.85, 0.1)
    assert within(p["payment_value"].median(), 100.0, 0.1)
    assert within(r["review_score"].mean(), 4.086, 0.02)
    assert within((r["review_score"] == 1).mean(), 0.115, 0.15)
    assert within(r["review_comment_message"].is_not_null().mean(), 0.413, 0.08)
    assert within(r["review_comment_title"].is_not_null().mean(), 0.117, 0.15)
    dup_ids = r.height - r["review_id"].n_unique()
    assert within(dup_ids, 764 + 2 * 25, 0.3)
    assert r.select(pl.struct("order_id", "review_id").is_duplicated().sum()).item() == 0


def test_customer_states_and_products(scale1) -> None:
    states = dict(scale1["customers"]["customer_state"].value_counts(normalize=True).iter_rows())
    for s, real in {"SP": 0.4198, "RJ": 0.1292, "MG": 0.1170}.items():
        assert within(states[s], real, 0.05)
    assert len(states) == 27
    pr = scale1["products"]
    assert within(pr["product_category_name"].null_count(), 610, 0.2)
    # 72 categories in the real products file (the facts say 73 in use)
    assert pr["product_category_name"].n_unique() - 1 == 72


# -- the repeat-rate knob --------------------------------------------------------------------
def test_default_repeat_rate_at_scale1(scale1) -> None:
    assert within(realised_repeat_rate(scale1), DEFAULT_REPEAT_RATE, 0.15)


@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_repeat_rate_is_met(rate: float) -> None:
    tables = make_olist(scale=0.1, random_state=2, repeat_rate=rate)
    assert within(realised_repeat_rate(tables), rate, 0.15)


@pytest.mark.parametrize("rate", [0.0, 0.0009, 0.61, float("nan")])
def test_repeat_rate_out_of_range_is_refused(rate: float) -> None:
    with pytest.raises(ValueError, match=r"repeat_rate must be between 0\.001 and 0\.6"):
        make_olist(scale=0.01, repeat_rate=rate)


def test_generate_writes_its_parameters(tmp_path: Path) -> None:
    assert read_generator_params(tmp_path) is None
    paths = generate(tmp_path, scale=0.01, random_state=4, repeat_rate=0.05)
    assert paths[-1] == tmp_path / PARAMS_FILE and len(paths) == 10
    assert read_generator_params(tmp_path) == {
        "scale": 0.01,
        "random_state": 4,
        "repeat_rate": 0.05,
        "arrivals": "growth",
        "generator_version": GENERATOR_VERSION,
    }


def test_cli_repeat_rate(cli: CliRunner, tmp_path: Path) -> None:
    args = ["generate", "--out", str(tmp_path / "a"), "--scale", "0.01", "--repeat-rate"]
    r = cli.invoke(app, [*args, "0.2"])
    assert r.exit_code == 0, r.output
    assert read_generator_params(tmp_path / "a")["repeat_rate"] == 0.2  # type: ignore[index]
    r = cli.invoke(app, [*args, "0.9"])
    assert r.exit_code == 1
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "repeat_rate must be between" in errors[0], r.output


def test_cli_arrivals(cli: CliRunner, tmp_path: Path) -> None:
    args = ["generate", "--out", str(tmp_path / "a"), "--scale", "0.01", "--arrivals"]
    r = cli.invoke(app, [*args, "cohort"])
    assert r.exit_code == 0, r.output
    assert read_generator_params(tmp_path / "a")["arrivals"] == "cohort"  # type: ignore[index]
    r = cli.invoke(app, [*args, "weekly"])
    assert r.exit_code == 1
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "arrivals must be one of growth, steady, cohort" in errors[0]


# -- the arrival curves -----------------------------------------------------------------------
# sha256 of each file of generate(scale=0.02, random_state=0) before the arrival curves
# existed: the default (growth) must keep drawing the same bytes. A new Polars or NumPy
# that formats or draws differently changes them too; then check the change is theirs.
PINNED = {
    "customers": "0a5f7289239d60f9c6b24c561729adbc05a4f77375501f4c4222fa4ad82639c8",
    "geolocation": "9e36e5b474dee12a7a7f52077dac8bf34bdcaab73931628ff171ad39f126916b",
    "order_items": "2f05d908a9ce67233cdb7c3f5c0a47f841b3aaa1a80bcff72e9273dc154025b3",
    "order_payments": "481bab5964e6c6de402369602560aa6fc62eeeb8d63e6feb90511cb097771fb5",
    "order_reviews": "fe062adbc0a4f36d4582e88c1597eddcfe7c51f165763df58ab75075853f6f7b",
    "orders": "2448a7e3edd4aea28b4eee98c1658b623990c9722df8f1109469e07d39e418c8",
    "products": "4e919c81b8de8573367e5c899bc5b6afcce36086c918261e46a96107003414b7",
    "sellers": "ec2d908bb521938a196b1ac1b286636aab9c7fabf031a455098e1e21f46f34e7",
    "translation": "a81f0d1f27b27e7293f761bc79e3ce8f348ee39c4b3ed3e49bde38f478586278",
}  # fmt: skip


def test_default_arrivals_draw_the_same_bytes_as_before(tmp_path: Path) -> None:
    generate(tmp_path / "a", scale=0.02, random_state=0)
    generate(tmp_path / "b", scale=0.02, random_state=0, arrivals="growth")
    got = digest(tmp_path / "a")
    assert got == digest(tmp_path / "b")
    del got[PARAMS_FILE]  # it gained "arrivals"
    assert {re.sub(r"^olist_|^product_category_name_|(_dataset)?\.csv$", "", k): v
            for k, v in got.items()} == PINNED  # fmt: skip
    # and the same truth: the intercept of the default rate before the curves existed
    assert solve_beta0(DEFAULT_REPEAT_RATE) == pytest.approx(-10.34897636834803, rel=1e-12)


def first_orders(tables: dict[str, pl.DataFrame]) -> pl.Series:
    """Each person's first purchase (any status)."""
    oc = tables["orders"].join(tables["customers"], on="customer_id")
    return oc.group_by("customer_unique_id").agg(pl.col("order_purchase_timestamp").min())[
        "order_purchase_timestamp"
    ]


def assert_even_per_day(first: pl.Series, start: datetime, end: datetime) -> None:
    """Monthly counts of ``first`` in ``[start, end)`` each within 4 sd of a constant rate
    per day (binomial counts of the share of the month's days)."""
    inside = first.filter((first >= start) & (first < end))
    counts = dict(inside.dt.strftime("%Y-%m").value_counts().iter_rows())
    first_month = datetime(start.year, start.month, 1)
    months = pl.datetime_range(first_month, end, "1mo", closed="left", eager=True)
    total = (end - start).total_seconds()
    assert len(counts) == months.len()
    for m in months:
        lo = max(m, start)
        hi = min(datetime(m.year + m.month // 12, m.month % 12 + 1, 1), end)
        share = (hi - lo).total_seconds() / total
        want = inside.len() * share
        got = counts[m.strftime("%Y-%m")]
        assert abs(got - want) <= 4 * np.sqrt(want * (1 - share)), (m, got, want)


def test_steady_arrivals_are_flat() -> None:
    tables = make_olist(scale=0.1, random_state=3, arrivals="steady")
    first = first_orders(tables)
    growth = first_orders(make_olist(scale=0.1, random_state=3))
    assert first.len() == growth.len()  # the same people, spread evenly
    collapse = datetime(2018, 9, 1)
    assert_even_per_day(first, datetime(2016, 9, 4, 21, 15, 19), collapse)
    assert (first >= collapse).sum() < 10  # the trickle of new people after the collapse


def test_cohort_arrives_within_its_quarter_then_ages() -> None:
    tables = make_olist(scale=0.1, random_state=3, arrivals="cohort")
    first = first_orders(tables)
    start = datetime.fromisoformat(f"{COHORT_MONTHS[0]}-01")
    end = datetime(2017, 4, 1)
    assert first.len() == round(96_096 * 0.1)  # nobody new: the cohort is everyone
    assert first.min() >= start and first.max() < end  # type: ignore[operator]
    assert_even_per_day(first, start, end)
    ts = tables["orders"]["order_purchase_timestamp"]
    assert ts.min() >= start and ts.max() < datetime(2018, 9, 1)  # type: ignore[operator]
    assert (ts >= datetime(2018, 6, 1)).sum() > 0  # they still buy 15 months on


@pytest.fixture(scope="module")
def kinds() -> dict[str, Simulation]:
    return {k: simulate(scale=0.1, random_state=2, repeat_rate=0.1, arrivals=k)
            for k in ("steady", "cohort")}  # fmt: skip


@pytest.mark.parametrize("kind", ["steady", "cohort"])
def test_repeat_rate_is_met_for_every_arrival_curve(kinds, kind: str) -> None:
    # growth: test_repeat_rate_is_met and test_default_repeat_rate_at_scale1
    assert within(realised_repeat_rate(kinds[kind].tables), 0.1, 0.15)
    assert not kinds[kind].process.growth  # G = 1


@pytest.mark.parametrize("kind", ["steady", "cohort"])
def test_default_repeat_rate_for_every_arrival_curve(kind: str) -> None:
    # about 280 buyers at scale 0.3: a relative sd of 6 %
    tables = make_olist(scale=0.3, random_state=2, arrivals=kind)
    assert within(realised_repeat_rate(tables), DEFAULT_REPEAT_RATE, 0.2)


@pytest.mark.parametrize("kind", ["steady", "cohort"])
def test_truth_matches_buyers_for_every_arrival_curve(kinds, kind: str) -> None:
    sim = kinds[kind]
    as_of = datetime(2018, 5, 1)
    oc = sim.tables["orders"].join(sim.tables["customers"], on="customer_id")
    elig = oc.filter(~pl.col("order_status").is_in(["canceled", "unavailable"]))
    ts = pl.col("order_purchase_timestamp")
    pop = elig.filter(ts < as_of)["customer_unique_id"].unique()
    fut = elig.filter(ts >= as_of, ts < as_of + timedelta(days=90))["customer_unique_id"]
    truth = sim.true_probability(as_of, 90)
    assert truth["customer_unique_id"].equals(pop.sort())
    p = truth["true_probability"].to_numpy()
    buyers = int(pop.is_in(fut.implode()).sum())
    assert abs(buyers - p.sum()) <= 3 * np.sqrt((p * (1 - p)).sum()), (buyers, p.sum())


def test_load_simulation_round_trips_the_arrivals(tmp_path: Path) -> None:
    generate(tmp_path, scale=0.01, random_state=4, arrivals="cohort")
    sim = load_simulation(tmp_path)
    assert sim is not None and sim.arrivals == "cohort" and not sim.process.growth
    again = make_olist(scale=0.01, random_state=4, arrivals="cohort")
    assert sim.tables["orders"].equals(again["orders"])
    # files written before the curves existed mean growth
    params = json.loads((tmp_path / PARAMS_FILE).read_text())
    del params["arrivals"]
    (tmp_path / PARAMS_FILE).write_text(json.dumps(params))
    old = load_simulation(tmp_path)
    assert old is not None and old.arrivals == "growth" and old.process.growth


@pytest.mark.parametrize("arrivals", ["Growth", "weekly", ""])
def test_unknown_arrivals_are_refused(arrivals: str) -> None:
    with pytest.raises(ValueError, match="arrivals must be one of growth, steady, cohort"):
        make_olist(scale=0.01, arrivals=arrivals)
