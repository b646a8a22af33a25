"""Model files, checkpoints and resuming: save -> load -> predict, across backends; resume
continues bit for bit."""

from __future__ import annotations

import json
import pickle
import zipfile
from functools import partial

import numpy as np
import pytest

import xpnet
from xpnet import MLPClassifier, MLPRegressor
from xpnet.estimators.sklearn_base import ConvergenceWarning
from xpnet.errors import ModelFileError

from conftest import blobs, usable

CONV = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


data = partial(blobs, d=5, spread=2.0)  # 60 examples, 5 features, 3 classes


LABELS = np.array(["setosa", "versicolor", "virginica"])


def need(name: str) -> None:
    ok, reason = usable(name)
    if not ok:
        pytest.skip(reason)


# --------------------------------------------------------------------------- save / load
@CONV
@pytest.mark.parametrize("name", ["numpy", "torch", "array_api_strict"])
def test_save_load_predict_identical_on_the_same_backend(tmp_path, name):
    need(name)
    X, y = data()
    est = MLPClassifier(hidden_layer_sizes=(7, 4), activation=["tanh", "relu"], max_iter=4,
                        random_state=0, backend=name).fit(X, LABELS[y])
    path = tmp_path / "model.xpnet"
    est.save(path)
    back = xpnet.load(path)
    assert back._net.backend.name == name and type(back) is MLPClassifier
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    assert back.classes_.tolist() == LABELS.tolist() and back.classes_.dtype == LABELS.dtype
    assert back.loss_curve_ == est.loss_curve_ and back.n_iter_ == est.n_iter_
    assert back.history_ == est.history_ and back.get_params() == est.get_params()
    assert repr(back) == repr(est)
    assert back._optimizer.t == est._optimizer.t
    for a, b in zip(back._optimizer.state_dict()["ms"], est._optimizer.state_dict()["ms"]):
        np.testing.assert_array_equal(xpnet.to_numpy(a), xpnet.to_numpy(b))


@CONV
@pytest.mark.parametrize("source, target", [("torch", "numpy"), ("numpy", "torch"),
                                            ("numpy", "array_api_strict")])
def test_save_on_one_backend_load_on_another(tmp_path, source, target):
    need(source)
    need(target)
    X, y = data()
    est = MLPRegressor(hidden_layer_sizes=(6,), max_iter=3, random_state=0, dtype="float64",
                       backend=source).fit(X, X[:, 0] - X[:, 1])
    est.save(tmp_path / "m.xpnet")
    back = xpnet.load(tmp_path / "m.xpnet", backend=target)
    assert back._net.backend.name == target and back.backend == target
    np.testing.assert_allclose(back.predict(X), est.predict(X), rtol=1e-12, atol=1e-12)
    for a, b in zip(back.coefs_, est.coefs_):
        np.testing.assert_array_equal(a, b)  # the parameters themselves travel exactly


@CONV
def test_model_file_meta_is_strict_json_and_holds_no_pickle(tmp_path):
    X, y = data()
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, LABELS[y])
    est.save(tmp_path / "m.xpnet")
    with zipfile.ZipFile(tmp_path / "m.xpnet") as zf:
        def no_constants(token):
            raise AssertionError(f"non-standard JSON constant {token}")

        meta = json.loads(zf.read("meta.json"), parse_constant=no_constants)
        assert all(n.endswith((".json", ".npy", ".sha256")) for n in zf.namelist())
    assert meta["classes"] == {"dtype": LABELS.dtype.str, "values": LABELS.tolist()}
    assert meta["layer_dims"] == [5, 4, 3] and meta["activations"] == ["relu", "softmax"]
    assert meta["schedule"]["best_validation_score"] == "-inf"  # strict JSON for -inf


