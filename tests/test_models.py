"""Model factories and prediction."""

from __future__ import annotations

import numpy as np

from olist_fast.models import candidates, make_random_forest, predict_score, with_smote


def test_random_forest_scores_are_bit_reproducible() -> None:
    rng = np.random.default_rng(0)
    X = rng.random((20_000, 20))
    y = (rng.random(20_000) < 0.05).astype(int)
    forest = make_random_forest(balanced=True, random_state=0).fit(X, y)
    assert forest.n_jobs == 2  # trained on both cores
    first = predict_score(forest, X)
    for _ in range(5):
        assert np.array_equal(predict_score(forest, X), first)
    assert forest.n_jobs == 2  # left as it was
    piped = with_smote(make_random_forest(balanced=False, random_state=0), random_state=0)
    piped.fit(X, y)
    assert np.array_equal(predict_score(piped, X), predict_score(piped, X))


def test_every_setup_has_a_unique_name() -> None:
    names = [c.name for c in candidates()]
    assert len(names) == len(set(names)) == 8
