"""MLPClassifier / MLPRegressor: problems, outputs, backends, bad input, real data."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

import xpnet
from xpnet import MLPClassifier, MLPRegressor
from xpnet.estimators.sklearn_base import ConvergenceWarning, DataConversionWarning, NotFittedError
from xpnet.backends import BackendError

from conftest import blobs, usable

CONV = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def small(cls=MLPClassifier, **kw):
    base = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0, learning_rate_init=0.01)
    base.update(kw)
    return cls(**base)


def snapshot(est) -> dict:
    """Copies of everything a failed call must leave alone."""
    out = {"coefs": [c.copy() for c in est.coefs_], "intercepts": [c.copy() for c in
                                                                   est.intercepts_],
           "loss_curve": list(est.loss_curve_), "n_iter": est.n_iter_,
           "n_features_in": est.n_features_in_}
    if hasattr(est, "classes_"):
        out["classes"] = est.classes_.copy()
    return out


def assert_unchanged(est, before: dict) -> None:
    after = snapshot(est)
    for key, value in before.items():
        if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
            for a, b in zip(after[key], value):
                np.testing.assert_array_equal(a, b)
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(after[key], value)
        else:
            assert after[key] == value, key


# --------------------------------------------------------------------------- problems
@CONV
def test_multiclass_softmax_probabilities_and_labels():
    X, y = blobs()
    labels = np.array(["ant", "bee", "cat"])[y]
    est = small(max_iter=100).fit(X, labels)
    assert est.out_activation_ == "softmax" and est.n_outputs_ == 3
    assert list(est.classes_) == ["ant", "bee", "cat"]
    P = est.predict_proba(X)
    assert P.shape == (60, 3) and P.dtype == X.dtype == np.float64  # X's dtype, as scikit-learn
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-6)
    pred = est.predict(X)
    np.testing.assert_array_equal(pred, est.classes_[P.argmax(axis=1)])
    assert est.score(X, labels) == pytest.approx(np.mean(pred == labels))
    assert est.score(X, labels) > 0.9
    np.testing.assert_allclose(est.predict_log_proba(X), np.log(P), rtol=1e-6)


@CONV
def test_binary_uses_one_sigmoid_unit_and_threshold_half():
    X, y = blobs(k=2)
    est = small(max_iter=30, dtype="float64").fit(X, y * 10 + 3)  # labels 3 and 13
    assert est.out_activation_ == "logistic" and est.n_outputs_ == 1
    assert est.coefs_[-1].shape == (8, 1)
    P = est.predict_proba(X)
    assert P.shape == (60, 2)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    np.testing.assert_array_equal(est.predict(X), np.where(P[:, 1] > 0.5, 13, 3))


@CONV
def test_multilabel_indicator():
    X, y = blobs(n=80, k=4)
    Y = np.stack([y == 0, y >= 2, y % 2 == 1], axis=1).astype(int)
    est = small(max_iter=60, dtype="float64").fit(X, Y)
    assert est.out_activation_ == "logistic" and list(est.classes_) == [0, 1, 2]
    pred = est.predict(X)
    assert pred.shape == (80, 3) and set(np.unique(pred)) <= {0, 1}
    P = est.predict_proba(X)
    np.testing.assert_array_equal(pred, (P > 0.5).astype(int))
    assert est.score(X, Y) == pytest.approx(np.mean(np.all(pred == Y, axis=1)))
    assert est.score(X, Y) > 0.8


@CONV
def test_regression_1d_and_2d_targets():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((80, 3))
    Y = np.stack([X @ [1.0, -2.0, 0.5], X[:, 0] - X[:, 1]], axis=1)
    one = small(MLPRegressor, max_iter=200, hidden_layer_sizes=(16,)).fit(X, Y[:, 0])
    assert one.predict(X).shape == (80,) and one.out_activation_ == "identity"
    assert one.score(X, Y[:, 0]) > 0.9
    two = small(MLPRegressor, max_iter=200, hidden_layer_sizes=(16,)).fit(X, Y)
    assert two.predict(X).shape == (80, 2) and two.n_outputs_ == 2
    r2 = 1 - ((Y - two.predict(X)) ** 2).sum(0) / ((Y - Y.mean(0)) ** 2).sum(0)
    assert two.score(X, Y) == pytest.approx(r2.mean(), rel=1e-6)


@CONV
def test_column_vector_y_warns_and_is_raveled():
    X, y = blobs(k=2)
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        est = small().fit(X, y[:, None])
    np.testing.assert_array_equal(est.predict(X), small().fit(X, y).predict(X))


@CONV
def test_per_layer_activations_and_dropout_and_repr():
    X, y = blobs()
    est = small(hidden_layer_sizes=(6, 5), activation=["tanh", "logistic"], dropout=[0.2, 0.0],
                backend="numpy")
    assert est.summary() == ("MLPClassifier(?-6-5-?, tanh/logistic, backend=numpy, "
                             "dropout=[0.2, 0.0], learning_rate_init=0.01, max_iter=5, "
                             "random_state=0)")
    est.fit(X, y)
    assert est._net.g == ["tanh", "sigmoid", "softmax"]
    assert est.summary().startswith("MLPClassifier(4-6-5-3, tanh/sigmoid, softmax, "
                                    "backend=numpy")
    assert MLPClassifier().summary() == "MLPClassifier(?-100-?, relu, backend=auto)"
    # repr is scikit-learn's: the parameters that differ from the defaults, pasteable
    assert repr(MLPClassifier()) == "MLPClassifier()"
    assert " ".join(repr(small(backend="numpy")).split()) == (
        "MLPClassifier(backend='numpy', hidden_layer_sizes=(8,), learning_rate_init=0.01, "
        "max_iter=5, random_state=0)")
    assert repr(eval(repr(est))) == repr(est)  # pasteable: GridSearchCV's best_estimator_


@CONV
def test_one_class_trains_as_scikit_learns():
    """A single class (scikit-learn's LabelBinarizer: one output unit trained to 0): predict
    gives that class, predict_proba two columns [1 - p, p], as scikit-learn's."""
    X, y = blobs()
    ones = np.full(len(y), "only")
    est = small(hidden_layer_sizes=(3,)).fit(X, ones)
    assert est.classes_.tolist() == ["only"] and est.n_outputs_ == 1
    assert (est.predict(X) == "only").all() and est.score(X, ones) == 1.0
    P = est.predict_proba(X)
    assert P.shape == (len(y), 2)
    sk = pytest.importorskip("sklearn.neural_network")
    with pytest.warns(ConvergenceWarning):
        ref = sk.MLPClassifier(hidden_layer_sizes=(3,), max_iter=5, random_state=0,
                               learning_rate_init=0.01).fit(X, ones)
    np.testing.assert_allclose(P, ref.predict_proba(X), rtol=1e-9)


@CONV
def test_float64_stays_float64_and_float32_stays_float32():
    X, y = blobs()
    for dtype in ("float32", "float64"):
        est = small(dtype=dtype).fit(X.astype("float32"), y)
        assert est.coefs_[0].dtype == dtype and est.predict_proba(X).dtype == dtype


@CONV
def test_same_seed_same_model_bit_for_bit():
    X, y = blobs()
    a = small(dropout=0.3).fit(X, y)
    b = small(dropout=0.3).fit(X, y)
    for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(ca, cb)
    assert a.loss_curve_ == b.loss_curve_
    c = small(dropout=0.3, random_state=1).fit(X, y)
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


@CONV
def test_pickle_round_trip_and_clone():
    from sklearn.base import clone

    X, y = blobs()
    est = small().fit(X, np.array(["x", "y", "z"])[y])
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(again.classes_, est.classes_)
    assert again.loss_curve_ == est.loss_curve_
    again.partial_fit(X, np.array(["x", "y", "z"])[y])  # the optimizer came back too
    fresh = clone(est)
    assert not hasattr(fresh, "coefs_") and fresh.get_params() == est.get_params()


def test_unfitted_raises_not_fitted():
    est = MLPClassifier()
    for method in ("predict", "predict_proba", "score"):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            getattr(est, method)(np.zeros((2, 3)), *([np.zeros(2)] if method == "score" else []))
    assert not hasattr(est, "coefs_")


@CONV
def test_coefs_setter_round_trip():
    X, y = blobs()
    est = small().fit(X, y)
    coefs = [c * 0 for c in est.coefs_]
    est.coefs_ = coefs
    np.testing.assert_array_equal(est.coefs_[0], coefs[0])
    with pytest.raises(ValueError, match="coefs_ must be 2 arrays"):
        est.coefs_ = coefs[:1]


# --------------------------------------------------------------------------- backends
@CONV
def test_backend_arrays_stay_on_their_backend(backend):
    if backend.name == "numpy":
        pytest.skip("NumPy inputs are the host case")
    X, y = blobs(n=30)
    Xd, yd = backend.asarray(X, dtype="float64"), backend.asarray(y)
    est = small(max_iter=3, dtype="float64").fit(Xd, yd)  # backend="auto" follows X
    assert est._net.backend == backend
    pred, proba = est.predict(Xd), est.predict_proba(Xd)
    assert xpnet.backend_of(pred) == backend and xpnet.backend_of(proba) == backend
    host = small(max_iter=3, dtype="float64", backend=backend.name).fit(X, y)
    np.testing.assert_array_equal(xpnet.to_numpy(pred), host.predict(X))
    np.testing.assert_allclose(xpnet.to_numpy(proba), host.predict_proba(X), rtol=1e-12)
    assert est.score(Xd, yd) == host.score(X, y)


@CONV
def test_array_of_another_backend_is_refused():
    ok, reason = usable("torch")
    if not ok:
        pytest.skip(reason)
    import torch

    X, y = blobs(n=30)
    est = small(max_iter=2, backend="numpy").fit(X, y)
    before = snapshot(est)
    with pytest.raises(BackendError, match="torch.*this model lives on numpy"):
        est.predict(torch.tensor(X))
    with pytest.raises(BackendError, match="X is an array on torch.*estimator is set to numpy"):
        est.fit(torch.tensor(X), y)
    assert_unchanged(est, before)
    strict = small(max_iter=2, backend="array_api_strict").fit(X, y)
    with pytest.raises(BackendError, match="torch"):
        strict.predict(torch.tensor(X))


@CONV
def test_array_on_another_device_is_refused():
    ok, reason = usable("array_api_strict")
    if not ok:
        pytest.skip(reason)
    X, y = blobs(n=30)
    other = xpnet.get_backend("array_api_strict", "device1")
    Xd, yd = other.asarray(X), other.asarray(y)
    est = small(max_iter=2, backend="array_api_strict").fit(X, y)  # on CPU_DEVICE
    before = snapshot(est)
    with pytest.raises(BackendError, match=r"X is an array on array_api_strict, device=.*device1"
                                           r".* but this model lives on .*CPU_DEVICE"):
        est.predict(Xd)
    with pytest.raises(BackendError, match="device1.*estimator is set to.*CPU_DEVICE"):
        est.set_params(device="CPU_DEVICE").fit(Xd, yd)
    assert_unchanged(est, before)
    follows = small(max_iter=2).fit(Xd, yd)  # backend="auto": the model goes where X is
    assert follows._net.backend == other
    assert xpnet.backend_of(follows.predict_proba(Xd)) == other


# --------------------------------------------------------------------------- bad input
BAD_FIT = [
    ("nan in X", lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X), y),
     ValueError, "Input X contains NaN"),
    ("inf in X", lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 5, np.inf, X), y),
     ValueError, "Input X contains infinity"),
    ("too large for float32", lambda X, y: (X * 1e300, y), ValueError, "too large for dtype"),
    ("empty X", lambda X, y: (X[:0], y[:0]), ValueError, "0 sample"),
    ("no features", lambda X, y: (X[:, :0], y), ValueError, "0 feature"),
    ("1-D X", lambda X, y: (X[:, 0], y), ValueError, "Expected 2D array, got 1D array"),
    ("3-D X", lambda X, y: (X[:, :, None], y), ValueError, "Found array with dim 3"),
    ("strings in X", lambda X, y: (X.astype(str), y), TypeError, "X holds strings"),
    ("object strings in X", lambda X, y: (X.astype(object).astype(str).astype(object), y),
     TypeError, "X holds strings"),
    ("complex X", lambda X, y: (X + 1j, y), ValueError, "Complex data not supported"),
    ("short y", lambda X, y: (X, y[:-1]), ValueError, "y has 59 samples but X has 60"),
    ("y None", lambda X, y: (X, None), ValueError, "requires y to be passed"),
    ("continuous y", lambda X, y: (X, y + 0.5), ValueError, "Unknown label type: continuous"),
    ("nan in y", lambda X, y: (X, np.where(np.arange(60) == 3, np.nan, y)), ValueError,
     "Input y contains NaN"),
]


