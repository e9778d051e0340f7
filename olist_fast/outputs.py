"""What ``run`` writes: scores, metrics, the figure, the model folder, the manifest."""

from __future__ import annotations

import glob
import hashlib
import json
import math
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from olist_fast.backtest import Backtest, Curves
from olist_fast.calibration import Drift
from olist_fast.config import RunConfig
from olist_fast.data import Source
from olist_fast.fitting import FittedModel, package_versions
from olist_fast.io import Location, StorageOptions, atomic_dir, atomic_path, is_url
from olist_fast.models import Imbalance, inference_steps
from olist_fast.protocol import Protocol, Snapshots
from olist_fast.schema import PLAN_TABLES, TABLES
from olist_fast.selection import Selection

if TYPE_CHECKING:
    from olist_fast.pipeline import Timer


def feature_importance(model: FittedModel) -> dict[str, float]:
    """Model-native importances (trees) or absolute standardised coefficients (linear)."""
    final = inference_steps(model.classifier)[-1][1]
    names = model.encoding.names
    if hasattr(final, "named_estimators_"):  # the blend: its forest's importances
        final = final.named_estimators_["random_forest"]
    if hasattr(final, "feature_importances_"):
        values = np.asarray(final.feature_importances_, dtype=float)
    elif hasattr(final, "coef_"):
        values = np.abs(np.asarray(final.coef_, dtype=float)).ravel()
    else:
        return {}
    return dict(zip(names, values.tolist(), strict=True))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = package_versions()
    for n in ("matplotlib", "typer"):
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


def _write_json(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default, allow_nan=False))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer | np.floating):
        return o.item()
    if isinstance(o, datetime):
        return o.isoformat()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _finite(obj: Any) -> Any:
    """NaN and inf become null, so the JSON is strict."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def run_metrics(
    protocol: Protocol,
    snaps: Snapshots,
    selection: Selection,
    bt: Backtest,
    drift: Drift | None,
) -> dict:
    """``metrics.json``: the protocol, the fold table and choice, the backtest."""
    return _finite(
        {
            "as_of": protocol.as_of.isoformat(),
            "horizon_days": protocol.horizon_days,
            "protocol": protocol.as_dict(),
            "training": {
                "final": Imbalance.of(
                    np.concatenate([snaps.labels(j) for j in protocol.train_indices(0)])
                ).as_dict()
            },
            "chosen_setup": selection.chosen.name,
            "final_calibration_drift": drift.as_dict() if drift else None,
            "selection": selection.as_dict(),
            "backtest": bt.as_dict(),
        }
    )


def write_outputs(
    config: RunConfig,
    out: Path,
    source: Source,
    snaps: Snapshots,
    final: FittedModel,
    scores: pl.DataFrame,
    metrics: dict,
    bt: Backtest,
    timer: Timer,
) -> dict[str, Path]:
    """Scores, metrics, plots, the model folder and the manifest, each written atomically."""
    from olist_fast.report import plot_run

    files = {
        "scores": out / "user_propensity_scores.csv",
        "metrics": out / "metrics.json",
        "plots": out / "model_plots.png",
        "manifest": out / "run_manifest.json",
        "model": out / "model",
    }
    with atomic_path(files["scores"]) as tmp:
        scores.write_csv(tmp)
    _write_json(metrics, files["metrics"])
    with atomic_path(files["plots"]) as tmp:
        plot_run(
            _curves(bt.curves),
            metrics["backtest"],
            feature_importance(final),
            tmp,
            title=f"olist-fast: {final.setup}, as_of {source.as_of:%Y-%m-%d}, "
            f"horizon {snaps.protocol.horizon_days} d",
        )
    with atomic_dir(files["model"]) as tmp_dir:
        model_files = [files["model"] / p.name for p in final.save(tmp_dir)]
    labelled = range(1, len(snaps.frames))
    manifest = {
        "config": config.as_json(),
        "resolved": {
            "data": str(source.location) if source.location else "in-memory tables",
            "as_of": source.as_of.isoformat(),
        },
        "seed": config.seed,
        "versions": _versions(),
        "inputs": input_fingerprints(source),
        "rows": {
            snaps.protocol.date(j).date().isoformat(): snaps.rows(j)
            for j in range(len(snaps.frames))
        },
        "positives": {
            snaps.protocol.date(j).date().isoformat(): int(snaps.labels(j).sum()) for j in labelled
        },
        "stage_seconds": timer.stages,
        "model_files": [str(p) for p in model_files],
    }
    _write_json(_finite(manifest), files["manifest"])
    return files


def input_fingerprints(source: Source) -> dict[str, dict[str, Any]]:
    """Per table the plan read: its file and SHA-256 (local files), its URL (object
    stores: not downloaded twice to hash), or its row count (frames in memory)."""
    out: dict[str, dict[str, Any]] = {}
    for name in PLAN_TABLES:
        spec = TABLES[name]
        if source.location is None:
            rows = source.tables[name].select(pl.len()).collect().item()
            out[spec.stem] = {"file": None, "rows": rows}
            continue
        where = source.files.get(name)
        if where is None:
            continue
        if is_url(where):
            out[spec.stem] = {"file": str(where), "sha256": None}
        elif "*" in str(where):  # a bucketed layout's part files: one hash over them all
            parts = sorted(Path(p) for p in glob.glob(str(where)))
            h = hashlib.sha256()
            for part in parts:
                h.update(f"{part.relative_to(part.parents[2])}:{_sha256(part)}\n".encode())
            out[spec.stem] = {"file": str(where), "sha256": h.hexdigest()}
        else:
            out[spec.stem] = {"file": str(where), "sha256": _sha256(Path(where))}
    return out


def _curves(c: Curves) -> dict[str, Any]:
    out = {"y": c.y, "chosen": c.chosen, "naive": c.naive, "notebook": c.notebook}
    return {**out, "points": c.points} if c.points is not None else out


def write_scores(table: pl.DataFrame, out: Location, storage_options: StorageOptions) -> str | Path:
    """``user_propensity_scores.csv`` in ``out``: renamed into place locally; on an object
    store one PUT, which the store makes visible only once complete."""
    if is_url(out):
        url = f"{str(out).rstrip('/')}/user_propensity_scores.csv"
        table.write_csv(url, storage_options=storage_options)
        return url
    target = Path(out) / "user_propensity_scores.csv"
    with atomic_path(target) as tmp:
        table.write_csv(tmp)
    return target