@CONV
def test_load_falls_back_to_numpy_when_the_backend_is_not_usable(tmp_path):
    ok, _ = usable("cupy")
    if ok:
        pytest.skip("cupy is usable here")
    X, y = data()
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y)
    est.set_params(backend="cupy", device=0)  # as if it had been trained on a GPU
    est.save(tmp_path / "gpu.xpnet")
    with pytest.warns(UserWarning, match="backend 'cupy'.*not usable here.*NumPy instead"):
        back = xpnet.load(tmp_path / "gpu.xpnet")
    assert back._net.backend.name == "numpy" and back.backend == "numpy"
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    with pytest.raises(xpnet.BackendError, match="cupy"):
        xpnet.load(tmp_path / "gpu.xpnet", backend="cupy")


@CONV
def test_a_loaded_model_keeps_training_where_it_stopped(tmp_path):
    X, y = data()
    kw = dict(hidden_layer_sizes=(5,), random_state=0, learning_rate_init=0.01)
    est = MLPClassifier(**kw).partial_fit(X, y, classes=[0, 1, 2])
    est.save(tmp_path / "m.xpnet")
    back = xpnet.load(tmp_path / "m.xpnet")
    est.partial_fit(X, y)
    back.partial_fit(X, y)  # same Adam moments and step count; the shuffle comes from
    # random_state=0 afresh at each call (scikit-learn's check_random_state), so it is the same
    assert back.loss_curve_ == est.loss_curve_ and back._optimizer.t == 2
    for a, b in zip(back.coefs_ + back.intercepts_, est.coefs_ + est.intercepts_):
        np.testing.assert_array_equal(a, b)


@CONV
def test_pickle_moves_device_arrays_to_numpy():
    need("torch")
    X, y = data()
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0,
                        backend="torch").fit(X, y)
    state = est.__getstate__()
    assert all(isinstance(w, np.ndarray) for w in state["_net"]["W"].values())
    assert all(isinstance(a, np.ndarray) for a in state["_optimizer"]["ms"])
    back = pickle.loads(pickle.dumps(est))
    assert back._net.backend.name == "torch"
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))


def test_load_rejects_files_that_are_not_estimators(tmp_path):
    from xpnet.io import container as serialization

    serialization.save(tmp_path / "other.xpnet", {"a": np.zeros(2)}, {"note": "hello"})
    with pytest.raises(ModelFileError, match="holds no xpnet estimator"):
        xpnet.load(tmp_path / "other.xpnet")
    (tmp_path / "junk.xpnet").write_bytes(b"not a zip")
    with pytest.raises(ModelFileError):
        xpnet.load(tmp_path / "junk.xpnet")


# --------------------------------------------------------------------------- checkpoints
CONFIGS = {
    "adam+dropout+early_stopping": dict(solver="adam", dropout=0.2, early_stopping=True,
                                        validation_fraction=0.2, n_iter_no_change=100),
    "nesterov+invscaling+l2+clip": dict(solver="sgd", momentum=0.9, learning_rate="invscaling",
                                        learning_rate_init=0.2, alpha=0.01, clip_norm=1.0),
    "adaptive": dict(solver="sgd", learning_rate="adaptive", tol=1e9, n_iter_no_change=1,
                     learning_rate_init=0.1),
}


def _est(backend: str, max_iter: int, **kw):
    params = dict(hidden_layer_sizes=(8, 6), batch_size=16, random_state=0, max_iter=max_iter,
                  backend=backend)
    params.update(kw)
    return MLPClassifier(**params)


def _same(a, b) -> None:
    for x, y in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(x, y)
    assert a.loss_curve_ == b.loss_curve_
    assert a.validation_scores_ == b.validation_scores_
    assert a.validation_loss_curve_ == b.validation_loss_curve_
    assert a.n_iter_ == b.n_iter_ and a.t_ == b.t_
    assert [h["learning_rate"] for h in a.history_] == [h["learning_rate"] for h in b.history_]