@pytest.mark.parametrize("case, make, exc, match", BAD_FIT, ids=[c[0] for c in BAD_FIT])
@CONV
def test_bad_fit_input_raises_and_leaves_the_model_unchanged(case, make, exc, match):
    X, y = blobs()
    kw = {"dtype": "float32"} if "float32" in case else {}
    est = small(**kw).fit(X, y)
    before = snapshot(est)
    Xb, yb = make(X, y)
    with pytest.raises(exc, match=match):
        est.fit(Xb, yb)
    assert_unchanged(est, before)
    with pytest.raises(exc, match=match):  # a new estimator fails the same way, unfitted
        fresh = small(**kw)
        fresh.fit(Xb, yb)
    assert not hasattr(fresh, "n_features_in_")


BAD_PARAMS = [
    (dict(backend="cuppy"), "unknown backend 'cuppy'; expected one of numpy"),
    (dict(solver="newton"), "unknown solver 'newton'; expected one of sgd, adam, lbfgs"),
    (dict(activation="swish"), "unknown activation 'swish'; expected one of relu"),
    (dict(activation=["relu", "nope"], hidden_layer_sizes=(3, 3)),
     "unknown activation 'nope' for hidden layer 2"),
    (dict(activation=["relu"], hidden_layer_sizes=(3, 3)), "one name per hidden layer"),
    (dict(learning_rate_init=0.0), r"learning_rate_init must be a number in \(0"),
    (dict(learning_rate_init=-1.0), r"learning_rate_init must be a number in \(0"),
    (dict(batch_size=0), r"batch_size must be an integer in \[1"),
    (dict(batch_size=-5), r"batch_size must be an integer in \[1"),
    (dict(hidden_layer_sizes=(10, 0)), "hidden_layer_sizes must be > 0"),
    (dict(hidden_layer_sizes=(-3,)), "hidden_layer_sizes must be > 0"),
    (dict(learning_rate="cyclic"), "unknown learning_rate 'cyclic'"),
    (dict(max_iter=0), r"max_iter must be an integer in \[1"),
    (dict(alpha=-1.0), r"alpha must be a number in \[0"),
    (dict(dtype="float16"), "dtype must be None .X's: float32 stays float32, anything else "
                            "float64., 'float32' or 'float64'; got 'float16'"),
    (dict(dropout=1.0), r"dropout must be a number in \[0, 1\)"),
    (dict(dropout=[0.1, 0.1]), "one per hidden layer"),
    (dict(clip_norm=0.0), r"clip_norm must be a number in \(0"),
    (dict(validation_fraction=1.0, early_stopping=True), "validation_fraction must be"),
    (dict(momentum=1.5), r"momentum must be a number in \[0, 1\]"),
    (dict(n_iter_no_change=0), "n_iter_no_change must be an integer"),
    (dict(device="cuda:0", backend="numpy"), "runs on the CPU only"),
]


