"""olist-fast: leak-free repeat-purchase propensity for the Olist e-commerce data.

The public names are imported on first use, so ``olist-fast`` starts fast.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

# a library logs and never prints: without a handler configured by the caller, nothing
# is shown (not even warnings, which Python would otherwise print to stderr)
logging.getLogger("olist_fast").addHandler(logging.NullHandler())

__version__ = "0.1.0"

_EXPORTS = {
    "DataHealth": "olist_fast.validation",
    "FittedModel": "olist_fast.fitting",
    "Integrity": "olist_fast.features.snapshot",
    "OlistDataError": "olist_fast.errors",
    "OlistError": "olist_fast.errors",
    "OlistUsageError": "olist_fast.errors",
    "RunResult": "olist_fast.pipeline",
    "as_tables": "olist_fast.io",
    "score_customers": "olist_fast.fitting",
    "ValidationReport": "olist_fast.validation",
    "build_customer_grain": "olist_fast.features",
    "build_order_grain": "olist_fast.features",
    "build_snapshot": "olist_fast.features",
    "build_snapshots": "olist_fast.features",
    "compact_ids": "olist_fast.features",
    "convert": "olist_fast.io",
    "data_health": "olist_fast.validation",
    "generate": "olist_fast.synth",
    "make_olist": "olist_fast.synth",
    "simulate": "olist_fast.synth",
    "load_simulation": "olist_fast.synth",
    "truth_report": "olist_fast.truth",
    "feature_ceiling": "olist_fast.truth",
    "from_transactions": "olist_fast.transactions",
    "Protocol": "olist_fast.protocol",
    "run": "olist_fast.pipeline",
    "score": "olist_fast.pipeline",
    "train": "olist_fast.pipeline",
    "RunConfig": "olist_fast.config",
    "scan_olist": "olist_fast.io",
    "validate": "olist_fast.data",
    "write_olist": "olist_fast.synth",
}

__all__ = [
    "DataHealth",
    "FittedModel",
    "Integrity",
    "OlistDataError",
    "OlistError",
    "OlistUsageError",
    "Protocol",
    "RunConfig",
    "RunResult",
    "ValidationReport",
    "__version__",
    "as_tables",
    "build_customer_grain",
    "build_order_grain",
    "build_snapshot",
    "build_snapshots",
    "compact_ids",
    "convert",
    "data_health",
    "feature_ceiling",
    "from_transactions",
    "generate",
    "load_simulation",
    "make_olist",
    "run",
    "scan_olist",
    "score",
    "score_customers",
    "simulate",
    "train",
    "truth_report",
    "validate",
    "write_olist",
]

if TYPE_CHECKING:
    from olist_fast.config import RunConfig
    from olist_fast.data import validate
    from olist_fast.errors import OlistDataError, OlistError, OlistUsageError
    from olist_fast.features import (
        build_customer_grain,
        build_order_grain,
        build_snapshot,
        build_snapshots,
        compact_ids,
    )
    from olist_fast.features.snapshot import Integrity
    from olist_fast.fitting import FittedModel, score_customers
    from olist_fast.io import as_tables, convert, scan_olist
    from olist_fast.pipeline import RunResult, run, score, train
    from olist_fast.protocol import Protocol
    from olist_fast.synth import generate, load_simulation, make_olist, simulate, write_olist
    from olist_fast.transactions import from_transactions
    from olist_fast.truth import feature_ceiling, truth_report
    from olist_fast.validation import DataHealth, ValidationReport, data_health


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'olist_fast' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, *(n for n in globals() if n.startswith("__"))})
