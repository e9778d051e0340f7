"""Model files: a fitted classifier as skops (preprocessing, forests, the blend) or
XGBoost's native format, and loading them back with only the types olist-fast writes
trusted. :class:`olist_fast.fitting.FittedModel` writes and reads its folder with these.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sklearn.pipeline import Pipeline
from xgboost import XGBClassifier

from olist_fast.errors import OlistDataError
from olist_fast.models import inference_steps


def save_model(model: Any, folder: Path) -> list[Path]:
    """Write a fitted classifier into ``folder``: its preprocessing steps through skops,
    the final estimator in XGBoost's native format or through skops."""
    import skops.io as sio

    folder.mkdir(parents=True, exist_ok=True)
    steps = inference_steps(model)
    written = []
    if len(steps) > 1:
        path = folder / "preprocess.skops"
        sio.dump(Pipeline(steps[:-1]), path)
        written.append(path)
    final = steps[-1][1]
    if isinstance(final, XGBClassifier):
        path = folder / "classifier.ubj"
        final.save_model(path)
    else:
        path = folder / "classifier.skops"
        sio.dump(final, path)
    written.append(path)
    return written


SKOPS_TRUSTED = frozenset(
    {
        "numpy.nan_to_num",  # the logistic pipeline's NaN imputation (a FunctionTransformer)
        "sklearn.tree._tree.Tree",  # the random forest's trees
        "sklearn.utils._bunch.Bunch",  # the blend's named estimators
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",  # spend model
    }
)
"""Exactly the types that skops does not trust by default and that our own ``save`` writes
(every setup of :func:`all_setups` and the spend model; a test checks the list against
``skops.io.get_untrusted_types`` of freshly saved models). A file naming anything else
is refused."""


def load_skops(path: Path) -> Any:
    """A skops file written by :func:`save_model` or the spend model's save; a file that
    names a type outside ``SKOPS_TRUSTED`` is refused with a one-line error."""
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except FileNotFoundError:
        raise OlistDataError(
            f"{path}: not found (expected a model folder from train/run)"
        ) from None
    except Exception as exc:  # skops raises zipfile, JSON and key errors on damaged files
        raise OlistDataError(f"{path}: not a readable skops file ({exc})") from None
    foreign = sorted(set(untrusted) - SKOPS_TRUSTED)
    if foreign:
        raise OlistDataError(
            f"{path}: refers to type {foreign[0]!r}, which olist-fast never writes; "
            "refusing to load it (only models saved by olist-fast train/run are loaded)"
        )
    return sio.load(path, trusted=sorted(untrusted))


def load_model(folder: Path) -> Pipeline:
    """The classifier written by :func:`save_model`, as one prediction pipeline."""
    steps: list[tuple[str, Any]] = []
    if (folder / "preprocess.skops").exists():
        steps += load_skops(folder / "preprocess.skops").steps
    if (folder / "classifier.ubj").exists():
        final = XGBClassifier()
        final.load_model(folder / "classifier.ubj")
    else:
        final = load_skops(folder / "classifier.skops")
    return Pipeline([*steps, ("model", final)])