@pytest.mark.parametrize("params, match", BAD_PARAMS, ids=[str(p) for p, _ in BAD_PARAMS])
@CONV
def test_bad_parameters_raise_at_fit_and_leave_the_model_unchanged(params, match):
    X, y = blobs()
    est = small().fit(X, y)
    before = snapshot(est)
    est.set_params(**params)  # never raises: scikit-learn checks parameters in fit
    with pytest.raises(ValueError, match=match):
        est.fit(X, y)
    assert_unchanged(est, before)


@CONV
def test_bad_predict_input_raises_and_leaves_the_model_unchanged():
    X, y = blobs()
    est = small().fit(X, np.array(["a", "b", "c"])[y])
    before = snapshot(est)
    with pytest.raises(ValueError, match="X has 3 features, but MLPClassifier is expecting 4"):
        est.predict(X[:, :3])
    with pytest.raises(ValueError, match="Input X contains NaN"):
        est.predict_proba(np.full((2, 4), np.nan))
    with pytest.raises(ValueError, match="Expected 2D array"):
        est.predict(X[0])
    with pytest.raises(ValueError, match=r"labels never seen at fit: \['d'\]"):
        est.score(X, np.array(["a", "b", "d"])[y])
    with pytest.raises(ValueError, match="y has 59 samples but X has 60"):
        est.score(X, np.array(["a", "b", "c"])[y][:-1])
    with pytest.raises(ValueError, match=r"labels never seen at fit: \['z'\]"):
        est.partial_fit(X, np.array(["a", "b", "z"])[y])
    assert_unchanged(est, before)


