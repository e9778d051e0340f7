"""Estimator factories (``make_*``), the setups (:class:`Setup`), the imbalance rule, and safe
persistence.

The imbalance is handled as :class:`Imbalance` decides from the class counts of each
training set: negative sampling, class weights (XGBoost's ``scale_pos_weight``), or SMOTE
inside an imbalanced-learn Pipeline, so resampling only ever sees the rows it is fitted
on (never a validation fold).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from typing import Any

import numpy as np
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline as ImbPipeline
from sklearn.base import clone
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    VotingClassifier,
)
from sklearn.feature_selection import VarianceThreshold
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from xgboost import XGBClassifier

from olist_fast.errors import OlistUsageError
from olist_fast.parallel import threads

PREDICT_CHUNK = 25_000
_FORESTS_LOCK = threading.Lock()
_LIBLINEAR_LOCK = threading.Lock()
"""liblinear draws from one process-wide random generator (scikit-learn's ``_newrand``),
seeded at the start of each fit, and runs without the GIL: two fits on two threads
would interleave their draws and their results would depend on timing. Its fits take
turns; everything else still runs side by side."""
OPENMP_THREADS = 1
"""OpenMP threads for XGBoost and scikit-learn's histogram boosting. OpenMP workers
spin while they wait, so on shared cores a second thread can cost far more than it gains
(docs/performance.md: the spend model took seconds instead of a fraction of one on a
loaded 2-core machine); the models here are small enough for one thread."""
NEG_PER_POS = 20
"""Negative sampling keeps at most this many non-buyers per buyer."""
SAMPLE_ABOVE_ROWS = 100_000
"""Negative sampling only for training sets larger than this: it is there for speed, and
on small shops it changed nothing beyond seed noise (docs/model-quality.md) while the
fits are fast anyway."""
MAX_NEGATIVES = 100_000
"""Negative sampling keeps at most this many non-buyers in one training set, however
many buyers it has: once buyers are plentiful, more non-buyers cost time in every fit
and no ranking (docs/performance.md: the cap measured)."""
BALANCED_ENOUGH = 0.25
"""Minority / majority ratio from which no class weights or SMOTE are applied."""
SMOTE_RATIO = BALANCED_ENOUGH
SMOTE_NEIGHBOURS = 5
MAX_TREES = 400
EARLY_STOP_ROUNDS = 30


def fill_missing() -> FunctionTransformer:
    """NaN -> 0. After scaling that is mean imputation; the encoding already carries a
    missing-indicator for every feature that can be empty. (Far cheaper per fit than
    SimpleImputer.)"""
    return FunctionTransformer(np.nan_to_num, feature_names_out="one-to-one")


def make_logistic(*, balanced: bool, random_state: int, C: float | None = None) -> Pipeline:
    """Scaled logistic regression; missing values filled after scaling.

    ``C`` given: sparse (L1), the strength from :func:`sparse_penalty` (the default
    setups). ``C`` None: L2 at C = 0.3 (the notebook approach inside ``run --compare``;
    ``benchmarks/peers/notebook_peer.py`` keeps scikit-learn's default, C = 1)."""
    if C is None:
        model = LogisticRegression(
            C=0.3,
            solver="newton-cholesky",
            max_iter=200,
            class_weight="balanced" if balanced else None,
            random_state=random_state,
        )
    else:
        model = LogisticRegression(
            C=C,
            l1_ratio=1.0,
            solver="liblinear",
            intercept_scaling=10.0,  # liblinear penalises the intercept as a feature
            tol=1e-2,  # 1e-3: twice the time at 95k rows, the same ranking (AUC +-0.0002)
            max_iter=1000,
            class_weight="balanced" if balanced else None,
            random_state=random_state,
        )
    return make_pipeline(StandardScaler(), fill_missing(), model)


SPARSITY = 0.75
"""``k`` of :func:`sparse_penalty` (chosen on generated data of realistic difficulty:
docs/model-quality.md)."""


def sparse_penalty(
    y: np.ndarray, width: int, *, balanced: bool, minority_ratio: float | None = None
) -> float:
    """scikit-learn's ``C`` for the L1 logistic regression, from the data it is fitted on.

    The rule is the lasso's: a penalty per unit of the loss's curvature of
    ``SPARSITY * sqrt(log(width) / m)``, ``m = pos * neg / n`` the information the labels
    carry (about the minority count when buyers are rare). The curvature of the weighted
    loss at the null model is ``W * pi * (1 - pi)`` (``W`` the total weight, ``pi`` the
    weighted share of buyers): ``n / 4`` with balanced class weights, about ``m`` without.
    ``minority_ratio``: the minority is first oversampled to that share of the majority
    (SMOTE), which adds weight but no information. So few buyers or many features give
    a sparse model; many buyers let every feature in."""
    n = len(y)
    pos = float(np.sum(y))
    neg = n - pos
    if pos == 0 or neg == 0:
        raise ValueError(
            f"a logistic regression needs both classes: {int(pos)} buyers and {int(neg)} non-buyers"
        )
    info = max(pos * neg / n, 1.0)
    lo, hi = sorted((pos, neg))
    if minority_ratio is not None and lo < minority_ratio * hi:
        lo = minority_ratio * hi
    if balanced:
        w_lo = w_hi = (lo + hi) / 2
    else:
        w_lo, w_hi = lo, hi
    total = w_lo + w_hi
    curvature = total * (w_lo / total) * (w_hi / total)
    lam = SPARSITY * math.sqrt(math.log(max(width, 2)) / info)
    return 1.0 / (lam * curvature)


def make_random_forest(*, balanced: bool, random_state: int) -> RandomForestClassifier:
    return RandomForestClassifier(
        n_estimators=80,
        max_depth=10,
        min_samples_leaf=40,
        max_features="sqrt",
        max_samples=0.5,
        # weights from the whole training set: "balanced_subsample" recomputes them for
        # every tree's half-sample (the same proportions, give or take), at a real cost
        class_weight="balanced" if balanced else None,
        n_jobs=threads(),  # joblib threads, which yield the core when idle
        random_state=random_state,
    )


def make_xgboost(
    *, pos_weight: float, random_state: int, n_estimators: int = MAX_TREES
) -> XGBClassifier:
    """Shallow boosted trees at a small learning rate; the number of trees is found by
    early stopping (:func:`fit_xgboost`)."""
    return XGBClassifier(
        n_estimators=n_estimators,
        learning_rate=0.05,
        max_depth=3,
        min_child_weight=10,
        subsample=0.8,
        colsample_bytree=0.8,
        reg_lambda=10.0,
        scale_pos_weight=pos_weight,
        tree_method="hist",
        eval_metric="auc",
        n_jobs=OPENMP_THREADS,
        random_state=random_state,
    )


def make_blend(*, balanced: bool, random_state: int, C: float) -> VotingClassifier:
    """The mean of the logistic regression's and the random forest's probabilities: the
    linear model's smooth ranking plus the forest's interactions and thresholds."""
    return VotingClassifier(
        [
            ("logistic", make_logistic(balanced=balanced, random_state=random_state, C=C)),
            ("random_forest", make_random_forest(balanced=balanced, random_state=random_state)),
        ],
        voting="soft",
    )


def make_gradient_boosting(*, random_state: int) -> HistGradientBoostingClassifier:
    """Gradient boosting as the notebook set it up (100 rounds of depth-3 trees, rate 0.1),
    in scikit-learn's histogram implementation (the classic one is far slower)."""
    return HistGradientBoostingClassifier(
        max_iter=100, max_depth=3, learning_rate=0.1, random_state=random_state
    )


def with_smote(
    estimator: Any, *, random_state: int, ratio: float | str = SMOTE_RATIO
) -> ImbPipeline:
    """Impute, oversample the minority class with SMOTE, then fit (on training rows only).

    ``ratio`` is the minority/majority ratio after resampling (``"auto"``: full balance, as
    the notebook did). SMOTE can only grow the minority: callers pass a float ratio only
    when the classes are further apart than it (see :class:`Imbalance`)."""
    if isinstance(estimator, Pipeline):
        # scaling and filling first: SMOTE cannot interpolate missing values
        head, steps = estimator.steps[:-1], estimator.steps[-1:]
    else:
        head, steps = [("fill", fill_missing())], [("model", estimator)]
    smote = SMOTE(sampling_strategy=ratio, random_state=random_state)
    return ImbPipeline([*head, ("smote", smote), *steps])


def make_spend_regressor(*, random_state: int) -> Pipeline:
    """E[log1p(spend) | buys]: small and regularised, for a few hundred buyers. Columns
    that take one value (or are missing) for every buyer are dropped first: histogram
    boosting cannot bin a column missing for every row, and a shop without delivery
    dates has such columns among its buyers even where the encoding kept them."""
    return make_pipeline(
        VarianceThreshold(),
        HistGradientBoostingRegressor(
            max_iter=60,
            learning_rate=0.12,
            max_leaf_nodes=7,
            min_samples_leaf=20,
            l2_regularization=5.0,
            random_state=random_state,
        ),
    )


# -- imbalance: every choice follows from the class counts it meets ----------------------
@dataclass(frozen=True)
class Imbalance:
    """How one training set is handled, decided from its class counts alone.

    * **Negative sampling** only where rows and negatives are plentiful: when the training
      set has more than ``SAMPLE_ABOVE_ROWS`` rows and non-buyers outnumber buyers more
      than ``NEG_PER_POS`` to one, keep every buyer and a random share of the non-buyers:
      ``NEG_PER_POS`` per buyer, at most ``MAX_NEGATIVES`` in all (weight 1 / share when
      calibrating, so probabilities refer to the whole population).
    * **Class weights** (balanced) only where the kept classes are further apart than
      ``BALANCED_ENOUGH`` (minority / majority); above it nothing is reweighted.
    * **SMOTE** is possible only in the same case, up to that ratio, and only with more
      than ``SMOTE_NEIGHBOURS`` minority rows: SMOTE never shrinks a class.
    """

    positives: int
    negatives: int

    @property
    def negative_rate(self) -> float:
        if self.positives + self.negatives <= SAMPLE_ABOVE_ROWS:
            return 1.0
        kept = min(NEG_PER_POS * self.positives, MAX_NEGATIVES)
        if self.negatives <= kept:
            return 1.0
        return kept / self.negatives

    @property
    def ratio(self) -> float:
        """Minority / majority after negative sampling."""
        kept_neg = self.negatives * self.negative_rate
        lo, hi = sorted((self.positives, kept_neg))
        return lo / hi if hi else 1.0

    @property
    def balanced(self) -> bool:
        return self.ratio >= BALANCED_ENOUGH

    @property
    def smote_possible(self) -> bool:
        minority = min(self.positives, self.negatives * self.negative_rate)
        return not self.balanced and minority > SMOTE_NEIGHBOURS

    @classmethod
    def of(cls, y: np.ndarray) -> Imbalance:
        pos = int(np.sum(y))
        return cls(positives=pos, negatives=len(y) - pos)

    def as_dict(self) -> dict:
        return {
            "positives": self.positives,
            "negatives": self.negatives,
            "negative_rate": self.negative_rate,
            "ratio_after_sampling": self.ratio,
            "class_weights": not self.balanced,
            "smote_possible": self.smote_possible,
        }


@dataclass(frozen=True)
class Setup:
    """One model setup: a name, and how to build it for a training set.

    ``build(y, seed, width)`` sees the labels it will be fitted on (after negative
    sampling) and the number of columns, so class weights, SMOTE and the penalty follow
    :class:`Imbalance` and :func:`sparse_penalty` of exactly those rows."""

    name: str
    kind: str  # logistic | xgboost | random_forest | blend | gradient_boosting
    smote: bool
    build: Callable[[np.ndarray, int, int], Any]


def _pos_weight(y: np.ndarray) -> float:
    """XGBoost's class weight: negatives per positive where the classes are imbalanced."""
    if Imbalance.of(y).balanced:
        return 1.0
    pos = max(int(y.sum()), 1)
    return float((len(y) - pos) / pos)


def _build_logistic(y: np.ndarray, s: int, width: int) -> Any:
    balanced = not Imbalance.of(y).balanced
    C = sparse_penalty(y, width, balanced=balanced)
    return make_logistic(balanced=balanced, random_state=s, C=C)


def _build_logistic_smote(y: np.ndarray, s: int, width: int) -> Any:
    if not Imbalance.of(y).smote_possible:  # the classes are balanced enough already
        return _build_logistic(y, s, width)
    C = sparse_penalty(y, width, balanced=False, minority_ratio=SMOTE_RATIO)
    return with_smote(make_logistic(balanced=False, random_state=s, C=C), random_state=s)


def _build_xgboost(y: np.ndarray, s: int, width: int) -> Any:
    return make_xgboost(pos_weight=_pos_weight(y), random_state=s)


def _build_random_forest(y: np.ndarray, s: int, width: int) -> Any:
    return make_random_forest(balanced=not Imbalance.of(y).balanced, random_state=s)


def _build_blend(y: np.ndarray, s: int, width: int) -> Any:
    balanced = not Imbalance.of(y).balanced
    return make_blend(
        balanced=balanced, random_state=s, C=sparse_penalty(y, width, balanced=balanced)
    )


SIMPLICITY_ORDER = ("logistic", "logistic+smote", "random_forest", "logistic+random_forest")
"""The compared setups from simple to complex: the selection rule prefers the earlier."""


def compared_setups(*, smote: bool = True) -> list[Setup]:
    """The compared setups, simplest first (:data:`SIMPLICITY_ORDER`); ``smote=False``
    leaves out the SMOTE setup (for training sets balanced enough without it)."""
    pool = [
        Setup("logistic", "logistic", False, _build_logistic),
        Setup("logistic+smote", "logistic", True, _build_logistic_smote),
        Setup("random_forest", "random_forest", False, _build_random_forest),
        Setup("logistic+random_forest", "blend", False, _build_blend),
    ]
    return [c for c in pool if smote or not c.smote]


def all_setups() -> list[Setup]:
    """Every setup that can be named, simplest first (XGBoost between the logistic
    regressions and the forest)."""
    pool = compared_setups()
    return [*pool[:2], *extra_setups(), *pool[2:]]


def extra_setups() -> list[Setup]:
    """Setups available by name (``train --setup``, ``RunConfig(models=...)``) but not
    compared by default (docs/job.md: why)."""
    return [Setup("xgboost", "xgboost", False, _build_xgboost)]


def notebook_setups() -> list[Setup]:
    """The starting notebook's approach: LR, RF and gradient boosting, each with SMOTE to
    full balance, trained on one snapshot with every row. Its scikit-learn
    GradientBoostingClassifier is replaced by the histogram version with the same depth
    and rounds."""
    return [
        Setup(
            "notebook:logistic+smote",
            "logistic",
            True,
            lambda y, s, w: with_smote(
                make_logistic(balanced=False, random_state=s), random_state=s, ratio="auto"
            ),
        ),
        Setup(
            "notebook:random_forest+smote",
            "random_forest",
            True,
            lambda y, s, w: with_smote(
                make_random_forest(balanced=False, random_state=s), random_state=s, ratio="auto"
            ),
        ),
        Setup(
            "notebook:gradient_boosting+smote",
            "gradient_boosting",
            True,
            lambda y, s, w: with_smote(
                make_gradient_boosting(random_state=s), random_state=s, ratio="auto"
            ),
        ),
    ]


def setup_named(name: str) -> Setup:
    for c in compared_setups() + extra_setups() + notebook_setups():
        if c.name == name:
            return c
    known = ", ".join(c.name for c in compared_setups() + extra_setups())
    raise OlistUsageError(f"unknown model setup {name!r}; expected one of {known}")


@cache
def _threadpools() -> Any:
    """The thread pools of the loaded native libraries, found once (looking them up
    takes milliseconds, and predicting millions of rows enters the limit per chunk).
    This module imports scikit-learn's and XGBoost's compiled parts first."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def openmp_limited() -> Any:
    """A context in which OpenMP code (scikit-learn's histogram boosting) uses
    ``OPENMP_THREADS`` threads."""
    return _threadpools().limit(limits=OPENMP_THREADS, user_api="openmp")


def fit_setup(c: Setup, X: np.ndarray, y: np.ndarray, seed: int) -> Any:
    """Fit a setup on (X, y) as given (the caller has sampled the rows).

    XGBoost stops early: it is first fitted on a random 80 % of the rows with the other
    20 % watched (ROC AUC, patience ``EARLY_STOP_ROUNDS``), then refitted on every row
    with the number of trees found."""
    model = c.build(y, seed, X.shape[1])
    with openmp_limited():
        if isinstance(model, XGBClassifier):
            return fit_xgboost(model, X, y, seed)
        if uses_liblinear(model):
            with _LIBLINEAR_LOCK:
                return model.fit(X, y)
        return model.fit(X, y)


def uses_liblinear(model: Any) -> bool:
    """Whether fitting ``model`` runs liblinear (see ``_LIBLINEAR_LOCK``)."""
    final = inference_steps(model)[-1][1]
    parts = [final, *getattr(final, "estimators", [])]
    steps = [p[1] if isinstance(p, tuple) else p for p in parts]
    found = [s for p in steps for _, s in inference_steps(p)]
    return any(isinstance(s, LogisticRegression) and s.solver == "liblinear" for s in found)


def fit_xgboost(model: XGBClassifier, X: np.ndarray, y: np.ndarray, seed: int) -> XGBClassifier:
    rng = np.random.default_rng(seed)
    watch = rng.random(len(y)) < 0.2
    if np.unique(y[watch]).size < 2 or np.unique(y[~watch]).size < 2:
        return model.fit(X, y)  # too few rows to watch: the full number of trees
    probe = clone(model).set_params(early_stopping_rounds=EARLY_STOP_ROUNDS)
    probe.fit(X[~watch], y[~watch], eval_set=[(X[watch], y[watch])], verbose=False)
    return model.set_params(n_estimators=int(probe.best_iteration) + 1).fit(X, y)


def predict_positive(model: Any, X: np.ndarray) -> np.ndarray:
    """The positive-class score of a fitted classifier, bit-reproducible.

    A random forest predicting on several threads adds its trees' probabilities in
    whatever order the threads finish, so the last bits change from call to call. Here
    every row is scored on one thread (its trees summed in their order), and large
    inputs are split into chunks of rows scored side by side (:func:`by_rows`: the same
    chunks whatever the number of threads).
    """
    final = inference_steps(model)[-1][1]
    return by_rows(lambda rows: _predict_positive(model, final, rows), X)


def by_rows(predict: Callable[[np.ndarray], np.ndarray], X: np.ndarray) -> np.ndarray:
    """``predict(X)`` in chunks of about ``PREDICT_CHUNK`` rows once ``X`` holds at least
    two, on :func:`threads` threads (one OpenMP thread each; the compiled predictors
    release the GIL, so the chunks overlap).

    The chunks depend on the number of rows alone, never on the threads, so the result
    is the same for any ``n_jobs``. (It is not always bit-identical to one pass over all
    rows: BLAS may round a row's dot product differently in a matrix of another size.)"""
    if len(X) < 2 * PREDICT_CHUNK:
        with openmp_limited():
            return predict(X)

    def part(rows: tuple[int, int]) -> np.ndarray:
        with openmp_limited():
            return predict(X[np.arange(*rows)])  # a copy, as before: the same bits

    return _gathered(part, _chunks(len(X)))


def by_slices(
    n: int,
    encode: Callable[[int, int], np.ndarray],
    predict: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """``predict(encode(0, n))`` where ``encode(offset, length)`` builds the rows of one
    slice: each of :func:`by_rows`'s chunks is encoded on its own, so the matrix of all
    ``n`` rows never exists (millions of customers times the encoded columns). The same
    chunks as :func:`by_rows`, so the same bits."""
    if n < 2 * PREDICT_CHUNK:
        return by_rows(predict, encode(0, n))

    def part(rows: tuple[int, int]) -> np.ndarray:
        X = encode(rows[0], rows[1] - rows[0])
        with openmp_limited():
            return predict(X)

    return _gathered(part, _chunks(n))


def _chunks(n: int) -> list[tuple[int, int]]:
    """The (start, stop) of each chunk of ``np.array_split(np.arange(n), n //
    PREDICT_CHUNK)``, without the index array."""
    m = n // PREDICT_CHUNK
    q, r = divmod(n, m)
    bounds = [i * q + min(i, r) for i in range(m + 1)]
    return list(pairwise(bounds))


def _gathered(
    part: Callable[[tuple[int, int]], np.ndarray], chunks: list[tuple[int, int]]
) -> np.ndarray:
    """``part`` of each chunk, in order, on :func:`threads` threads, written into one
    array as they arrive (not a list of them joined at the end: a copy of the whole
    result less at the peak)."""
    out: np.ndarray | None = None

    def put(rows: tuple[int, int], got: np.ndarray) -> None:
        nonlocal out
        if out is None:
            out = np.empty((chunks[-1][1], *got.shape[1:]), dtype=got.dtype)
        out[rows[0] : rows[1]] = got

    if threads() < 2:
        for rows in chunks:
            put(rows, part(rows))
    else:
        with ThreadPoolExecutor(threads()) as ex:
            for rows, got in zip(chunks, ex.map(part, chunks), strict=True):
                put(rows, got)
    assert out is not None
    return out


def _predict_positive(model: Any, final: Any, X: np.ndarray) -> np.ndarray:
    """Forests predict on one thread here (callers spread rows over threads instead); a
    forest's ``n_jobs`` stays 1 after its first prediction (restoring it while another
    thread predicts would race)."""
    inner = getattr(final, "estimators_", None) if isinstance(final, VotingClassifier) else None
    forests = [f for f in [final, *(inner or [])] if isinstance(f, RandomForestClassifier)]
    with _FORESTS_LOCK:
        for f in forests:
            f.n_jobs = 1
    return np.asarray(model.predict_proba(X)[:, 1], dtype=np.float64)


# -- persistence: XGBoost's own format, scikit-learn through skops (never pickle) --------
def inference_steps(model: Any) -> list[tuple[str, Any]]:
    """The steps that act at prediction time: a pipeline without its SMOTE step."""
    if isinstance(model, Pipeline | ImbPipeline):
        return [(n, s) for n, s in model.steps if not isinstance(s, SMOTE)]
    return [("model", model)]
