"""The time protocol that ``run`` and ``train`` share: which snapshots train, select, test
and score.

For an ``as_of`` A and horizon H, snapshot j is the feature table at d_j = A - j*H with its
labels in [d_j, d_j + H): label windows never overlap, and the labels of snapshot j end
exactly where snapshot j-1 begins. Nothing at or after A is read.

* **score**: snapshot 0 (A itself, no labels).
* **split with test snapshot j**: trained on the ``train_snapshots`` snapshots before it,
  j+1 .. j+T, stacked (a customer may appear in several); all their labels end by d_j.
* **selection folds** (rolling origin): the splits with test snapshot 2 .. K+1. The
  out-of-time test window (snapshot 1, labels in [A-H, A)) is in none of them.
* **backtest**: the split with test snapshot 1.
* **final fit**: the split with "test" snapshot 0: trained on snapshots 1 .. T, it scores
  every customer at A.
* **calibration**: Platt on cross-fitted scores of the split's most recent training
  snapshot, moved to the level of the scored window: the mean of the buying-rate trend
  (over the training snapshots and the ``drift_windows`` windows older than them) and
  the latest training snapshot's rate (:class:`olist_fast.fitting.Drift`).

A split is usable when its test snapshot, its stacked training rows and its calibration
snapshot each hold at least ``MIN_BUYERS`` buyers and as many non-buyers. Unusable folds
are dropped (the caller says so); an unusable backtest or final split is a one-line
:class:`OlistDataError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
from polars._typing import EngineType

from olist_fast.data import Source, Tables, named_read_errors, read_source
from olist_fast.encode import Encoding, EncodingStats
from olist_fast.errors import OlistUsageError
from olist_fast.features import build_snapshots
from olist_fast.features.labels import latest_purchase
from olist_fast.io import OlistDataError, StorageOptions
from olist_fast.models import Imbalance
from olist_fast.sampling import (
    FOLD_SEED_OFFSET,
    LABEL,
    Compacted,
    Compactor,
    SpillFolder,
    content_order,
    sampling_uniforms,
)
from olist_fast.sampling import (  # re-exported: where the model stage found them
    ROW_HASH_SEED as ROW_HASH_SEED,
)

MIN_BUYERS = 10


@dataclass(frozen=True, kw_only=True)
class Protocol:
    """The snapshot dates of one job and the roles they play."""

    as_of: datetime
    horizon_days: int = 90
    folds: int = 3
    train_snapshots: int = 2
    drift_windows: int = 3
    """Older windows the calibration's rate trend is measured on (beyond the training
    snapshots), the same number for the backtest and the final model."""

    def __post_init__(self) -> None:
        if self.horizon_days < 1:
            raise OlistUsageError(f"horizon_days must be >= 1, got {self.horizon_days}")
        if self.folds < 0:
            raise OlistUsageError(f"folds must be >= 0, got {self.folds}")
        if self.train_snapshots < 1:
            raise OlistUsageError(f"train_snapshots must be >= 1, got {self.train_snapshots}")

    @property
    def depth(self) -> int:
        """The oldest snapshot the protocol reads: the last training snapshot of the last
        fold, or the backtest's oldest drift window, whichever is older."""
        return max(
            1 + self.folds + self.train_snapshots, 1 + self.train_snapshots + self.drift_windows
        )

    def drift_indices(self, target: int) -> list[int]:
        """The windows the rate trend of the model for ``target`` is measured on."""
        start = target + 1 + self.train_snapshots
        return list(range(start, start + self.drift_windows))

    def date(self, j: int) -> datetime:
        return self.as_of - j * timedelta(days=self.horizon_days)

    def dates(self) -> list[datetime]:
        return [self.date(j) for j in range(self.depth + 1)]

    def train_indices(self, test: int) -> list[int]:
        return list(range(test + 1, test + 1 + self.train_snapshots))

    def fold_tests(self) -> list[int]:
        """Test snapshots of the selection folds, most recent first."""
        return list(range(2, 2 + self.folds))

    def as_dict(self) -> dict:
        return {
            "as_of": self.as_of.isoformat(),
            "horizon_days": self.horizon_days,
            "folds": self.folds,
            "train_snapshots": self.train_snapshots,
            "drift_windows": self.drift_windows,
            "snapshots": {str(j): self.date(j).isoformat() for j in range(self.depth + 1)},
        }