@CONV
def test_warm_start_and_partial_fit_refuse_other_classes_or_features():
    X, y = blobs()
    est = small(warm_start=True).fit(X, y)
    before = snapshot(est)
    with pytest.raises(ValueError, match="warm_start can only be used where `y` has the same"):
        est.fit(X[y < 2], y[y < 2])
    with pytest.raises(ValueError, match="X has 5 features, but MLPClassifier is expecting 4"):
        est.fit(np.hstack([X, X[:, :1]]), y)
    with pytest.raises(ValueError, match="the fitted network is 4-8-3"):
        est.set_params(hidden_layer_sizes=(9,)).fit(X, y)
    assert_unchanged(est, before)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        small().partial_fit(X, y)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        small(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])


def test_out_of_memory_is_a_clear_error_naming_batch_size_and_memory():
    X, y = blobs()
    est = MLPClassifier(hidden_layer_sizes=(2 ** 40,), batch_size=32, max_iter=1)
    with pytest.raises(MemoryError, match=r"out of memory on numpy.*batch_size=32 needs about "
                                          r"[\d.]+ TiB") as info:
        est.fit(X, y)
    assert isinstance(info.value, xpnet.DeviceMemoryError)
    assert not hasattr(est, "n_features_in_")


# --------------------------------------------------------------------------- validation_data
def _val_cost(est, X_val, y_val) -> float:
    """The validation cost recomputed from the model's own predictions (not from Z[L])."""
    m = len(X_val)
    if isinstance(est, MLPRegressor):
        D = est.predict(X_val).reshape(m, -1) - np.asarray(y_val, float).reshape(m, -1)
        return float((D ** 2).sum() / (2 * m))
    P = est.predict_proba(X_val)
    if est._target_kind == "binary":
        p, t = P[:, 1], (np.asarray(y_val) == est.classes_[1]).astype(float)
        return float(-np.mean(t * np.log(p) + (1 - t) * np.log(1 - p)))
    Y = (np.asarray(y_val)[:, None] == est.classes_[None, :]).astype(float)
    return float(-np.mean((Y * np.log(P)).sum(axis=1)))


