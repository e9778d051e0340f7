"""olist-fast: leak-free repeat-purchase propensity for the Olist e-commerce data.

The public names are imported on first use, so ``olist-fast`` starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "DataHealth": "olist_fast.validate",
    "OlistDataError": "olist_fast.io",
    "ValidationReport": "olist_fast.validate",
    "build_customer_grain": "olist_fast.features",
    "build_order_grain": "olist_fast.features",
    "build_snapshot": "olist_fast.features",
    "build_snapshots": "olist_fast.features",
    "compact_ids": "olist_fast.features",
    "convert": "olist_fast.io",
    "data_health": "olist_fast.validate",
    "generate": "olist_fast.synth",
    "make_olist": "olist_fast.synth",
    "simulate": "olist_fast.synth",
    "load_simulation": "olist_fast.synth",
    "truth_report": "olist_fast.truth",
    "feature_ceiling": "olist_fast.truth",
    "Protocol": "olist_fast.protocol",
    "run": "olist_fast.pipeline",
    "score": "olist_fast.pipeline",
    "train": "olist_fast.pipeline",
    "RunConfig": "olist_fast.config",
    "scan_olist": "olist_fast.io",
    "validate": "olist_fast.validate",
    "write_olist": "olist_fast.synth",
}

__all__ = [
    "DataHealth",
    "OlistDataError",
    "Protocol",
    "RunConfig",
    "ValidationReport",
    "__version__",
    "build_customer_grain",
    "build_order_grain",
    "build_snapshot",
    "build_snapshots",
    "compact_ids",
    "convert",
    "data_health",
    "feature_ceiling",
    "generate",
    "load_simulation",
    "make_olist",
    "run",
    "scan_olist",
    "score",
    "simulate",
    "train",
    "truth_report",
    "validate",
    "write_olist",
]

if TYPE_CHECKING:
    from olist_fast.config import RunConfig
    from olist_fast.features import (
        build_customer_grain,
        build_order_grain,
        build_snapshot,
        build_snapshots,
        compact_ids,
    )
    from olist_fast.io import OlistDataError, convert, scan_olist
    from olist_fast.pipeline import run, score, train
    from olist_fast.protocol import Protocol
    from olist_fast.synth import generate, load_simulation, make_olist, simulate, write_olist
    from olist_fast.truth import feature_ceiling, truth_report
    from olist_fast.validate import DataHealth, ValidationReport, data_health, validate


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'olist_fast' has no attribute {name!r}")
