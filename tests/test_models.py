"""Model factories, the imbalance rule, every setup's fit-save-load contract, prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from imblearn.pipeline import Pipeline as ImbPipeline

from olist_fast.models import (
    MAX_NEGATIVES,
    MAX_TREES,
    NEG_PER_POS,
    SIMPLICITY_ORDER,
    Imbalance,
    all_setups,
    compared_setups,
    extra_setups,
    fit_setup,
    make_random_forest,
    make_xgboost,
    notebook_setups,
    predict_positive,
    setup_named,
    with_smote,
)
from olist_fast.persist import load_model, save_model


def data(n: int, rate: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    X[rng.random((n, 6)) < 0.05] = np.nan  # the encoding passes nulls as NaN
    logit = np.log(rate / (1 - rate)) + 0.8 * np.nan_to_num(X[:, 0])
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return X, y


def test_random_forest_scores_are_bit_reproducible() -> None:
    rng = np.random.default_rng(0)
    X = rng.random((20_000, 20))
    y = (rng.random(20_000) < 0.05).astype(int)
    forest = make_random_forest(balanced=True, random_state=0).fit(X, y)
    assert forest.n_jobs == 2  # trained on both cores
    first = predict_positive(forest, X)
    for _ in range(5):
        assert np.array_equal(predict_positive(forest, X), first)
    piped = with_smote(make_random_forest(balanced=False, random_state=0), random_state=0)
    piped.fit(X, y)
    assert np.array_equal(predict_positive(piped, X), predict_positive(piped, X))


@pytest.mark.parametrize(
    ("pos", "neg", "rate", "weights", "smote"),
    [
        (1_000, 150_000, NEG_PER_POS * 1_000 / 150_000, True, True),  # Olist: sample, weight
        (100, 10_000, 1.0, True, True),  # a small shop: every row (sampling is for speed)
        (100, 2_000, 1.0, True, True),  # 1:20 exactly: no sampling, still imbalanced
        (300, 700, 1.0, False, False),  # a shop where 30 % come back: nothing to do
        (600, 400, 1.0, False, False),  # more buyers than not: balanced enough
        (5, 200_000, 5 * NEG_PER_POS / 200_000, True, False),  # too few buyers to interpolate
        (900, 100, 1.0, True, True),  # non-buyers are the minority
        (80_000, 8_000_000, MAX_NEGATIVES / 8_000_000, False, False),  # plentiful: capped
        (10_000, 400_000, MAX_NEGATIVES / 400_000, True, True),  # the cap binds at 5k buyers
    ],
)
def test_imbalance_rule_follows_the_class_counts(
    pos: int, neg: int, rate: float, weights: bool, smote: bool
) -> None:
    im = Imbalance(positives=pos, negatives=neg)
    assert im.negative_rate == pytest.approx(rate)
    assert (not im.balanced) is weights
    assert im.smote_possible is smote


def test_smote_setup_never_shrinks_a_class() -> None:
    """At a 30 % rate the minority is above SMOTE's target: the setup fits without it
    (imbalanced-learn would refuse to 'remove samples from the minority class')."""
    X, y = data(3_000, 0.3)
    model = fit_setup(setup_named("logistic+smote"), X, y, 0)
    assert not isinstance(model, ImbPipeline)
    X, y = data(3_000, 0.02)
    assert isinstance(fit_setup(setup_named("logistic+smote"), X, y, 0), ImbPipeline)


def test_setups_are_named_once_simplest_first() -> None:
    names = [c.name for c in compared_setups()]
    assert names == list(SIMPLICITY_ORDER)
    assert names == ["logistic", "logistic+smote", "random_forest", "logistic+random_forest"]
    assert setup_named("xgboost").name == "xgboost"  # by name, not compared by default
    assert "logistic+smote" not in [c.name for c in compared_setups(smote=False)]
    with pytest.raises(ValueError, match="unknown model setup 'svm'"):
        setup_named("svm")


@pytest.mark.parametrize("name", [c.name for c in compared_setups() + extra_setups()])
@pytest.mark.parametrize("rate", [0.01, 0.3])
def test_every_setup_fits_saves_loads_and_predicts_the_same(
    name: str, rate: float, tmp_path: Path
) -> None:
    X, y = data(4_000, rate, seed=1)
    model = fit_setup(setup_named(name), X, y, 0)
    before = predict_positive(model, X)
    assert before.shape == (len(y),) and np.all((before >= 0) & (before <= 1))
    save_model(model, tmp_path)
    assert np.array_equal(predict_positive(load_model(tmp_path), X), before)


def test_xgboost_stops_early_on_noise() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5_000, 5))
    y = (rng.random(5_000) < 0.1).astype(np.int64)  # no signal at all
    model = fit_setup(setup_named("xgboost"), X, y, 0)
    assert model.n_estimators < MAX_TREES
    assert make_xgboost(pos_weight=1.0, random_state=0).n_estimators == MAX_TREES


def test_the_blend_is_the_mean_of_its_parts() -> None:
    """Selection scores the blend from its parts' fits instead of fitting it again."""
    X, y = data(3_000, 0.05, seed=4)
    parts = [predict_positive(fit_setup(setup_named(n), X, y, 0), X)
             for n in ("logistic", "random_forest")]  # fmt: skip
    blend = predict_positive(fit_setup(setup_named("logistic+random_forest"), X, y, 0), X)
    assert np.allclose(blend, (parts[0] + parts[1]) / 2, rtol=0, atol=1e-12)


