"""Pseudo-random numbers made from a row's content, and compact labelled snapshots.

Every random step of the model stage starts from the rows' content, never their ids or
order: a 64-bit hash per row (:func:`row_hashes`), uniforms for negative sampling
(:func:`sampling_uniforms`), an order (:func:`content_order`).

A labelled snapshot of millions of customers is used by the model stage only through
samples drawn with those numbers: the training sample (every buyer, non-buyers whose
uniform under the run's seed is below a rate), a fold's test sample (the same with
another seed) and the drift sample (the rows with the smallest hashes), plus its labels
and counts, and the encoding, fitted over every row. :class:`Compactor` therefore keeps,
as the snapshot streams in bucket by bucket, every buyer and the non-buyers with the
smallest numbers of each stream (more than any sample draws), writes every row to a
spill folder (Arrow IPC, read back lazily where every row counts: the encoding, the
scored snapshot and the backtest's reports), and keeps
the labels; the samples drawn from the compact frame are the samples the whole frame
gives, row for row.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from olist_fast.encode import EncodingStats

ROW_HASH_SEED = 20240501
LABEL = "bought_again"
TRAIN_KEEP = 120_000
"""Non-buyers kept per compact snapshot for the training sample (a training set draws at
most ``models.MAX_NEGATIVES`` = 100,000 over all its snapshots)."""
FOLD_KEEP = 280_000
"""Non-buyers kept for a fold's test sample (it draws about ``FOLD_MAX_NEGATIVES`` =
250,000; the margin is sixty standard deviations of that draw)."""
FOLD_SEED_OFFSET = 7
"""A fold's test sample uses the run's seed plus this (a stream apart from training's)."""
DRIFT_ROWS = 25_000
"""Expected buyers of a window are estimated on at most this many of its customers
(a fixed random sample, the sum scaled up: a relative error near 1 / sqrt(rows),
far below the count noise of the observed buyers)."""


def row_hashes(frame: pl.DataFrame) -> np.ndarray:
    """A 64-bit hash of each row's content, its ``customer_unique_id`` left out."""
    content = pl.struct(pl.exclude("customer_unique_id"))
    return frame.select(content.hash(ROW_HASH_SEED)).to_series().to_numpy()


def sampling_uniforms(frame: pl.DataFrame, seed: int) -> np.ndarray:
    """A number in [0, 1) for each row, pseudo-random, made from the row's content (its
    ``customer_unique_id`` left out) and ``seed``: the negative sample keeps the rows
    below the sampling rate."""
    content = pl.struct(pl.exclude("customer_unique_id"))
    h = frame.select(content.hash(ROW_HASH_SEED + 1 + seed)).to_series().to_numpy()
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53


def content_order(frame: pl.DataFrame, *, customers: bool = True) -> np.ndarray:
    """An order of ``frame``'s rows that depends on their content alone: by the hash of
    each row without its ``customer_unique_id``, ties broken by a hash of everything the
    customer's rows hold (``customers``). Renaming the customers or shuffling the input
    rows leaves it unchanged, so every random step after it (negative sampling, SMOTE's
    neighbours, the forest's bootstraps, the solvers' passes, the calibration folds)
    sees the same rows in the same order."""
    h = row_hashes(frame)
    if not customers:
        return np.argsort(h, kind="stable")
    per_customer = (
        frame.select(pl.col("customer_unique_id"))
        .with_columns(pl.Series("h", h))
        .select(pl.col("h").sum().over("customer_unique_id"))  # wraps: order-independent
        .to_series()
        .to_numpy()
    )
    return np.lexsort((per_customer, h))


@dataclass(frozen=True)
class Compacted:
    """A labelled snapshot kept compact: ``frame`` holds every buyer and the non-buyers a
    sample can draw, in the snapshot's order; the rest is on disk."""

    frame: pl.DataFrame
    rows: int
    labels: np.ndarray
    """Every row's label (int8), in the snapshot's order."""
    train_below: float
    """Every non-buyer whose training uniform is at or below this is in ``frame``."""
    fold_below: float
    """The same for the fold stream."""
    spill: Path | None
    """A folder holding every row, as Arrow IPC files (one per piece, in order); None for
    a snapshot only sampled (its encoding sums are in ``stats``)."""
    stats: EncodingStats | None
    """The encoding's sums over every row (:class:`olist_fast.encode.EncodingStats`), for
    a snapshot that trains."""
    seed: int
    """The run's seed the samples were kept for (another seed draws other rows)."""
    uniforms: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)
    """The sampling uniforms of ``frame``'s rows under ``seed`` per stream ("train",
    "fold"), as computed when the rows came in (the streams this snapshot keeps)."""
    owner: Any = field(default=None, compare=False, repr=False)
    """What keeps ``spill`` on disk (a temporary folder removed with it)."""

    @property
    def complete(self) -> bool:
        """Whether ``frame`` holds every row (a snapshot with few non-buyers)."""
        return self.frame.height == self.rows

    def lazy(self) -> pl.LazyFrame:
        """Every row, lazily: from the spill, or ``frame`` when it holds them all."""
        if self.spill is None:
            if not self.complete:
                raise RuntimeError("a compact snapshot without a spill cannot give every row")
            return self.frame.lazy()
        return pl.scan_ipc(sorted(self.spill.glob("*.arrow")))