@dataclass(frozen=True)
class Snapshots:
    """The snapshots of a protocol, index j at ``protocol.date(j)``; 0 has no labels."""

    protocol: Protocol
    frames: Sequence[pl.DataFrame]
    features_off: frozenset[str] = frozenset()
    """Features the inputs cannot feed (already warned by the reader)."""

    compacted: Mapping[int, Compacted] = field(default_factory=dict)
    """Labelled snapshots kept compact (:class:`olist_fast.sampling.Compacted`): their
    ``frames`` entry holds every buyer and the non-buyers a sample can draw; their
    counts, labels and every row (:meth:`lazy`) come from here."""

    def __getitem__(self, j: int) -> pl.DataFrame:
        """Snapshot j's rows in memory: all of them, or for a compact one the rows the
        samples draw from (:meth:`whole` reads every row)."""
        return self.frames[j]

    def scored_and_counted(self) -> Snapshots:
        """These snapshots once the model is chosen, fitted and backtested: snapshot 0 as
        it is (it is scored), the labelled ones reduced to what the outputs report, their
        row counts and labels (:meth:`rows`, :meth:`labels`). A compact snapshot's kept
        rows and an in-memory snapshot's features are let go: at scale they are much of
        what the run holds, and the score and write stages never read them
        (docs/performance.md).
        After it, a labelled snapshot's rows (``self[j]``, :meth:`whole`, :meth:`lazy`,
        :meth:`uniforms`) are empty or gone: only :meth:`rows` and :meth:`labels`
        answer for it."""
        compacted = {
            j: c if j == 0 else replace(c, frame=c.frame.clear(), uniforms={})
            for j, c in self.compacted.items()
        }
        frames = [
            f if j == 0 else f.clear() if j in compacted else f.select(LABEL)
            for j, f in enumerate(self.frames)
        ]
        return replace(self, frames=frames, compacted=compacted)

    def labels(self, j: int) -> np.ndarray:
        """Every row's label."""
        if j in self.compacted:
            return self.compacted[j].labels.astype(np.int64)
        return labels_of(self.frames[j])

    def rows(self, j: int) -> int:
        """How many customers snapshot j holds."""
        return self.compacted[j].rows if j in self.compacted else self.frames[j].height

    def lazy(self, j: int) -> pl.LazyFrame:
        """Every row of snapshot j, lazily (a compact one read back from its spill)."""
        return self.compacted[j].lazy() if j in self.compacted else self.frames[j].lazy()

    def whole(self, j: int) -> pl.DataFrame:
        """Every row of snapshot j in memory."""
        c = self.compacted.get(j)
        if c is None or c.complete:
            return self.frames[j]
        return c.lazy().collect()

    def uniforms(self, j: int, stream: str, seed: int) -> np.ndarray:
        """The sampling uniforms of the rows of ``self[j]`` for ``stream`` ("train", or
        "fold": the run's seed plus ``FOLD_SEED_OFFSET``) under the run's ``seed``: a
        compact snapshot's were computed as its rows came in."""
        c = self.compacted.get(j)
        if c is not None and c.seed == seed and stream in c.uniforms:
            return c.uniforms[stream]
        offset = FOLD_SEED_OFFSET if stream == "fold" else 0
        return sampling_uniforms(self.frames[j], seed + offset)

    def encoding_stats(self, j: int) -> EncodingStats:
        """The encoding's sums over every row of snapshot j."""
        c = self.compacted.get(j)
        if c is not None and c.stats is not None:
            return c.stats
        return EncodingStats.of(self.lazy(j))

    def sample_below(self, j: int, rate: float, stream: str, seed: int) -> None:
        """Check that a sample of compact snapshot j at ``rate`` with ``seed`` draws only
        rows it kept (``stream``: "train" or "fold"). Under the seed it was kept for it
        always does, by a wide margin (the keep counts of :mod:`olist_fast.sampling`
        against the samples' sizes: a test checks them); another seed is a usage error."""
        c = self.compacted.get(j)
        if c is None:
            return
        if seed != c.seed:
            raise OlistUsageError(
                f"snapshot {j} was kept compact for seed {c.seed}, not {seed}: sample it "
                "with that seed, or read the snapshots whole (seed=None)"
            )
        limit = c.train_below if stream == "train" else c.fold_below
        if rate > limit:
            raise RuntimeError(
                f"snapshot {j}: a {stream} sample at rate {rate:.3g} needs rows the compact "
                f"snapshot did not keep (kept up to {limit:.3g})"
            )


