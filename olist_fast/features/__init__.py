"""Features as of a date: the order grain, the customer grain, labels, and snapshots."""

from olist_fast.features.customers import CATEGORICAL, FEATURES, build_customer_grain
from olist_fast.features.keys import compact_ids
from olist_fast.features.labels import LABELS, build_labels
from olist_fast.features.orders import INPUT_COLUMNS, build_order_grain
from olist_fast.features.snapshot import build_snapshot, build_snapshots

__all__ = [
    "CATEGORICAL",
    "FEATURES",
    "INPUT_COLUMNS",
    "LABELS",
    "build_customer_grain",
    "build_labels",
    "build_order_grain",
    "build_snapshot",
    "build_snapshots",
    "compact_ids",
]
