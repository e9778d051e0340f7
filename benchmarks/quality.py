"""Model quality on generated data, against the true outcomes and the generator's ceilings.

    python -m benchmarks.quality                       # scale 1, realistic default rate
    python -m benchmarks.quality --repeat-rates default,0.1,0.3 --seeds 20240501,0

For each dataset (generated once, cached in ``benchmarks/.cache/``): ``olist-fast run``
with ``--compare`` at ``as_of`` 2018-06-01 (the scoring window [A, A+90 d) ends before
the data's collapse, so its true outcomes exist), then, on the scoring window:

* the chosen model's scores (``user_propensity_scores.csv``),
* the naive ranking (more orders, then more recent),
* the notebook approach (``benchmarks/peers/notebook_peer.py``, its own process),
* the oracle (ranking by the generator's true probability) and the feature ceiling
  (a cross-fitted regression of the true probability on the feature table),

each with ROC AUC and top-decile lift on the true outcomes, and paired bootstrap
intervals of the chosen model minus each. The run's own backtest (labels in [A-H, A))
is reported beside it. Results: a table on stdout, JSON in
``benchmarks/results/quality.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from olist_fast.backtest import naive_ranking
from olist_fast.config import RunConfig
from olist_fast.evaluate import auc_score, bootstrap_aucs, lift_at, paired_difference
from olist_fast.features import build_snapshots
from olist_fast.io import scan_olist
from olist_fast.pipeline import run
from olist_fast.synth import generate, load_simulation
from olist_fast.truth import aligned_truth, expected_auc, feature_ceiling

HERE = Path(__file__).parent
AS_OF = datetime(2018, 6, 1)
HORIZON = 90


def dataset(scale: float, seed: int, rate: float | None) -> Path:
    name = f"quality-scale{scale:g}-seed{seed}-rate{rate if rate is not None else 'default'}"
    folder = HERE / ".cache" / name
    if not (folder / "olist_fast_generator.json").exists():
        generate(folder, scale=scale, random_state=seed, repeat_rate=rate)
    return folder


def scores_by_customer(path: Path, ids: pl.Series) -> np.ndarray:
    table = pl.read_csv(path, schema_overrides={"customer_unique_id": pl.String})
    joined = pl.DataFrame({"customer_unique_id": ids}).join(
        table.select("customer_unique_id", "propensity"), on="customer_unique_id", how="left"
    )
    if joined["propensity"].null_count():
        raise ValueError(f"{path}: {joined['propensity'].null_count()} customers not scored")
    return joined["propensity"].to_numpy()


def evaluate(scale: float, seed: int, rate: float | None, work: Path) -> dict[str, Any]:
    data = dataset(scale, seed, rate)
    result = run(RunConfig(data=data, as_of=AS_OF, horizon_days=HORIZON, out=work / "ours",
                           seed=0, compare=True))  # fmt: skip
    subprocess.run([sys.executable, str(HERE / "peers" / "notebook_peer.py"), str(data),
                    AS_OF.isoformat(), str(HORIZON), str(work / "notebook")],
                   check=True, capture_output=True)  # fmt: skip
    (snap,) = build_snapshots(scan_olist(data), [AS_OF], horizon_days=HORIZON, labels=[True])
    y = snap["bought_again"].to_numpy()
    sim = load_simulation(data)
    assert sim is not None
    truth = aligned_truth(sim, snap, AS_OF, HORIZON)
    ids = snap["customer_unique_id"]
    scores = {
        "chosen": scores_by_customer(work / "ours" / "user_propensity_scores.csv", ids),
        "notebook": scores_by_customer(work / "notebook" / "user_propensity_scores.csv", ids),
        "naive": naive_ranking(snap),
        "feature ceiling": feature_ceiling(snap, truth),
        "oracle": truth,
    }
    names = list(scores)
    boot = bootstrap_aucs(y, [scores[k] for k in names], n_boot=500, random_state=seed)
    window = {
        k: {"roc_auc": auc_score(y, s), "lift_top10": lift_at(y, s, 0.10),
            "expected_roc_auc": expected_auc(truth, s)}
        for k, s in scores.items()
    }  # fmt: skip
    diffs = [
        paired_difference(y, ("chosen", scores["chosen"]), (k, scores[k]), boot[:, [0, i]],
                          random_state=seed).as_dict()
        for i, k in enumerate(names) if k != "chosen"
    ]  # fmt: skip
    bt = result.metrics["backtest"]
    return {
        "scale": scale,
        "seed": seed,
        "repeat_rate": rate,
        "chosen": result.chosen,
        "stage_seconds": result.stages,
        "scoring_window": {
            "buyers": int(y.sum()),
            "customers": len(y),
            "expected_buyers": float(scores["chosen"].sum()),
            "true_expected_buyers": float(truth.sum()),
            "scores": window,
            "differences": diffs,
        },
        "backtest": {
            "buyers": bt["chosen"]["positives"],
            "expected_buyers": bt["chosen"]["expected_positives"],
            "chosen": {"roc_auc": bt["chosen"]["roc_auc"],
                       "lift_top10": bt["chosen"]["lift_top10"]},
            "naive": {"roc_auc": bt["baselines"]["naive"]["roc_auc"],
                      "lift_top10": bt["baselines"]["naive"]["lift_top10"]},
            "notebook_best": {"name": bt["baselines"]["notebook_best"]["name"],
                              "roc_auc": bt["baselines"]["notebook_best"]["roc_auc"],
                              "lift_top10": bt["baselines"]["notebook_best"]["lift_top10"]},
            "truth": bt["truth"],
            "differences": bt["differences"],
        },
        "selection": result.metrics["selection"],
    }  # fmt: skip


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| data | window | buyers (expected) | chosen | notebook | naive | ceiling | oracle |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        rate = "default" if r["repeat_rate"] is None else f"{r['repeat_rate']:g}"
        label = f"scale {r['scale']:g}, seed {r['seed']}, rate {rate}: {r['chosen']}"
        w, b = r["scoring_window"], r["backtest"]
        s = w["scores"]

        def cell(k: str, src: dict = s) -> str:
            return f"{src[k]['roc_auc']:.3f} / {src[k]['lift_top10']:.2f}"

        out.append(f"| {label} | true outcomes | {w['buyers']} ({w['expected_buyers']:.0f}) | "
                   f"{cell('chosen')} | {cell('notebook')} | {cell('naive')} | "
                   f"{cell('feature ceiling')} | {cell('oracle')} |")  # fmt: skip
        truth = b["truth"] or {}
        out.append(f"| | backtest | {b['buyers']} ({b['expected_buyers']:.0f}) | "
                   f"{cell('chosen', b)} | {cell('notebook_best', b)} | {cell('naive', b)} | "
                   f"{truth.get('feature_ceiling_auc', float('nan')):.3f} | "
                   f"{truth.get('oracle_auc', float('nan')):.3f} |")  # fmt: skip
    out.append("")
    out.append("Expected ROC AUC on the scoring window (no outcome noise; truth.expected_auc):")
    for r in rows:
        e = {k: v["expected_roc_auc"] for k, v in r["scoring_window"]["scores"].items()}
        out.append(f"  seed {r['seed']} rate {r['repeat_rate']}: "
                   + ", ".join(f"{k} {v:.4f}" for k, v in e.items())
                   + f"; chosen - ceiling {e['chosen'] - e['feature ceiling']:+.4f}")  # fmt: skip
    out.append("")
    out.append("Paired bootstrap (500 resamples), chosen minus each, on the true outcomes:")
    for r in rows:
        for d in r["scoring_window"]["differences"]:
            out.append(f"  seed {r['seed']} rate {r['repeat_rate']}: chosen - {d['b']}: AUC "
                       f"{d['roc_auc_diff']:+.3f} [{d['roc_auc_diff_low']:+.3f}, "
                       f"{d['roc_auc_diff_high']:+.3f}], lift@10% {d['lift_top10_diff']:+.2f} "
                       f"[{d['lift_top10_diff_low']:+.2f}, "
                       f"{d['lift_top10_diff_high']:+.2f}]")  # fmt: skip
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seeds", default="20240501")
    ap.add_argument("--repeat-rates", default="default", help="comma-separated; default = real")
    ap.add_argument("--json", type=Path, default=HERE / "results" / "quality.json")
    args = ap.parse_args(argv)
    rates = [None if r == "default" else float(r) for r in args.repeat_rates.split(",")]
    rows = []
    import tempfile

    for seed in (int(s) for s in args.seeds.split(",")):
        for rate in rates:
            with tempfile.TemporaryDirectory() as tmp:
                rows.append(evaluate(args.scale, seed, rate, Path(tmp)))
            print(table(rows[-1:]), flush=True)
    print(table(rows))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    main()
