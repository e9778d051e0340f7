"""Run configuration: frozen, keyword-only, validated on construction."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from olist_fast.errors import OlistUsageError
from olist_fast.models import compared_setups, extra_setups
from olist_fast.parallel import default_n_jobs
from olist_fast.protocol import Protocol
from olist_fast.timestamps import as_datetime


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Everything that decides what ``run`` computes.

    ``as_of`` None means the end of the healthy period found by ``validate``'s rule.
    ``folds`` and ``train_snapshots`` shape the protocol (:mod:`olist_fast.protocol`);
    ``compare`` adds the comparisons a user runs once, not every night: the other setups,
    the notebook approach, the unstacked check and, on generated data, the ceilings.
    ``strict`` turns the data-integrity warnings (duplicate keys, orphan orders) into
    errors. ``n_jobs`` is the threads of the model stage (None: the cores available).
    """

    data: Path | str | None = None
    as_of: datetime | None = None
    horizon_days: int = 90
    out: Path | str = Path("outputs")
    seed: int = 0
    n_boot: int = 200
    models: tuple[str, ...] | None = None
    folds: int = 3
    train_snapshots: int = 2
    compare: bool = False
    strict: bool = False
    n_jobs: int | None = None

    def __post_init__(self) -> None:
        if (
            self.data is not None
            and not isinstance(self.data, Path)
            and "://" not in str(self.data)
        ):
            object.__setattr__(self, "data", Path(self.data))
        if not isinstance(self.out, Path) and "://" not in str(self.out):
            object.__setattr__(self, "out", Path(self.out))
        if self.as_of is not None:
            object.__setattr__(self, "as_of", as_datetime(self.as_of))
        if self.models is not None:
            object.__setattr__(self, "models", tuple(self.models))
        if self.n_jobs is not None and self.n_jobs < 1:
            raise OlistUsageError(f"n_jobs must be >= 1, got {self.n_jobs}")
        if self.horizon_days < 1:
            raise OlistUsageError(f"horizon_days must be >= 1, got {self.horizon_days}")
        if not 0 <= self.folds <= 12:
            raise OlistUsageError(f"folds must be between 0 and 12, got {self.folds}")
        if not 1 <= self.train_snapshots <= 12:
            raise OlistUsageError(
                f"train_snapshots must be between 1 and 12, got {self.train_snapshots}"
            )
        if self.n_boot < 10:
            raise OlistUsageError(f"n_boot must be >= 10, got {self.n_boot}")
        if self.models is not None:
            known = {c.name for c in compared_setups() + extra_setups()}
            bad = [m for m in self.models if m not in known]
            if bad:
                raise OlistUsageError(
                    f"unknown model setup {bad[0]!r}; expected one of {', '.join(sorted(known))}"
                )

    @classmethod
    def merged(cls, config: RunConfig | None, overrides: dict[str, Any]) -> RunConfig:
        """``config`` with ``overrides`` applied (validated again); unknown names refused."""
        known = {f.name for f in fields(cls)}
        bad = sorted(set(overrides) - known)
        if bad:
            raise OlistUsageError(
                f"unknown setting {bad[0]!r}; expected one of {', '.join(sorted(known))}"
            )
        return replace(config, **overrides) if config is not None else cls(**overrides)

    @property
    def threads(self) -> int:
        return self.n_jobs or default_n_jobs()

    def protocol(self, as_of: datetime) -> Protocol:
        """The snapshot dates and their roles for a resolved ``as_of``."""
        return Protocol(
            as_of=as_of,
            horizon_days=self.horizon_days,
            folds=self.folds,
            train_snapshots=self.train_snapshots,
        )

    def as_json(self) -> dict:
        d = asdict(self)
        d["data"] = str(self.data) if self.data else None
        d["out"] = str(self.out)
        d["as_of"] = self.as_of.isoformat() if self.as_of else None
        d["models"] = list(self.models) if self.models else None
        return d
