"""Run configuration: frozen, keyword-only, validated on construction."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Everything that decides what ``run`` computes.

    ``as_of`` None means the end of the healthy period found by ``validate``'s rule.
    """

    data: Path | None = None
    as_of: datetime | None = None
    horizon_days: int = 90
    out: Path = Path("outputs")
    seed: int = 0
    n_boot: int = 200
    models: tuple[str, ...] | None = None
    compare_notebook: bool = True

    def __post_init__(self) -> None:
        if self.horizon_days < 1:
            raise ValueError(f"horizon_days must be >= 1, got {self.horizon_days}")
        if self.n_boot < 10:
            raise ValueError(f"n_boot must be >= 10, got {self.n_boot}")
        if self.as_of is not None and not isinstance(self.as_of, datetime):
            raise TypeError(f"as_of must be a datetime, got {type(self.as_of).__name__}")
        if self.models is not None:
            from olist_fast.models import candidates

            known = {c.name for c in candidates()}
            bad = [m for m in self.models if m not in known]
            if bad:
                raise ValueError(
                    f"unknown model setup {bad[0]!r}; expected one of {', '.join(sorted(known))}"
                )

    def dates(self, as_of: datetime) -> dict[str, datetime]:
        """The snapshots of the protocol: selection, backtest train/test, final score."""
        h = timedelta(days=self.horizon_days)
        return {
            "select": as_of - 3 * h,
            "train": as_of - 2 * h,
            "test": as_of - h,
            "score": as_of,
        }

    def as_json(self) -> dict:
        d = asdict(self)
        d["data"] = str(self.data) if self.data else None
        d["out"] = str(self.out)
        d["as_of"] = self.as_of.isoformat() if self.as_of else None
        d["models"] = list(self.models) if self.models else None
        return d