def build_protocol_snapshots(
    tables: Mapping[str, pl.LazyFrame],
    protocol: Protocol,
    *,
    score: bool = True,
    engine: EngineType = "auto",
    strict: bool = False,
) -> Snapshots:
    """Every snapshot of the protocol in one ``collect_all`` (labels forced on for the
    past ones: their windows end by A, which the caller treats as "now"). ``score=False``
    leaves snapshot 0 empty (``train`` does not score)."""
    dates = protocol.dates()
    wanted = dates if score else dates[1:]
    labels = [j > 0 for j in range(len(dates))][len(dates) - len(wanted) :]
    frames = build_snapshots(
        tables,
        wanted,
        horizon_days=protocol.horizon_days,
        labels=labels,
        engine=engine,
        strict=strict,
    )
    if not score:
        frames = [pl.DataFrame(), *frames]
    return Snapshots(protocol, frames)


def labels_of(snapshot: pl.DataFrame) -> np.ndarray:
    return snapshot[LABEL].to_numpy().astype(np.int64)


def shortage(y: np.ndarray) -> str | None:
    """Why labels cannot train or test a model (too few buyers or non-buyers), or None."""
    buyers = int(y.sum())
    others = len(y) - buyers
    if buyers < MIN_BUYERS:
        return f"only {buyers} of {len(y):,} customers bought again (need at least {MIN_BUYERS})"
    if others < MIN_BUYERS:
        return (
            f"{buyers:,} of {len(y):,} customers bought again: need at least {MIN_BUYERS} "
            "who did not"
        )
    return None


def require(snaps: Snapshots, role: str, indices: list[int]) -> None:
    """A one-line error when the snapshots ``indices`` (stacked) cannot play ``role``."""
    p = snaps.protocol
    y = np.concatenate([snaps.labels(j) for j in indices])
    why = shortage(y)
    if why is None:
        return
    when = ", ".join(f"{p.date(j):%Y-%m-%d}" for j in indices)
    newest = max(snaps.rows(j) for j in range(1, len(snaps.frames)))
    if len(y) / len(indices) < EARLY_SHARE * newest:
        # the snapshots lie so far back that the shop had few customers yet: the windows
        # are too long for the data, not too short
        advice = (
            f"they hold {len(y) // len(indices):,} customers each against {newest:,} in the "
            "newest labelled "
            f"snapshot: the protocol's snapshots step back {p.horizon_days} days each and "
            "reach the start of the data; choose a shorter --horizon-days or a later --as-of"
        )
    else:
        advice = (
            "choose a later --as-of, a longer --horizon-days (more buyers per window), or more data"
        )
    raise OlistDataError(
        f"{role} snapshot{'s' if len(indices) > 1 else ''} at {when} "
        f"(labels over {p.horizon_days} days): {why}; {advice}"
    )


EARLY_SHARE = 0.25
"""A role's snapshots with fewer customers than this share of the newest labelled
snapshot's lie near the start of the data (see :func:`require`)."""


def usable_folds(snaps: Snapshots) -> tuple[list[int], list[str]]:
    """The selection folds (by test snapshot) that have enough buyers, and a note for each
    one dropped."""
    p = snaps.protocol
    kept, dropped = [], []
    for j in p.fold_tests():
        train_y = np.concatenate([snaps.labels(i) for i in p.train_indices(j)])
        why = shortage(snaps.labels(j))
        where = "test"
        if why is None:
            why, where = shortage(train_y), "training"
        if why is None:
            kept.append(j)
        else:
            dropped.append(f"fold testing {p.date(j):%Y-%m-%d} dropped: its {where} rows: {why}")
    return kept, dropped


SOURCE = "_snapshot"