def test_linear_scores_do_not_depend_on_the_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """BLAS may round a row's dot product differently in a matrix of another size (3 of
    these 20,000 rows in chunks of 33 differ from one pass), so the chunks must depend on
    the rows alone: one thread and two give the same bits."""
    import olist_fast.models as models
    from olist_fast.parallel import using_threads

    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 63))
    X[rng.random(X.shape) < 0.05] = np.nan
    y = (rng.random(20_000) < 0.05).astype(np.int64)
    model = fit_setup(setup_named("logistic"), X, y, 0)
    monkeypatch.setattr(models, "PREDICT_CHUNK", 33)
    with using_threads(1):
        one = predict_positive(model, X)
    with using_threads(2):
        two = predict_positive(model, X)
    assert np.array_equal(one, two)


def test_tree_scores_in_row_chunks_equal_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Uneven chunks (6,001 rows in chunks of about 997) on one thread or two: the forest,
    the blend and the spend model give the same bits; trees also equal one pass."""
    import olist_fast.models as models
    from olist_fast.models import by_rows, make_spend_regressor
    from olist_fast.parallel import using_threads

    X, y = data(6_001, 0.05, seed=6)
    spend = make_spend_regressor(random_state=0).fit(X, np.nan_to_num(X[:, 1]))
    fitted = {n: fit_setup(setup_named(n), X, y, 0)
              for n in ("random_forest", "logistic+random_forest")}  # fmt: skip
    whole_forest = predict_positive(fitted["random_forest"], X)
    whole_spend = spend.predict(X)
    monkeypatch.setattr(models, "PREDICT_CHUNK", 997)
    for name, model in fitted.items():
        with using_threads(1):
            one = predict_positive(model, X)
        with using_threads(2):
            two = predict_positive(model, X)
        assert np.array_equal(one, two), name
    assert np.array_equal(predict_positive(fitted["random_forest"], X), whole_forest)
    with using_threads(1):
        one = by_rows(spend.predict, X)
    with using_threads(2):
        two = by_rows(spend.predict, X)
    assert np.array_equal(one, two)
    assert np.array_equal(two, whole_spend)
    # slices encoded one chunk at a time: the same bits, in place, 1-D or 2-D
    stacked = lambda rows: np.column_stack([spend.predict(rows), rows[:, 0]])  # noqa: E731
    for n_threads in (1, 2):
        with using_threads(n_threads):
            got = models.by_slices(len(X), lambda at, n: X[at : at + n], stacked)
            assert np.array_equal(got[:, 0], whole_spend)
            assert np.array_equal(got[:, 1], X[:, 0], equal_nan=True)
            assert np.array_equal(models.by_slices(len(X), lambda at, n: X[at : at + n],
                                                   spend.predict), whole_spend)  # fmt: skip


def test_sparse_penalty_follows_the_information_in_the_labels() -> None:
    """Fewer buyers or more columns: a stronger penalty (smaller C); balanced class weights
    add curvature, not information, so C shrinks with them; SMOTE adds weight, not
    information, likewise."""
    from olist_fast.models import sparse_penalty

    def y(pos: int, neg: int) -> np.ndarray:
        return np.r_[np.ones(pos), np.zeros(neg)]

    few, many = (
        sparse_penalty(y(100, 2_000), 60, balanced=False),
        sparse_penalty(y(1_000, 20_000), 60, balanced=False),
    )
    # C scales the summed loss: ten times the rows at the same rate, about sqrt(10) more
    # penalty per row (the lasso's sqrt(log p / m)), so C drops by sqrt(10)
    assert few / many == pytest.approx(np.sqrt(10), rel=1e-9)
    assert sparse_penalty(y(100, 2_000), 120, balanced=False) < few
    assert sparse_penalty(y(100, 2_000), 60, balanced=True) < few
    smote = sparse_penalty(y(100, 2_000), 60, balanced=False, minority_ratio=0.25)
    assert smote < few
    # a balanced shop: weights and SMOTE change nothing
    even = sparse_penalty(y(1_000, 1_000), 60, balanced=False)
    assert sparse_penalty(y(1_000, 1_000), 60, balanced=True) == pytest.approx(even)
    assert sparse_penalty(y(1_000, 1_000), 60, balanced=False, minority_ratio=0.25) == even


def test_the_logistic_setup_is_sparse_where_buyers_are_few() -> None:
    X, y = data(4_000, 0.02, seed=8)
    X = np.c_[X, np.random.default_rng(9).normal(size=(4_000, 30))]  # 30 pure-noise columns
    coef = fit_setup(setup_named("logistic"), X, y, 0)[-1].coef_.ravel()
    assert coef[0] != 0  # the one real signal stays
    assert np.count_nonzero(coef[6:]) <= 5  # most noise columns are exactly zero


def test_concurrent_liblinear_fits_give_the_same_model() -> None:
    """liblinear seeds one process-wide generator per fit and runs without the GIL: fits
    on threads must take turns or their results depend on timing."""
    from concurrent.futures import ThreadPoolExecutor

    X, y = data(40_000, 0.05, seed=10)
    X = np.c_[X, np.random.default_rng(11).normal(size=(40_000, 40))]
    alone = fit_setup(setup_named("logistic"), X, y, 0)[-1].coef_
    with ThreadPoolExecutor(4) as ex:
        fits = list(ex.map(lambda _: fit_setup(setup_named("logistic"), X, y, 0), range(8)))
    for model in fits:
        assert np.array_equal(model[-1].coef_, alone)


@pytest.mark.parametrize("name", [c.name for c in all_setups() + notebook_setups()])
def test_exactly_the_liblinear_setups_take_turns(name: str) -> None:
    from olist_fast.models import uses_liblinear

    X, y = data(2_000, 0.05, seed=12)
    model = fit_setup(setup_named(name), X, y, 0)
    liblinear = name in ("logistic", "logistic+smote", "logistic+random_forest")
    assert uses_liblinear(model) is liblinear
    X, y = data(2_000, 0.3, seed=13)  # balanced enough: logistic+smote fits without SMOTE
    assert uses_liblinear(fit_setup(setup_named(name), X, y, 0)) is liblinear


def test_sparse_penalty_refuses_one_class() -> None:
    from olist_fast.models import sparse_penalty

    for y in (np.zeros(100), np.ones(100)):
        with pytest.raises(ValueError, match="needs both classes"):
            sparse_penalty(y, 10, balanced=False)


def _buyers_set(X: np.ndarray, spend: np.ndarray):
    from olist_fast.encode import Encoding
    from olist_fast.models import Imbalance
    from olist_fast.protocol import TrainingSet

    n = len(spend)
    y = np.ones(n, dtype=np.int64)
    return TrainingSet(dates=(), encoding=Encoding(categories={}), X=X, y=y,
                       weight=np.ones(n), latest=np.ones(n, dtype=bool),
                       snapshot=np.zeros(n, dtype=np.int64), groups=np.arange(n),
                       spend=spend, imbalance=Imbalance.of(y))  # fmt: skip


def test_expected_spend_is_a_mean_not_a_median() -> None:
    """Log-normal spend (sigma 1): the mean is e^0.5 = 1.65 times the median. The log
    model alone predicts near the median; the smearing factor brings it to the mean."""
    from olist_fast.fitting import FittedModel, fit_spend

    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 3))
    spend = np.exp(4.0 + 0.3 * X[:, 0] + rng.normal(0, 1.0, 3000))
    fit = fit_spend(_buyers_set(X, spend), seed=0)
    model = FittedModel("logistic", None, None, None, fit.model, 90,  # type: ignore[arg-type]
                        spend_smearing=fit.smearing)  # fmt: skip
    predicted = model.spend_of(X)
    assert predicted.mean() == pytest.approx(spend.mean(), rel=0.08)
    median_only = np.expm1(fit.model.predict(X))
    assert median_only.mean() < 0.75 * spend.mean()


def test_spend_rules_for_refunds_outliers_and_few_buyers(caplog) -> None:
    from olist_fast.fitting import fit_spend

    rng = np.random.default_rng(2)
    X = rng.normal(size=(500, 2))
    spend = np.exp(4.0 + rng.normal(0, 0.8, 500))
    base = fit_spend(_buyers_set(X, spend), seed=0).smearing
    whale = spend.copy()
    whale[0] = 1000 * np.median(spend)  # one buyer spends a thousand times the median
    assert fit_spend(_buyers_set(X, whale), seed=0).smearing < 1.05 * base
    refunds = spend.copy()
    refunds[:20] = -50.0  # net-negative windows count as zero spend, no crash
    assert np.isfinite(fit_spend(_buyers_set(X, refunds), seed=0).smearing)
    few = fit_spend(_buyers_set(X[:12], spend[:12]), seed=0)
    assert "only 12 buyers" in caplog.text
    mean = np.exp(few.model.predict(X[:1]))[0] * few.smearing - 1
    assert mean == pytest.approx(spend[:12].mean())


def test_a_lazy_frame_is_read_in_blocks_that_give_every_slice(monkeypatch) -> None:
    """Slices of a lazy frame (a spill) come from blocks read once; a slice across two
    blocks, the last short block, and slices asked out of order are the frame's slices."""
    import polars as pl

    import olist_fast.fitting as F

    monkeypatch.setattr(F, "READ_BLOCK", 7)
    frame = pl.DataFrame({"a": range(50), "b": [str(i) for i in range(50)]})
    reads: list[int] = []
    blocks = F._Blocks(frame.lazy())
    real_block = blocks.block

    def block(k: int) -> pl.DataFrame:
        if k not in blocks.kept:
            reads.append(k)
        return real_block(k)

    blocks.block = block  # type: ignore[method-assign]
    for offset, length in [(0, 5), (5, 5), (10, 10), (20, 1), (48, 2), (3, 30), (0, 50)]:
        assert blocks.slice(offset, length).equals(frame.slice(offset, length))
    assert reads[:4] == [0, 1, 2, 6]  # in order, each block read once


