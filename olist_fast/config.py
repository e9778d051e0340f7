"""Run configuration: frozen, keyword-only, validated on construction."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from olist_fast.protocol import Protocol


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Everything that decides what ``run`` computes.

    ``as_of`` None means the end of the healthy period found by ``validate``'s rule.
    ``folds`` and ``train_snapshots`` shape the protocol (:mod:`olist_fast.protocol`);
    ``compare`` adds the comparisons a user runs once, not every night: the other setups,
    the notebook approach, the unstacked check and, on generated data, the ceilings.
    """

    data: Path | None = None
    as_of: datetime | None = None
    horizon_days: int = 90
    out: Path = Path("outputs")
    seed: int = 0
    n_boot: int = 200
    models: tuple[str, ...] | None = None
    folds: int = 3
    train_snapshots: int = 2
    compare: bool = False

    def __post_init__(self) -> None:
        if self.horizon_days < 1:
            raise ValueError(f"horizon_days must be >= 1, got {self.horizon_days}")
        if not 0 <= self.folds <= 12:
            raise ValueError(f"folds must be between 0 and 12, got {self.folds}")
        if not 1 <= self.train_snapshots <= 12:
            raise ValueError(
                f"train_snapshots must be between 1 and 12, got {self.train_snapshots}"
            )
        if self.n_boot < 10:
            raise ValueError(f"n_boot must be >= 10, got {self.n_boot}")
        if self.as_of is not None and not isinstance(self.as_of, datetime):
            raise TypeError(f"as_of must be a datetime, got {type(self.as_of).__name__}")
        if self.models is not None:
            from olist_fast.models import candidates, extra_candidates

            known = {c.name for c in candidates() + extra_candidates()}
            bad = [m for m in self.models if m not in known]
            if bad:
                raise ValueError(
                    f"unknown model setup {bad[0]!r}; expected one of {', '.join(sorted(known))}"
                )

    def protocol(self, as_of: datetime) -> Protocol:
        """The snapshot dates and their roles for a resolved ``as_of``."""
        from olist_fast.protocol import Protocol

        return Protocol(as_of=as_of, horizon_days=self.horizon_days, folds=self.folds,
                        train_snapshots=self.train_snapshots)  # fmt: skip

    def as_json(self) -> dict:
        d = asdict(self)
        d["data"] = str(self.data) if self.data else None
        d["out"] = str(self.out)
        d["as_of"] = self.as_of.isoformat() if self.as_of else None
        d["models"] = list(self.models) if self.models else None
        return d