@dataclass(frozen=True)
class TrainingSet:
    """The stacked training snapshots of one split, encoded, negatives sampled by the
    :class:`Imbalance` rule of the whole stack."""

    dates: tuple[datetime, ...]
    encoding: Encoding
    X: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    """1 for kept buyers, 1 / sampling rate for kept non-buyers."""
    latest: np.ndarray
    """True for rows of the most recent training snapshot (where calibration is fitted)."""
    snapshot: np.ndarray
    """The protocol index of each row's snapshot."""
    groups: np.ndarray
    """The customer of each row, as an integer (for grouped cross-fitting)."""
    spend: np.ndarray
    """``future_spend`` of each kept row."""
    imbalance: Imbalance


def training_set(snaps: Snapshots, test: int, *, seed: int) -> TrainingSet:
    """The training rows of the split with test snapshot ``test``, in
    :func:`content_order`."""
    p = snaps.protocol
    idx = [j for j in p.train_indices(test) if snaps.rows(j) > 0]
    frames = [
        snaps[j].with_columns(pl.lit(k, dtype=pl.Int32).alias(SOURCE)) for k, j in enumerate(idx)
    ]
    imbalance = Imbalance.of(np.concatenate([snaps.labels(j) for j in idx]))
    rate = imbalance.negative_rate
    # fitted over every training row, as sums per snapshot (a compact one's were summed as
    # its buckets came in): the stack of all rows is never built
    encoding = Encoding.from_stats(
        sum((snaps.encoding_stats(j) for j in idx), EncodingStats.empty())
    )
    for j in idx:
        snaps.sample_below(j, rate, "train", seed)
    if rate < 1:
        # the sample is drawn before the rows are stacked and ordered, so only the kept
        # rows are copied and sorted; each row is kept by a pseudo-random number made from
        # its content (and the seed), so renaming the customers keeps the same rows
        frames = [
            f.filter(
                (pl.Series(labels_of(f)) == 1) | pl.Series(snaps.uniforms(j, "train", seed) < rate)
            )
            for j, f in zip(idx, frames, strict=True)
        ]
        stacked = pl.concat(frames, how="vertical")
        stacked = stacked[content_order(stacked.drop(SOURCE))]
    else:
        stacked = pl.concat(frames, how="vertical")
        stacked = stacked[content_order(stacked)]
    kept = stacked.drop(SOURCE)
    y, source = labels_of(kept), stacked[SOURCE].to_numpy()
    # the customer as the first row it has in content order: independent of its id
    first_row = kept.with_row_index("_row").select(pl.col("_row").min().over("customer_unique_id"))
    return TrainingSet(
        dates=tuple(p.date(j) for j in idx),
        encoding=encoding,
        X=encoding.transform(kept),
        y=y,
        weight=np.where(y == 1, 1.0, 1.0 / rate),
        latest=source == 0,
        snapshot=np.asarray(idx)[source],
        groups=first_row.to_series().rank("dense").to_numpy(),
        spend=kept["future_spend"].to_numpy(),
        imbalance=imbalance,
    )


MAX_DATA_GAP = timedelta(days=7)
READ_WHOLE = (0, 1)
"""The snapshots whose every row is read again after the features stage: the scored one
and the backtest's test window. A compact run spills only these to disk; the others are
only sampled, and their encoding sums kept."""


