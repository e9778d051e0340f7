"""The nine Olist tables, assembled from the generator's people, products and orders.

Each table draws its own details (items, payments, reviews, product sizes, geolocation
points) from the generator's random stream in turn, so the order of the calls in
``_assemble`` is part of the data.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from olist_fast.synth._generator import _count, _Generator, _hex_ids, _masked, _midnight, _pick
from olist_fast.synth._reference import (
    BAD_MESSAGES,
    CATEGORY_TRANSLATION,
    CITIES,
    CITY_OFFSET,
    DAY,
    GOOD_MESSAGES,
    MESSAGE_P,
    PAYMENT_TYPES,
    REAL_GEO_PREFIXES,
    REAL_GEO_ROWS,
    STATE_NAMES,
    STATES,
    STATUS,
    TITLES,
)


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