@CONV
@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_resume_continues_bit_for_bit(tmp_path, backend, config):
    """6 epochs straight == 3 epochs with a checkpoint, then resume=True up to 6."""
    need(backend)
    X, y = data(n=90)
    straight = _est(backend, 6, **CONFIGS[config]).fit(X, LABELS[y])
    ckpt = tmp_path / "run.ckpt"
    first = _est(backend, 3, **CONFIGS[config]).fit(X, LABELS[y], checkpoint=ckpt)
    assert first.n_iter_ == 3
    resumed = _est(backend, 6, **CONFIGS[config])  # a new process would start like this
    resumed.fit(X, LABELS[y], checkpoint=ckpt, resume=True)
    _same(resumed, straight)
    assert xpnet.load(ckpt).n_iter_ == 6  # the checkpoint moved on with the run


@CONV
@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_resume_with_validation_data_continues_bit_for_bit(tmp_path, backend, early_stopping):
    """validation_data (with early stopping: instead of the split, deciding the best weights)
    is passed again on resume; curves, best weights and parameters match the straight run."""
    need(backend)
    X, y = data(n=120)
    t = LABELS[y]
    kw = dict(dropout=0.2, early_stopping=early_stopping, n_iter_no_change=100)
    val = (X[90:], t[90:])
    straight = _est(backend, 6, **kw).fit(X[:90], t[:90], validation_data=val)
    ckpt = tmp_path / "run.ckpt"
    _est(backend, 3, **kw).fit(X[:90], t[:90], validation_data=val, checkpoint=ckpt)
    resumed = _est(backend, 6, **kw)
    resumed.fit(X[:90], t[:90], validation_data=val, checkpoint=ckpt, resume=True)
    _same(resumed, straight)
    assert len(resumed.validation_scores_) == 6 and resumed._split == (None, None)
    if early_stopping:
        assert resumed.best_validation_score_ == straight.best_validation_score_


@CONV
def test_resume_refuses_other_validation_data(tmp_path):
    X, y = data(n=90)
    ckpt = tmp_path / "c"
    _est("numpy", 2).fit(X[:60], y[:60], validation_data=(X[60:], y[60:]), checkpoint=ckpt)
    est = _est("numpy", 4)
    other = X[60:].copy()
    other[0, 0] += 1e-3
    with pytest.raises(ValueError, match=r"different run: validation_data 30 samples, sha256 "
                                         r"[0-9a-f]{12} \(this fit: 30 samples, sha256 "
                                         r"[0-9a-f]{12}\); pass the validation_data of the "
                                         r"checkpointed run again"):
        est.fit(X[:60], y[:60], validation_data=(other, y[60:]), checkpoint=ckpt, resume=True)
    with pytest.raises(ValueError, match=r"validation_data 30 samples.*\(this fit: none\)"):
        est.fit(X[:60], y[:60], checkpoint=ckpt, resume=True)
    assert not hasattr(est, "n_features_in_")
    _est("numpy", 2).fit(X[:60], y[:60], checkpoint=tmp_path / "plain")  # no validation_data
    with pytest.raises(ValueError, match=r"validation_data none \(this fit: 30 samples"):
        est.fit(X[:60], y[:60], validation_data=(X[60:], y[60:]), checkpoint=tmp_path / "plain",
                resume=True)
    est.fit(X[:60], y[:60], validation_data=(X[60:], y[60:]), checkpoint=ckpt, resume=True)
    assert est.n_iter_ == 4 and len(est.validation_loss_curve_) == 4


@CONV
def test_checkpoint_every_k_epochs_and_at_the_last(tmp_path, monkeypatch):
    from xpnet.io import modelfile

    written = []
    original = modelfile.write
    monkeypatch.setattr(modelfile, "write", lambda est, path, trainer=None, **kw: (
        written.append(est._progress.n_iter), original(est, path, trainer, **kw)))
    X, y = data()
    _est("numpy", 7).fit(X, y, checkpoint=tmp_path / "c", checkpoint_every=3)
    assert written == [3, 6, 7]
    assert xpnet.load(tmp_path / "c").n_iter_ == 7