def layout_protocol_snapshots(
    source: Source,
    protocol: Protocol,
    *,
    score: bool = True,
    strict: bool = False,
    seed: int | None = None,
) -> Snapshots:
    """:func:`build_protocol_snapshots` over a bucketed layout: every date of one bucket
    at a time (:func:`olist_fast.bucketed.snapshots_by_bucket`), the buckets' frames put
    one after the other per date: the same frames, built in the memory of one bucket.

    With ``seed`` (the run's), every snapshot is kept
    compact (:class:`olist_fast.sampling.Compactor`): in memory every buyer and the rows
    the run's samples draw with that seed (training and fold samples, the drift sample;
    the scored snapshot 0 keeps its drift sample only), every row in a temporary Parquet
    file. The model stage draws the same samples from them, so its results are the
    same; snapshot 0 is scored from its file and the backtest's test window (1) read from
    its file, slice by slice."""
    from olist_fast.bucketed import snapshots_by_bucket

    assert source.layout is not None
    dates = protocol.dates()
    first = len(dates) - (len(dates) if score else len(dates) - 1)
    wanted = dates[first:]
    index = list(range(first, len(dates)))
    spill = None
    compactors: dict[int, Compactor] = {}
    if seed is not None:
        spill = SpillFolder()
        folds = set(protocol.fold_tests())
        compactors = {
            j: Compactor(
                spill.path / f"snapshot{j}" if j in READ_WHOLE else None,
                seed,
                train=j > 0,
                fold=j in folds,
            )
            for j in index
        }
    pieces: dict[int, list[pl.DataFrame]] = {j: [] for j in index if j not in compactors}
    empty: dict[int, pl.DataFrame] = {}

    def keep(_: int, frames: list[pl.DataFrame]) -> None:
        for j, frame in zip(index, frames, strict=True):
            empty.setdefault(j, frame.clear())
            if j in compactors:
                compactors[j].add(frame)
            else:
                pieces[j].append(frame)

    done = snapshots_by_bucket(
        source.layout,
        source.coverage,
        source.tables["orders"],
        wanted,
        keep,
        horizon_days=protocol.horizon_days,
        labels=[j > 0 for j in index],
    )
    done.warn(strict=strict)
    # each compact snapshot holds the spill folder: it is removed once none is left
    compacted = {j: replace(c.finish(empty[j]), owner=spill) for j, c in compactors.items()}
    frames = [
        compacted[j].frame
        if j in compacted
        else pl.concat(pieces[j], how="vertical", rechunk=False)
        for j in index
    ]
    if not score:
        frames = [pl.DataFrame(), *frames]
    return Snapshots(protocol, frames, compacted=compacted)


def make_snapshots(
    source: Source,
    protocol: Protocol,
    *,
    score: bool = True,
    strict: bool = False,
    seed: int | None = None,
) -> Snapshots:
    """Every snapshot of the protocol; a one-line error when the data ends more than
    ``MAX_DATA_GAP`` before ``as_of`` (the backtest's labels would be cut short; data
    that ends just before ``as_of`` is the usual case of scoring "now"), or when the
    backtest or the final fit lacks buyers or non-buyers."""
    with named_read_errors(source.files):
        check_data_gap(latest_purchase(source.tables["orders"]).collect().item(), protocol)
        if source.layout is None:
            snaps = build_protocol_snapshots(
                source.tables, protocol, score=score, engine=source.engine, strict=strict
            )
        else:
            snaps = layout_protocol_snapshots(
                source, protocol, score=score, strict=strict, seed=seed
            )
    snaps = replace(snaps, features_off=source.features_off)
    require_roles(snaps)
    return snaps


def check_data_gap(last: datetime | None, protocol: Protocol) -> None:
    """A one-line error when the last purchase is more than ``MAX_DATA_GAP`` before
    ``as_of``: the latest labels would be cut short."""
    if last is None or last < protocol.as_of - MAX_DATA_GAP:
        raise OlistDataError(
            f"--as-of {protocol.as_of:%Y-%m-%d} is more than {MAX_DATA_GAP.days} days after "
            f"the last purchase in the data ({last or 'none'}): the latest labels would be "
            "incomplete; choose an --as-of within the data (the default is the end of its "
            "healthy period)"
        )


def require_roles(snaps: Snapshots) -> None:
    """Buyers and non-buyers in every snapshot the backtest and the final fit need."""
    protocol = snaps.protocol
    require(snaps, "backtest test", [1])
    require(snaps, "backtest training", protocol.train_indices(1))
    require(snaps, "backtest calibration", [2])
    require(snaps, "final training", protocol.train_indices(0))


def read_snapshots(
    config: Any,
    *,
    tables: Tables | None = None,
    storage_options: StorageOptions = None,
    score: bool = True,
) -> Snapshots:
    """The snapshots of a job's protocol, read from ``config.data`` or ``tables``
    (:func:`olist_fast.data.read_source`, then :func:`make_snapshots`); ``config`` is a
    :class:`olist_fast.config.RunConfig`."""
    source = read_source(config.data, config.as_of, tables=tables, storage_options=storage_options)
    protocol = config.protocol(source.as_of)
    # compact snapshots keep the rows the run's seed samples; compare fits on every row
    seed = None if getattr(config, "compare", False) else config.seed
    return make_snapshots(source, protocol, score=score, strict=config.strict, seed=seed)