class SpillFolder:
    """A temporary folder for spill files, removed when this object is collected (or
    at exit)."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="olist-fast-snapshots-"))
        weakref.finalize(self, shutil.rmtree, self.path, True)


def _kth(values: np.ndarray, k: int) -> float:
    """The k-th smallest value, +inf when there are k or fewer, -inf for k = 0."""
    if k == 0:
        return -np.inf
    if len(values) <= k:
        return np.inf
    return float(np.partition(values, k - 1)[k - 1])


def _own_strings(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with its text columns copied into buffers of their own. A filtered text
    column keeps referencing the whole input's text buffers (Polars' string views), so
    the few rows a compact snapshot keeps of each bucket would hold every bucket's ids."""
    text = [c for c, t in frame.schema.items() if t == pl.String]
    return frame.with_columns(pl.concat_str([pl.col(c), pl.lit("")]).alias(c) for c in text)


class Compactor:
    """Collects one labelled snapshot piece by piece (the buckets of a layout, in order):
    every row to ``spill``, and in memory the rows :class:`Compacted` keeps. The pieces'
    frames must share one schema."""

    def __init__(
        self, spill: Path | None, seed: int, *, train: bool = True, fold: bool = True
    ) -> None:
        """``train`` / ``fold``: keep what the training / fold samples draw and, for
        training, the encoding's sums (a snapshot that is neither, such as the scored
        one, keeps its drift sample only). ``spill``: where every row is written (None:
        nowhere, for a snapshot that is only sampled)."""
        self.spill, self.seed = spill, seed
        self.stats = EncodingStats.empty() if train else None
        self.keep_train = TRAIN_KEEP if train else 0
        self.keep_fold = FOLD_KEEP if fold else 0
        self.rows = 0
        self.labels: list[np.ndarray] = []
        self.pieces: list[tuple[pl.DataFrame, np.ndarray]] = []  # frame, [y, ut, uf, h]
        self.limits = (np.inf, np.inf, np.inf)  # training, fold, hash
        self.pending = 0
        if self.spill is not None:
            self.spill.mkdir(parents=True, exist_ok=True)

    def add(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        if self.spill is not None:
            # Arrow IPC with LZ4: several times faster to write than Parquet, read lazily
            part = self.spill / f"{len(self.labels):06d}.arrow"
            try:
                frame.write_ipc(part, compression="lz4")
            except OSError as exc:  # the file is named: the spill's folder is chosen by TMPDIR
                raise OSError(f"{part}: {exc} (the run's spill: TMPDIR sets its folder)") from None
        if self.stats is not None:
            self.stats = self.stats + EncodingStats.of(frame)
        self.rows += frame.height
        numbers = self._numbers(frame)
        self.labels.append(numbers[0].astype(np.int8))
        keep = self._keep(numbers, self.limits)
        self.pieces.append((_own_strings(frame.filter(pl.Series(keep))), numbers[:, keep]))
        self.pending += int(keep.sum())
        if self.pending > 1.2 * (self.keep_train + self.keep_fold + DRIFT_ROWS) + 250_000:
            self._trim()  # rows past the limits found so far never come back: drop them

    def _numbers(self, frame: pl.DataFrame) -> np.ndarray:
        if LABEL in frame.columns:
            y = frame[LABEL].to_numpy().astype(np.float64)
        else:  # the scored snapshot: nobody is a buyer to keep
            y = np.zeros(frame.height)
        # the hashes of row_hashes and of sampling_uniforms' streams, in one pass (the
        # expressions run in parallel); a stream this snapshot does not keep gets +inf:
        # never below a limit
        content = pl.struct(pl.exclude("customer_unique_id"))
        seeds = {"h": ROW_HASH_SEED}
        if self.keep_train:
            seeds["ut"] = ROW_HASH_SEED + 1 + self.seed
        if self.keep_fold:
            seeds["uf"] = ROW_HASH_SEED + 1 + self.seed + FOLD_SEED_OFFSET
        hashes = frame.select(content.hash(v).alias(k) for k, v in seeds.items())
        unused = np.full(frame.height, np.inf)

        def uniform(k: str) -> np.ndarray:
            if k not in seeds:
                return unused
            return (hashes[k].to_numpy() >> np.uint64(11)).astype(np.float64) * 2.0**-53

        h = hashes["h"].to_numpy().astype(np.float64)  # order kept: float64 rounds ties only
        return np.vstack([y, uniform("ut"), uniform("uf"), h])

    @staticmethod
    def _keep(numbers: np.ndarray, limits: tuple[float, float, float]) -> np.ndarray:
        y, ut, uf, h = numbers
        return (y == 1) | (ut <= limits[0]) | (uf <= limits[1]) | (h <= limits[2])

    def _trim(self) -> None:
        if not self.pieces:
            return
        frame = pl.concat([f for f, _ in self.pieces], how="vertical", rechunk=False)
        numbers = np.hstack([n for _, n in self.pieces])
        y, ut, uf, h = numbers
        nonbuyers = y == 0
        self.limits = (
            _kth(ut[nonbuyers], self.keep_train),
            _kth(uf[nonbuyers], self.keep_fold),
            _kth(h, DRIFT_ROWS),
        )
        keep = self._keep(numbers, self.limits)
        self.pieces = [(_own_strings(frame.filter(pl.Series(keep))), numbers[:, keep])]
        self.pending = int(keep.sum())

    def finish(self, empty: pl.DataFrame) -> Compacted:
        """The compact snapshot (``empty``: its schema, for a snapshot without rows)."""
        self._trim()
        if not self.labels and self.spill is not None:  # no row: an empty file keeps the schema
            empty.write_ipc(self.spill / "000000.arrow")
        frame = self.pieces[0][0].rechunk() if self.pieces else empty.clear()
        numbers = self.pieces[0][1] if self.pieces else np.zeros((4, 0))
        uniforms = {
            stream: numbers[i]
            for i, (stream, kept) in enumerate(
                [("train", self.keep_train), ("fold", self.keep_fold)], 1
            )
            if kept
        }
        labels = np.concatenate(self.labels) if self.labels else np.zeros(0, dtype=np.int8)
        return Compacted(
            frame=frame,
            rows=self.rows,
            labels=labels,
            train_below=self.limits[0],
            fold_below=self.limits[1],
            spill=self.spill,
            stats=self.stats,
            seed=self.seed,
            uniforms=uniforms,
        )
