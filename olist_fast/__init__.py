"""olist-fast: leak-free repeat-purchase propensity for the Olist e-commerce data."""

from olist_fast.features import (
    build_customer_grain,
    build_order_grain,
    build_snapshot,
    build_snapshots,
)
from olist_fast.io import OlistDataError, convert, scan_olist
from olist_fast.synth import generate, make_olist, write_olist
from olist_fast.validate import DataHealth, ValidationReport, data_health, validate

__version__ = "0.1.0"

__all__ = [
    "DataHealth",
    "OlistDataError",
    "ValidationReport",
    "__version__",
    "build_customer_grain",
    "build_order_grain",
    "build_snapshot",
    "build_snapshots",
    "convert",
    "data_health",
    "generate",
    "make_olist",
    "scan_olist",
    "validate",
    "write_olist",
]
