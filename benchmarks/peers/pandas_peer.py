"""An independent pandas 3 implementation of the feature contract, written plainly.

For checking olist_fast and as a speed yardstick: pyarrow CSV engine where it parses
the files correctly (the reviews need the C engine for multi-line fields),
categorical keys, vectorised group-bys. Run as a command it reads a folder, builds
one snapshot and writes Parquet:

    python benchmarks/peers/pandas_peer.py DATA_DIR AS_OF OUT.parquet [HORIZON_DAYS]
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import pandas as pd

FMT = "%Y-%m-%d %H:%M:%S"
DAY_US = 86_400 * 1_000_000


def _read(data: Path, stem: str, cols: list[str], dates: tuple[str, ...] = (), engine="pyarrow"):
    path = data / f"{stem}.parquet"
    if path.exists():
        df = pd.read_parquet(path, columns=cols)
    else:
        df = pd.read_csv(
            data / f"{stem}.csv",
            usecols=cols,
            engine=engine,
            dtype={c: "string[pyarrow]" for c in cols if c not in dates},
            keep_default_na=False,
            na_values=[""],
        )
    for c in dates:
        if df[c].dtype != "datetime64[us]":
            df[c] = pd.to_datetime(df[c], format=FMT).astype("datetime64[us]")
    return df


def read_inputs(data: str | Path) -> dict[str, pd.DataFrame]:
    data = Path(data)
    orders = _read(
        data,
        "olist_orders_dataset",
        ["order_id", "customer_id", "order_status", "order_purchase_timestamp",
         "order_delivered_customer_date", "order_estimated_delivery_date"],
        ("order_purchase_timestamp", "order_delivered_customer_date",
         "order_estimated_delivery_date"),
    )  # fmt: skip
    customers = _read(
        data, "olist_customers_dataset", ["customer_id", "customer_unique_id", "customer_state"]
    )
    items = _read(
        data,
        "olist_order_items_dataset",
        ["order_id", "product_id", "seller_id", "price", "freight_value"],
    )
    items["price"] = items["price"].astype("float64")
    items["freight_value"] = items["freight_value"].astype("float64")
    payments = _read(
        data,
        "olist_order_payments_dataset",
        ["order_id", "payment_type", "payment_installments", "payment_value"],
    )
    payments["payment_value"] = payments["payment_value"].astype("float64")
    payments["payment_installments"] = payments["payment_installments"].astype("float64")
    reviews = _read(
        data,
        "olist_order_reviews_dataset",
        ["order_id", "review_score", "review_comment_message", "review_answer_timestamp"],
        ("review_answer_timestamp",),
        engine="c",  # pyarrow's reader rejects the multi-line quoted comments
    )
    reviews["review_score"] = reviews["review_score"].astype("float64")
    products = _read(data, "olist_products_dataset", ["product_id", "product_category_name"])
    return {"orders": orders, "customers": customers, "items": items, "payments": payments,
            "reviews": reviews, "products": products}  # fmt: skip


def _days(td: pd.Series) -> pd.Series:
    return td.astype("int64") / DAY_US


def snapshot(t: dict[str, pd.DataFrame], as_of: datetime, horizon_days: int = 90):
    as_of_ts = pd.Timestamp(as_of)
    o = t["orders"]
    elig = o[~o["order_status"].isin(["canceled", "unavailable"]).fillna(False)
             & o["order_purchase_timestamp"].notna()]  # fmt: skip
    elig = elig.merge(t["customers"], on="customer_id", how="inner")
    elig["customer_unique_id"] = elig["customer_unique_id"].astype("category")
    hist = elig[elig["order_purchase_timestamp"] < as_of_ts].copy()
    key = "customer_unique_id"
    g = hist.groupby(key, observed=True)
    ts = hist["order_purchase_timestamp"]
    out = pd.DataFrame(
        {
            "recency_days": _days(as_of_ts - g["order_purchase_timestamp"].max()),
            "tenure_days": _days(as_of_ts - g["order_purchase_timestamp"].min()),
            "n_orders": g.size().astype("int64"),
            "n_purchase_days": ts.dt.normalize()
            .groupby(hist[key], observed=True)
            .nunique()
            .astype("int64"),
        }
    )
    oid_to_cust = hist[["order_id", key]]
    # payments
    p = t["payments"].merge(oid_to_cust, on="order_id", how="inner")
    pg = p.groupby(key, observed=True)
    out["monetary"] = pg["payment_value"].sum().reindex(out.index).fillna(0.0)
    out["avg_order_value"] = out["monetary"] / out["n_orders"]
    # items
    it = t["items"].merge(oid_to_cust, on="order_id", how="inner")
    it = it.merge(t["products"], on="product_id", how="left")
    ig = it.groupby(key, observed=True)
    out["n_items"] = ig.size().reindex(out.index).fillna(0).astype("int64")
    out["avg_item_price"] = ig["price"].mean().reindex(out.index)
    price_sum = ig["price"].sum().reindex(out.index)
    ratio = ig["freight_value"].sum().reindex(out.index) / price_sum
    out["freight_ratio"] = ratio.where(price_sum > 0)
    out["n_categories"] = ig["product_category_name"].nunique().reindex(out.index).fillna(0)
    out["n_categories"] = out["n_categories"].astype("int64")
    out["n_sellers"] = ig["seller_id"].nunique().reindex(out.index).fillna(0).astype("int64")
    # reviews
    r = t["reviews"]
    r = r[r["review_answer_timestamp"] < as_of_ts].merge(oid_to_cust, on="order_id")
    msg = r["review_comment_message"]
    r["commented"] = (msg.notna() & (msg.fillna("").str.strip() != "")).astype("float64")
    rg = r.groupby(key, observed=True)
    out["n_reviews"] = rg.size().reindex(out.index).fillna(0).astype("int64")
    out["avg_review_score"] = rg["review_score"].mean().reindex(out.index)
    out["min_review_score"] = rg["review_score"].min().reindex(out.index).astype("Int64")
    out["share_reviews_with_comment"] = rg["commented"].mean().reindex(out.index)
    # preferred payment type, compared in cents, ties alphabetical
    p["cents"] = (p["payment_value"] * 100).round().astype("int64")
    by_type = p.groupby([key, "payment_type"], observed=True)["cents"].sum().reset_index()
    by_type = by_type.sort_values([key, "cents", "payment_type"], ascending=[True, False, True])
    pref = by_type.drop_duplicates(key).set_index(key)["payment_type"]
    out["preferred_payment_type"] = pref.reindex(out.index)
    out["avg_installments"] = pg["payment_installments"].mean().reindex(out.index)
    voucher = (p["payment_type"] == "voucher").groupby(p[key], observed=True).any()
    out["uses_voucher"] = voucher.reindex(out.index).fillna(False).astype("int64")
    # delivery
    d = hist[hist["order_delivered_customer_date"].notna()
             & (hist["order_delivered_customer_date"] < as_of_ts)].copy()  # fmt: skip
    d["delivery"] = _days(d["order_delivered_customer_date"] - d["order_purchase_timestamp"])
    d["delay"] = _days(d["order_delivered_customer_date"] - d["order_estimated_delivery_date"])
    d["late"] = (d["order_delivered_customer_date"] > d["order_estimated_delivery_date"]).astype(
        "float64"
    )
    dg = d.groupby(key, observed=True)
    out["n_delivered"] = dg.size().reindex(out.index).fillna(0).astype("int64")
    out["avg_delivery_days"] = dg["delivery"].mean().reindex(out.index)
    out["avg_delay_days"] = dg["delay"].mean().reindex(out.index)
    out["late_share"] = dg["late"].mean().reindex(out.index)
    last = hist.sort_values(["order_purchase_timestamp", "order_id"]).drop_duplicates(
        key, keep="last"
    )
    out["customer_state"] = last.set_index(key)["customer_state"].reindex(out.index)
    # labels
    end = as_of_ts + pd.Timedelta(days=horizon_days)
    if o["order_purchase_timestamp"].max() >= end:
        w = elig[(elig["order_purchase_timestamp"] >= as_of_ts)
                 & (elig["order_purchase_timestamp"] < end)]  # fmt: skip
        spend = w[["order_id", key]].merge(t["payments"], on="order_id", how="left")
        per = spend.groupby(key, observed=True)["payment_value"].sum(min_count=0)
        bought = w.groupby(key, observed=True).size()
        out["bought_again"] = (bought.reindex(out.index).fillna(0) > 0).astype("int64")
        out["future_spend"] = per.reindex(out.index).fillna(0.0)
    out.index = out.index.astype("str")
    out = out.sort_index().reset_index(names="customer_unique_id")
    return out


def main(argv: list[str]) -> None:
    data, as_of, out = argv[0], datetime.fromisoformat(argv[1]), argv[2]
    horizon = int(argv[3]) if len(argv) > 3 else 90
    df = snapshot(read_inputs(data), as_of, horizon)
    df.to_parquet(out, index=False)


if __name__ == "__main__":
    main(sys.argv[1:])