@CONV
def test_resume_without_a_file_starts_a_new_run(tmp_path):
    X, y = data()
    a = _est("numpy", 3).fit(X, y, checkpoint=tmp_path / "new.ckpt", resume=True)
    b = _est("numpy", 3).fit(X, y)
    _same(a, b)
    assert (tmp_path / "new.ckpt").exists()


def test_resume_of_a_run_that_converged_does_no_more_epochs(tmp_path):
    X, y = data()
    kw = dict(tol=1e9, n_iter_no_change=2)
    done = _est("numpy", 50, **kw).fit(X, y, checkpoint=tmp_path / "c")
    assert done.n_iter_ == 4
    again = _est("numpy", 50, **kw).fit(X, y, checkpoint=tmp_path / "c", resume=True)
    _same(again, done)


@CONV
def test_resume_refuses_a_checkpoint_of_another_run(tmp_path):
    X, y = data()
    _est("numpy", 2).fit(X, y, checkpoint=tmp_path / "c")
    est = _est("numpy", 2).fit(X, y)
    coefs = [c.copy() for c in est.coefs_]
    est.set_params(hidden_layer_sizes=(5,))
    with pytest.raises(ValueError, match=r"written by a different run: network \[5, 8, 6, 3\]"):
        est.fit(X, y, checkpoint=tmp_path / "c", resume=True)
    with pytest.raises(ValueError, match="samples 60 .this fit: 30"):
        _est("numpy", 2).fit(X[:30], y[:30], checkpoint=tmp_path / "c", resume=True)
    with pytest.raises(ValueError, match="resume=True needs checkpoint=PATH"):
        est.fit(X, y, resume=True)
    for a, b in zip(est.coefs_, coefs):
        np.testing.assert_array_equal(a, b)
    est.set_params(hidden_layer_sizes=(8, 6))
    est.save(tmp_path / "saved.xpnet")
    with pytest.raises(ModelFileError, match="a saved model, not a checkpoint"):
        est.fit(X, y, checkpoint=tmp_path / "saved.xpnet", resume=True)


def test_divergence_keeps_the_last_good_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3))
    y = X @ [1.0, 2.0, -1.0]
    est = MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", momentum=0.0,
                       learning_rate_init=0.01, batch_size=8, max_iter=2, random_state=0)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y, checkpoint=tmp_path / "c")
    est.set_params(learning_rate_init=1e3, max_iter=20)
    with pytest.raises(xpnet.DivergenceError):
        est.fit(X, y * 1e6, checkpoint=tmp_path / "c")
    back = xpnet.load(tmp_path / "c")
    assert all(np.isfinite(c).all() for c in back.coefs_)


@pytest.mark.gpu
@CONV
def test_a_gpu_trained_model_serves_on_the_cpu(tmp_path):
    """Trained on CUDA (CuPy, else torch): the file and the pickle load onto NumPy."""
    name, device = ("cupy", 0) if usable("cupy")[0] else ("torch", "cuda")
    X, y = data()
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0, dtype="float64",
                        backend=name, device=device).fit(X, LABELS[y])
    cpu = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0, dtype="float64",
                        backend="numpy").fit(X, LABELS[y])
    np.testing.assert_allclose(est.loss_curve_, cpu.loss_curve_, rtol=1e-8)
    est.save(tmp_path / "gpu.xpnet")
    back = xpnet.load(tmp_path / "gpu.xpnet", backend="numpy")
    np.testing.assert_allclose(back.predict_proba(X), xpnet.to_numpy(est.predict_proba(X)),
                               rtol=1e-10)
    state = est.__getstate__()
    assert all(isinstance(w, np.ndarray) for w in state["_net"]["W"].values())
    Xd = est._net.backend.asarray(X)
    P = est.predict_proba(Xd)
    assert xpnet.backend_of(P) == est._net.backend  # stays on the GPU