VAL_PROBLEMS = {
    "multiclass": (MLPClassifier, lambda X, y: np.array(["a", "b", "c"])[y]),
    "binary": (MLPClassifier, lambda X, y: y % 2),
    "regression": (MLPRegressor, lambda X, y: X[:, 0] - 2 * X[:, 1]),
}


@pytest.mark.parametrize("problem", list(VAL_PROBLEMS))
def test_validation_curves_are_the_cost_and_score_of_each_epochs_model(problem):
    """partial_fit one epoch at a time: after each, the curves' last entries equal the cost and
    score() of the model's own predictions on the validation data."""
    cls, target = VAL_PROBLEMS[problem]
    X, y = blobs(n=90)
    t = target(X, y)
    Xtr, ttr, Xv, tv = X[:60], t[:60], X[60:], t[60:]
    est = small(cls, dtype="float64", learning_rate_init=0.05)
    extra = {"classes": np.unique(t)} if cls is MLPClassifier else {}
    for epoch in range(1, 5):
        est.partial_fit(Xtr, ttr, validation_data=(Xv, tv), **extra)
        extra = {}
        assert len(est.validation_loss_curve_) == len(est.validation_scores_) == epoch
        assert est.validation_loss_curve_[-1] == pytest.approx(_val_cost(est, Xv, tv), rel=1e-12)
        assert est.validation_scores_[-1] == pytest.approx(est.score(Xv, tv), rel=1e-12,
                                                           abs=1e-15)
        assert est.history_[-1]["val_loss"] == est.validation_loss_curve_[-1]
        assert est.history_[-1]["val_score"] == est.validation_scores_[-1]
    assert len(set(est.validation_loss_curve_)) == 4  # a new model each epoch


