"""feature_names_in_ from DataFrames, checked at predict time as scikit-learn checks them:
reordered, renamed or missing columns raise instead of being predicted silently wrong."""

from __future__ import annotations

import pickle
import re
import warnings

import numpy as np
import pytest
from conftest import blobs

import xpnet
from xpnet import MLPClassifier, MLPRegressor

pd = pytest.importorskip("pandas")
sk = pytest.importorskip("sklearn.neural_network")


def _frame(n=90, seed=0):
    X, y = blobs(n=n, d=4, k=3, seed=seed)
    return pd.DataFrame(X, columns=["a", "b", "c", "d"]), y


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_names_recorded_and_reordered_columns_refused_like_scikit_learn(cls):
    X, y = _frame()
    kw = dict(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    ours = _fit(cls(**kw), X, y)
    theirs = _fit(getattr(sk, cls.__name__)(**kw), X, y)
    assert ours.feature_names_in_.dtype == object
    np.testing.assert_array_equal(ours.feature_names_in_, theirs.feature_names_in_)
    for bad in (X[["b", "a", "c", "d"]], X.rename(columns={"d": "e"}), X[["a", "b", "c"]]):
        with pytest.raises(ValueError) as want:
            theirs.predict(bad)
        with pytest.raises(ValueError, match="The feature names should match") as got:
            ours.predict(bad)
        assert str(got.value) == str(want.value)  # scikit-learn's message, word for word


def test_names_on_one_side_only_warn_as_scikit_learn():
    X, y = _frame()
    named = _fit(MLPClassifier((5,), max_iter=2, random_state=0), X, y)
    with pytest.warns(UserWarning, match="X does not have valid feature names, but "
                                         "MLPClassifier was fitted with feature names"):
        named.predict(X.to_numpy())
    plain = _fit(MLPClassifier((5,), max_iter=2, random_state=0), X.to_numpy(), y)
    assert not hasattr(plain, "feature_names_in_")
    with pytest.warns(UserWarning, match="X has feature names, but MLPClassifier was fitted "
                                         "without feature names"):
        plain.predict(X)


def test_a_refit_on_an_array_forgets_the_names_and_a_bad_call_changes_nothing():
    X, y = _frame()
    est = _fit(MLPClassifier((5,), max_iter=2, random_state=0), X, y)
    before = [c.copy() for c in est.coefs_]
    with pytest.raises(ValueError, match="must be in the same order"):
        est.partial_fit(X[["d", "c", "b", "a"]], y)
    for a, b in zip(est.coefs_, before):
        np.testing.assert_array_equal(a, b)
    _fit(est, X.to_numpy(), y)
    assert not hasattr(est, "feature_names_in_")


def test_mixed_column_name_types_are_refused():
    X, y = _frame()
    X.columns = ["a", 1, "c", "d"]
    est = MLPClassifier((5,), max_iter=2)
    with pytest.raises(TypeError, match="Feature names are only supported if all input "
                                        "features have string names"):
        est.fit(X, y)
    assert not hasattr(est, "n_features_in_")


def test_names_survive_model_files_and_pickles(tmp_path):
    X, y = _frame()
    est = _fit(MLPClassifier((5,), max_iter=2, random_state=0), X, y)
    est.save(tmp_path / "m.xpnet")
    for back in (xpnet.load(tmp_path / "m.xpnet"), pickle.loads(pickle.dumps(est))):
        np.testing.assert_array_equal(back.feature_names_in_, est.feature_names_in_)
        with pytest.raises(ValueError, match=re.escape("\nFeature names must be in the same "
                                                       "order as they were in fit.")):
            back.predict(X[["b", "a", "c", "d"]])
        np.testing.assert_array_equal(back.predict(X), est.predict(X))