def test_openmp_is_limited_inside_the_context() -> None:
    """The cached thread-pool controller still limits OpenMP (what histogram boosting
    uses) inside openmp_limited, and restores it after."""
    from threadpoolctl import threadpool_info

    from olist_fast.models import OPENMP_THREADS, openmp_limited

    def openmp() -> set[int]:
        return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"}

    before = openmp()
    assert before  # scikit-learn's OpenMP runtime is loaded
    with openmp_limited():
        assert openmp() == {OPENMP_THREADS}
    assert openmp() == before


@pytest.mark.parametrize("shuffled", [False, True])
def test_score_order_is_propensity_then_id_with_ties(shuffled: bool) -> None:
    """best_first: a stable sort of the propensities for sorted ids (a snapshot's), the
    two-key sort otherwise; the same order as sorting by (propensity desc, id asc)."""
    import polars as pl

    from olist_fast.fitting import best_first

    rng = np.random.default_rng(3)
    n = 5000
    ids = pl.Series("id", [f"{i:032x}" for i in rng.choice(10**9, n, replace=False)]).sort()
    p = np.round(rng.random(n), 2)  # about 50 customers per value
    if shuffled:
        perm = rng.permutation(n)
        ids, p = ids.gather(perm), p[perm]
    want = (
        pl.DataFrame({"p": p, "id": ids})
        .with_row_index("row")
        .sort(["p", "id"], descending=[True, False])["row"]
        .to_numpy()
    )
    assert np.array_equal(best_first(p, ids), want)


@pytest.mark.parametrize("n", [50_000, 50_001, 74_999, 1_234_567])
def test_prediction_chunks_are_array_split_s(n: int) -> None:
    from olist_fast.models import PREDICT_CHUNK, _chunks

    want = [(int(c[0]), int(c[-1]) + 1) for c in np.array_split(np.arange(n), n // PREDICT_CHUNK)]
    assert _chunks(n) == want