@CONV
@pytest.mark.parametrize("problem", list(VAL_PROBLEMS))
def test_fit_with_validation_data_scores_every_epoch_and_trains_as_without(problem):
    """Without early stopping, validation_data only adds curves: the training run (losses,
    final weights) is the very same, and the last entries are those of the final model."""
    cls, target = VAL_PROBLEMS[problem]
    X, y = blobs(n=90)
    t = target(X, y)
    kw = dict(dtype="float64", max_iter=6, batch_size=16, dropout=0.1)
    plain = small(cls, **kw).fit(X[:60], t[:60])
    est = small(cls, **kw).fit(X[:60], t[:60], validation_data=(X[60:], t[60:]))
    assert est.loss_curve_ == plain.loss_curve_ and est.n_iter_ == 6 and est.t_ == 6 * 60
    for a, b in zip(est.coefs_ + est.intercepts_, plain.coefs_ + plain.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert plain.validation_loss_curve_ is None and plain.validation_scores_ is None
    assert len(est.validation_loss_curve_) == len(est.validation_scores_) == 6
    assert est.validation_loss_curve_[-1] == pytest.approx(_val_cost(est, X[60:], t[60:]),
                                                           rel=1e-12)
    assert est.validation_scores_[-1] == pytest.approx(est.score(X[60:], t[60:]), rel=1e-12,
                                                       abs=1e-15)
    assert [h["val_loss"] for h in est.history_] == est.validation_loss_curve_
    assert [h["val_score"] for h in est.history_] == est.validation_scores_
    assert est.best_validation_score_ is None and est.best_loss_ == min(est.loss_curve_)


def test_early_stopping_with_validation_data_replaces_the_internal_split():
    X, y = blobs(n=120, seed=2)
    Xtr, ytr, Xv, yv = X[:80], y[:80], X[80:], y[80:]
    est = small(hidden_layer_sizes=(16,), max_iter=200, early_stopping=True, n_iter_no_change=5,
                validation_fraction=0.3, learning_rate_init=0.05, dtype="float64")
    est.fit(Xtr, ytr, validation_data=(Xv, yv))
    assert est.n_iter_ < 200 and est._split == (None, None)
    assert est.t_ == 80 * est.n_iter_  # every training sample, none held out
    scores = est.validation_scores_
    assert len(scores) == len(est.validation_loss_curve_) == est.n_iter_
    assert est.best_validation_score_ == max(scores)
    assert est.score(Xv, yv) == pytest.approx(max(scores), abs=1e-12)  # best weights restored
    assert scores.index(max(scores)) < est.n_iter_ - 5  # stopped 5+ epochs after the best


BAD_VALIDATION = [  # make(X_val, t_val) -> validation_data; t_val: the labels "a", "b", "c"
    ("not a pair", lambda X, t: (X,), ValueError, r"validation_data must be a pair \(X_val, "
                                                  r"y_val\); got a tuple of length 1"),
    ("a string", lambda X, t: "val", ValueError, "must be a pair.*got a str"),
    ("features", lambda X, t: (X[:, :3], t), ValueError,
     "validation_data X has 3 features but X has 4"),
    ("1-D X", lambda X, t: (X[:, 0], t), ValueError, "Expected 2D array.*validation_data X"),
    ("NaN in X", lambda X, t: (np.where(X > 2, np.nan, X), t), ValueError,
     "Input validation_data X contains NaN"),
    ("empty", lambda X, t: (X[:0], t[:0]), ValueError, "0 sample"),
    ("length", lambda X, t: (X, t[:-1]), ValueError, "validation_data: y has 19 samples but X "
                                                     "has 20"),
    ("unknown label", lambda X, t: (X, np.where(t == "a", "d", t)), ValueError,
     r"validation_data: y contains labels never seen at fit: \['d'\]"),
    ("indicator", lambda X, t: (X, (t[:, None] == np.array(["a", "b", "c"])).astype(int)),
     ValueError, "validation_data: y is multilabel with 3 column.*training y is multiclass"),
    ("strings X", lambda X, t: (X.astype(str), t), TypeError, "validation_data X holds strings"),
]


@CONV
@pytest.mark.parametrize("case, make, exc, match", BAD_VALIDATION,
                         ids=[c for c, *_ in BAD_VALIDATION])
def test_bad_validation_data_raises_before_anything_changes(case, make, exc, match):
    X, y = blobs()
    t = np.array(["a", "b", "c"])[y]
    est = small().fit(X[:40], t[:40])
    before = snapshot(est)
    bad = make(X[40:], t[40:])
    for call in (lambda: est.fit(X[:40], t[:40], validation_data=bad),
                 lambda: est.partial_fit(X[:40], t[:40], validation_data=bad)):
        with pytest.raises(exc, match=match):
            call()
        assert_unchanged(est, before)
        assert est.validation_loss_curve_ is None
    fresh = small()
    with pytest.raises(exc, match=match):
        fresh.fit(X[:40], t[:40], validation_data=bad)
    assert not hasattr(fresh, "n_features_in_")


@CONV
def test_bad_validation_data_for_a_regressor_or_a_multilabel_model():
    X, y = blobs()
    reg = small(MLPRegressor).fit(X[:40], X[:40, :2])
    before = snapshot(reg)
    with pytest.raises(ValueError, match="validation_data: y has 1 outputs but the model was "
                                         "fitted on 2"):
        reg.fit(X[:40], X[:40, :2], validation_data=(X[40:], X[40:, 0]))
    with pytest.raises(ValueError, match="validation_data has 1 sample.*R\\^2.*at least 2"):
        reg.fit(X[:40], X[:40, :2], validation_data=(X[40:41], X[40:41, :2]))
    with pytest.raises(ValueError, match="validation_data: a regressor needs numeric y"):
        reg.fit(X[:40], X[:40, :2], validation_data=(X[40:], np.array([["a", "b"]] * 20)))
    assert_unchanged(reg, before)
    Y = np.stack([y == 0, y == 1], axis=1).astype(int)
    multi = small().fit(X[:40], Y[:40])
    with pytest.raises(ValueError, match="validation_data: the model was fitted on a multilabel "
                                         "indicator of 2 labels"):
        multi.fit(X[:40], Y[:40], validation_data=(X[40:], y[40:]))
    multi.fit(X[:40], Y[:40], validation_data=(X[40:], Y[40:]))
    assert multi.validation_scores_[-1] == pytest.approx(multi.score(X[40:], Y[40:]))


@CONV
def test_validation_curves_keep_one_entry_per_epoch():
    """Epochs without validation_data are NaN in curves that exist (warm start, partial_fit)."""
    X, y = blobs()
    est = small(max_iter=2, warm_start=True).fit(X[:40], y[:40])
    assert est.validation_loss_curve_ is None
    est.fit(X[:40], y[:40], validation_data=(X[40:], y[40:]))
    est.partial_fit(X[:40], y[:40])
    assert len(est.loss_curve_) == len(est.validation_loss_curve_) == 5
    vl, vs = np.array(est.validation_loss_curve_), np.array(est.validation_scores_)
    assert np.isnan(vl[[0, 1, 4]]).all() and np.isfinite(vl[[2, 3]]).all()
    assert np.isnan(vs[[0, 1, 4]]).all() and np.isfinite(vs[[2, 3]]).all()
    assert [h["val_loss"] is None for h in est.history_] == [True, True, False, False, True]


@CONV
def test_validation_data_on_the_models_backend_stays_there():
    ok, reason = usable("torch")
    if not ok:
        pytest.skip(reason)
    import torch

    X, y = blobs()
    est = small(backend="torch", dtype="float64")
    est.fit(X[:40], y[:40], validation_data=(torch.tensor(X[40:]), torch.tensor(y[40:])))
    assert est.validation_scores_[-1] == pytest.approx(est.score(X[40:], y[40:]), abs=1e-15)
    with pytest.raises(BackendError, match="validation_data X is an array on torch.*this model "
                                           "lives on numpy"):
        small().fit(X[:40], y[:40], validation_data=(torch.tensor(X[40:]), y[40:]))


# --------------------------------------------------------------------------- real data
def _split_standardized(loader):
    from sklearn.model_selection import train_test_split

    X, y = loader(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0,
                                          stratify=None if y.dtype.kind == "f" else y)
    mu, sd = Xtr.mean(0), Xtr.std(0)
    sd[sd == 0] = 1.0
    return (Xtr - mu) / sd, (Xte - mu) / sd, ytr, yte


@pytest.mark.slow
@CONV
@pytest.mark.parametrize("dataset, params, at_least", [
    ("digits", dict(hidden_layer_sizes=(128,), max_iter=100, dropout=0.2), 0.97),
    ("breast_cancer", dict(hidden_layer_sizes=(32,), max_iter=200, alpha=1.0), 0.95),
], ids=["digits", "breast_cancer"])
def test_held_out_accuracy_on_real_data(dataset, params, at_least):
    import sklearn.datasets

    Xtr, Xte, ytr, yte = _split_standardized(getattr(sklearn.datasets, f"load_{dataset}"))
    est = MLPClassifier(**params, random_state=0, backend="numpy")
    est.fit(Xtr, ytr)
    accuracy = est.score(Xte, yte)
    print(f"{dataset} held-out accuracy {accuracy:.4f} after {est.n_iter_} epochs")
    assert accuracy >= at_least


@pytest.mark.slow
def test_diabetes_r2_at_least_scikit_learns_with_same_layers_and_epochs():
    from sklearn.datasets import load_diabetes
    from sklearn.neural_network import MLPRegressor as SkMLPRegressor

    Xtr, Xte, ytr, yte = _split_standardized(load_diabetes)
    params = dict(hidden_layer_sizes=(16,), max_iter=200, random_state=0,
                  learning_rate_init=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPRegressor(**params, backend="numpy", dtype="float64").fit(Xtr, ytr)
        sk = SkMLPRegressor(**params).fit(Xtr, ytr)
    r2, r2_sk = ours.score(Xte, yte), sk.score(Xte, yte)
    print(f"diabetes held-out R^2: xpnet {r2:.4f} ({ours.n_iter_} epochs), scikit-learn "
          f"{r2_sk:.4f} ({sk.n_iter_} epochs)")
    assert r2 >= r2_sk and r2 > 0.25
