"""Model files whose checksums are valid but whose metadata is not what xpnet writes: every
hostile or inconsistent field is refused with ModelFileError naming it, and a fuzzer over the
metadata of valid files finds nothing that loads as a different model or raises anything else.

The files here are re-saved through the container (valid SHA-256s), so what stands in the way
is the validation of the content, not the checksums."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import warnings
import zipfile
from collections import Counter
from typing import Any, Callable

import numpy as np
import pytest

import xpnet
from xpnet import MLPClassifier, MLPRegressor
from xpnet.backends import get_backend
from xpnet.errors import ModelFileError
from xpnet.estimators.sklearn_base import ConvergenceWarning
from xpnet.io import container, modelfile

from conftest import blobs

pytest.importorskip("hypothesis", reason="the fuzz test needs hypothesis (xpnet[test])")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

LABELS = np.array(["ant", "bee", "cat"])


def _data(n: int = 90) -> tuple[np.ndarray, np.ndarray]:
    return blobs(n=n, d=5, k=3, spread=2.0)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, tuple[str, Any]]:
    """name -> (path, the estimator loaded from it): a multiclass classifier with string
    labels (Adam), a Poisson regressor with two outputs (SGD, momentum), a checkpoint with
    early stopping (split, best weights, order, a RandomState) and one with validation_data
    (a Generator's state, the data's fingerprint)."""
    d = tmp_path_factory.mktemp("modelfiles")
    X, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier((6, 4), activation=["tanh", "logistic"], max_iter=3, dtype="float32",
                      random_state=0).fit(X, LABELS[y]).save(d / "clf.xpnet")
        MLPRegressor("poisson", (5,), solver="sgd", learning_rate_init=0.01, max_iter=3,
                     random_state=0).fit(X, np.abs(X[:, :2])).save(d / "reg.xpnet")
        MLPClassifier((4,), solver="sgd", early_stopping=True, validation_fraction=0.2,
                      n_iter_no_change=50, max_iter=3, random_state=0
                      ).fit(X, y % 2, checkpoint=d / "rs.ckpt")
        MLPClassifier((4,), max_iter=2, random_state=np.random.default_rng(0)).fit(
            X[:60], y[:60], validation_data=(X[60:], y[60:]), checkpoint=d / "gen.ckpt")
    names = {"clf": "clf.xpnet", "reg": "reg.xpnet", "ckpt": "rs.ckpt", "gen": "gen.ckpt"}
    return {k: (str(d / v), xpnet.load(d / v)) for k, v in names.items()}


def _resave(path: str, arrays: dict, meta: dict) -> None:
    """Through container.save (valid checksums); meta it will not write (a layer_dims against
    the arrays, the reserved format keys) goes into meta.json by hand, checksums still valid."""
    try:
        container.save(path, arrays, meta)
        return
    except (ValueError, TypeError):
        container.save(path, arrays, {})
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist() if n != "MANIFEST.sha256"}
    members["meta.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr("MANIFEST.sha256", "".join(
            f"{hashlib.sha256(v).hexdigest()}  {k}\n" for k, v in members.items()))


def _mutated(files, name: str, change: Callable[[dict, dict], Any], tmp_path) -> str:
    arrays, meta = container.load(files[name][0])
    meta = copy.deepcopy(meta)
    arrays = {k: v.copy() for k, v in arrays.items()}
    change(arrays, meta)
    path = str(tmp_path / f"bad-{name}.xpnet")
    _resave(path, arrays, meta)
    return path


def _set(*path: Any, value: Any) -> Callable[[dict, dict], None]:
    def change(arrays: dict, meta: dict) -> None:
        obj = meta
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = value
    return change


def _delete(*path: Any) -> Callable[[dict, dict], None]:
    def change(arrays: dict, meta: dict) -> None:
        obj = meta
        for key in path[:-1]:
            obj = obj[key]
        del obj[path[-1]]
    return change


def _array(key: str, edit: Callable[[np.ndarray], Any]) -> Callable[[dict, dict], None]:
    def change(arrays: dict, meta: dict) -> None:
        out = edit(arrays[key])
        if out is None:
            del arrays[key]
        else:
            arrays[key] = out
    return change


def _put(a: np.ndarray, index: Any, value: Any) -> np.ndarray:
    a = a.copy()
    a[index] = value
    return a


MODEL_CASES = {
    # the four of the issue
    "estimator name not a string": ("clf", _set("estimator", value=["MLPClassifier"]),
                                    r"estimator is \['MLPClassifier'\]; expected"),
    "unknown output activation": ("clf", _set("activations", 2, value="swish"),
                                  r"activations\[2\] is 'swish'; expected 'softmax'"),
    "n_features_in disagrees with W[1]": ("clf", _set("n_features_in", value=4),
                                          r"n_features_in is 4; expected 5, the inputs of W\[1\]"),
    "non-finite weight": ("clf", _array("W[1]", lambda a: _put(a, (0, 0), np.nan)),
                          r"array W\[1\] holds NaN or infinity"),
    # estimator, network, data
    "unknown estimator": ("clf", _set("estimator", value="MLPRanker"), r"estimator is 'MLPRanker'"),
    "unknown hidden activation": ("clf", _set("activations", 0, value="gelu"),
                                  r"activations\[0\] is 'gelu'; expected one of"),
    "hidden activation disagrees with params": ("clf", _set("activations", 0, value="relu"),
                                                r"params.activation .* disagrees with activations"),
    "output activation of another kind": ("clf", _set("activations", 2, value="sigmoid"),
                                          r"activations\[2\] is 'sigmoid'; expected 'softmax'"),
    "activations of another length": ("clf", _set("activations", value=["tanh", "softmax"]),
                                      r"activations is .*; expected a list of 3"),
    "n_features_in as a string": ("clf", _set("n_features_in", value="5"), r"n_features_in is '5'"),
    "n_outputs disagrees with W[L]": ("clf", _set("n_outputs", value=2), r"n_outputs is 2"),
    "unknown dtype": ("clf", _set("dtype", value="float16"), r"dtype is 'float16'"),
    "dtype disagrees with the arrays": ("clf", _set("dtype", value="float64"),
                                       r"array W\[1\] is float32 \(6, 5\); expected float64"),
    "unknown target_kind": ("clf", _set("target_kind", value="regression"),
                            r"target_kind is 'regression'"),
    "target_kind disagrees with n_outputs": ("clf", _set("target_kind", value="binary"),
                                             r"activations\[2\] is 'softmax'; expected 'sigmoid'"),
    "classes unsorted": ("clf", _set("classes", "values", value=["bee", "ant", "cat"]),
                         r"classes.values is .*; expected distinct labels in sorted order"),
    "classes repeated": ("clf", _set("classes", "values", value=["ant", "ant", "cat"]),
                         r"classes.values is .*; expected distinct labels"),
    "classes too few": ("clf", _set("classes", "values", value=["ant", "bee"]),
                        r"classes.values is .*; expected a list of 3"),
    "classes truncated by their dtype": ("clf", _set("classes", "dtype", value="<U1"),
                                         r"classes.values .* held exactly by dtype <U1"),
    "classes of an unknown dtype": ("clf", _set("classes", "dtype", value="<M8[s]"),
                                    r"classes.dtype is '<M8\[s\]'"),
    "classes of the wrong type": ("clf", _set("classes", "values", value=["ant", 2, "cat"]),
                                  r"classes.values\[1\] is 2; expected a label of dtype <U3"),
    "classes missing": ("clf", _set("classes", value=None), r"classes is None"),
    "feature names of another length": ("clf", _set("feature_names_in", value=["a", "b"]),
                                        r"feature_names_in is \['a', 'b'\]"),
    "trained_on device not a device": ("clf", _set("trained_on", "device", value=[0]),
                                       r"trained_on.device is \[0\]"),
    # params
    "unknown param": ("clf", _set("params", "evil", value=1), r"params.evil is unknown"),
    "missing param": ("clf", _delete("params", "alpha"), r"params.alpha is missing"),
    "negative alpha": ("clf", _set("params", "alpha", value=-1.0), r"params.alpha is -1.0"),
    "non-finite alpha": ("clf", _set("params", "alpha", value="nan"), r"params.alpha is 'nan'"),
    "hidden_layer_sizes disagrees": ("clf", _set("params", "hidden_layer_sizes", value=[7, 4]),
                                     r"params.hidden_layer_sizes \[7, 4\] disagrees"),
    "unknown solver": ("clf", _set("params", "solver", value="newton"), r"params.solver"),
    "dropout of another length": ("clf", _set("params", "dropout", value=[0.1]),
                                  r"params.dropout is \[0.1\]"),
    "negative random_state": ("clf", _set("params", "random_state", value=-1),
                              r"params.random_state is -1"),
    "tf32 not a bool": ("clf", _set("params", "tf32", value="yes"), r"params.tf32 is 'yes'"),
    # optimizer, schedule, progress
    "unknown optimizer": ("clf", _set("optimizer", "name", value="rmsprop"),
                          r"optimizer.name is 'rmsprop'"),
    "negative Adam step": ("clf", _set("optimizer", "t", value=-1), r"optimizer.t is -1"),
    "zero learning rate": ("clf", _set("optimizer", "learning_rate", value=0),
                           r"optimizer.learning_rate is 0"),
    "state arrays miscounted": ("clf", _set("optimizer", "ms", "arrays", value=3),
                                r"optimizer.ms.arrays is 3; expected 6"),
    "unknown optimizer field": ("clf", _set("optimizer", "extra", value=0),
                                r"optimizer.extra is unknown"),
    "state array missing": ("clf", _array("opt/ms/1", lambda a: None),
                            r"array opt/ms/1 is missing"),
    "state array misshaped": ("clf", _array("opt/ms/0", lambda a: a.T.copy()),
                              r"array opt/ms/0 is float32 \(5, 6\); expected float32 \(6, 5\)"),
    "negative second moment": ("clf", _array("opt/vs/2", lambda a: _put(a, 0, -1.0)),
                               r"array opt/vs/2 holds negative values"),
    "non-finite first moment": ("clf", _array("opt/ms/3", lambda a: _put(a, 0, np.inf)),
                                r"array opt/ms/3 holds NaN or infinity"),
    "unknown array": ("clf", lambda arrays, meta: arrays.update(evil=np.zeros(3)),
                      r"array evil is unknown"),
    "unknown schedule": ("clf", _set("schedule", "name", value="cosine"),
                         r"schedule.name is 'cosine'"),
    "NaN best loss": ("clf", _set("schedule", "best_loss", value="nan"),
                      r"schedule.best_loss is 'nan'"),
    "zero patience": ("clf", _set("schedule", "n_iter_no_change", value=0),
                      r"schedule.n_iter_no_change is 0"),
    "negative n_iter": ("clf", _set("progress", "n_iter", value=-1), r"progress.n_iter is -1"),
    "n_iter beyond the curve": ("clf", _set("progress", "n_iter", value=99),
                                r"progress.n_iter is 99; expected an integer >= 0 and <= 3"),
    "NaN in the loss curve": ("clf", _set("progress", "loss_curve", 0, value="nan"),
                              r"progress.loss_curve\[0\] is 'nan'"),
    "loss not the curve's last": ("clf", _set("progress", "loss", value=0.5),
                                  r"progress.loss is 0.5"),
    "history too short": ("clf", lambda arrays, meta: meta["progress"]["history"].pop(),
                          r"progress.history is .*; expected a list of 3"),
    "unknown history field": ("clf", _set("progress", "history", 0, "extra", value=1),
                              r"progress.history\[0\].extra is unknown"),
    "validation curves disagree": ("clf", _set("progress", "val_scores", value=[]),
                                   r"progress.val_loss_curve and progress.val_scores disagree"),
    # the regressor
    "loss disagrees with the output": ("reg", _set("params", "loss", value="squared_error"),
                                       r"activations\[1\] is 'exp'; expected 'identity'"),
    "unknown loss": ("reg", _set("params", "loss", value="huber"), r"params.loss is 'huber'"),
    "classes for a regressor": ("reg", _set("classes", value={"dtype": "<i8", "values": [0, 1]}),
                                r"classes is .*; expected null"),
    "classifier kind for a regressor": ("reg", _set("target_kind", value="binary"),
                                        r"target_kind is 'binary'"),
    "velocities without momentum": ("reg", _set("optimizer", "momentum", value=0.0),
                                    r"optimizer.velocities.arrays is 4; expected 0"),
    "nesterov not a bool": ("reg", _set("optimizer", "nesterov", value="yes"),
                            r"optimizer.nesterov is 'yes'"),
    "regressor with a class_weight": ("reg", _set("params", "class_weight", value=None),
                                      r"params.class_weight is unknown"),
}

CHECKPOINT_CASES = {
    "MT19937 position past its key": ("ckpt", _set("training", "rng", "state", "state", "pos",
                                                   value=10 ** 6),
                                      r"training.rng.state.state.pos is 1000000; expected an "
                                      r"integer >= 0 and <= 624"),
    "MT19937 key too short": ("ckpt", lambda arrays, meta: meta["training"]["rng"]["state"][
        "state"]["key"].pop(), r"training.rng.state.state.key is .*; expected a list of 624"),
    "MT19937 key word too big": ("ckpt", _set("training", "rng", "state", "state", "key", 0,
                                              value=2 ** 32),
                                 r"training.rng.state.state.key\[0\] is 4294967296"),
    "unknown RNG kind": ("ckpt", _set("training", "rng", "kind", value="SystemRandom"),
                         r"training.rng.kind is 'SystemRandom'"),
    "RandomState of another generator": ("ckpt", _set("training", "rng", "state",
                                                      "bit_generator", value="PCG64"),
                                         r"training.rng.state.bit_generator is 'PCG64'"),
    "unknown stop reason": ("ckpt", _set("training", "stop", value="exploded"),
                            r"training.stop is 'exploded'"),
    "n_samples disagrees with the split": ("ckpt", _set("training", "n_samples", value=1000),
                                           r"not a partition of the training.n_samples = 1000"),
    "split rows overlap": ("ckpt", lambda arrays, meta: arrays.update(
        {"split/val": _put(arrays["split/val"], 0, arrays["split/train"][0])}),
        r"arrays split/train .* and split/val .* are not a partition"),
    "split row out of range": ("ckpt", _array("split/val", lambda a: _put(a, 0, 10 ** 9)),
                               r"are not a partition"),
    "split rows not integers": ("ckpt", _array("split/val", lambda a: a.astype(np.float64)),
                                r"array split/val is float64 .*; expected 1-D row indices"),
    "order not a permutation": ("ckpt", _array("order", lambda a: _put(a, 0, a[1])),
                                r"array order \(72 rows\) is not a permutation of the 72"),
    "non-finite best weights": ("ckpt", _array("best/W[1]", lambda a: _put(a, 0, -np.inf)),
                                r"array best/W\[1\] holds NaN or infinity"),
    "best weights not announced": ("ckpt", _set("training", "best", value=False),
                                   r"array best/W\[1\] is unknown"),
    "split not announced": ("ckpt", _set("training", "split", value=False),
                            r"array order \(72 rows\) is not a permutation of the 90"),
    "no optimizer state": ("ckpt", _set("optimizer", value=None), r"optimizer is null"),
    "unknown training field": ("ckpt", _set("training", "extra", value=1),
                               r"training.extra is unknown"),
    "bad fingerprint": ("gen", _set("training", "validation", "sha256", value="abc"),
                        r"training.validation.sha256 is 'abc'"),
    "PCG64 state negative": ("gen", _set("training", "rng", "state", "state", "state", value=-1),
                             r"training.rng.state.state.state is -1"),
    "PCG64 buffered word too big": ("gen", _set("training", "rng", "state", "uinteger",
                                                value=2 ** 40),
                                    r"training.rng.state.uinteger is 1099511627776"),
}


@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_hostile_model_file_is_refused_naming_the_field(files, tmp_path, case):
    name, change, match = MODEL_CASES[case]
    path = _mutated(files, name, change, tmp_path)
    with pytest.raises(ModelFileError, match=match) as info:
        xpnet.load(path)
    assert os.path.basename(path) in str(info.value)


@pytest.mark.parametrize("case", list(CHECKPOINT_CASES))
def test_hostile_checkpoint_is_refused_naming_the_field(files, tmp_path, case):
    name, change, match = CHECKPOINT_CASES[case]
    path = _mutated(files, name, change, tmp_path)
    with pytest.raises(ModelFileError, match=match):
        xpnet.load(path)
    with pytest.raises(ModelFileError, match=match):
        modelfile.read(path, training=True)


def test_resume_refuses_a_hostile_rng_state_before_numpy_sees_it(files, tmp_path):
    """NumPy trusts an MT19937 position: one past the key read out of bounds (a crash)."""
    name, change, match = CHECKPOINT_CASES["MT19937 position past its key"]
    path = _mutated(files, name, change, tmp_path)
    X, y = _data()
    est = MLPClassifier((4,), solver="sgd", early_stopping=True, validation_fraction=0.2,
                        n_iter_no_change=50, max_iter=4, random_state=0)
    with pytest.raises(ModelFileError, match=match):
        est.fit(X, y % 2, checkpoint=path, resume=True)
    assert not hasattr(est, "n_features_in_")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("bit_generator", ["PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"])
def test_checkpoints_of_every_bit_generator_resume(tmp_path, bit_generator):
    X, y = _data(30)
    gen = np.random.Generator(getattr(np.random, bit_generator)(0))
    est = MLPClassifier((3,), max_iter=1, random_state=gen)
    est.fit(X, y, checkpoint=tmp_path / "c")
    arrays, meta = modelfile.read(tmp_path / "c", training=True)
    state = modelfile.restore_training((arrays, meta), get_backend("numpy"))
    assert state.rng.gen.bit_generator.state["bit_generator"] == bit_generator
    assert state.rng.gen.random() == gen.random()  # the saved stream goes on where it was


def test_a_bare_generator_state_of_earlier_files_still_restores(files, tmp_path):
    def bare(arrays: dict, meta: dict) -> None:
        meta["training"]["rng"] = meta["training"]["rng"]["state"]

    path = _mutated(files, "gen", bare, tmp_path)
    saved = modelfile.read(files["gen"][0], training=True)
    state = modelfile.restore_training(modelfile.read(path, training=True),
                                       get_backend("numpy"))
    assert state.rng.state == modelfile.restore_training(saved, get_backend("numpy")).rng.state


# ----------------------------------------------------------------- valid files still load

@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("make, target", [
    (lambda: MLPClassifier((3,), max_iter=2, random_state=0), lambda y: y % 2 == 1),
    (lambda: MLPClassifier(4, activation="logistic", max_iter=2, random_state=0),
     lambda y: (y * 2.0).astype(np.float32)),
    (lambda: MLPClassifier((), max_iter=2, random_state=0), lambda y: LABELS[y].astype("S")),
    (lambda: MLPClassifier((3, 2), dropout=[0.1, 0.0], class_weight={0: 2.0}, max_iter=2,
                           random_state=0), lambda y: y),
    (lambda: MLPClassifier((3,), max_iter=2, random_state=0, solver="sgd", momentum=0),
     lambda y: np.array(["x", 1, "y"], dtype=object)[y].astype(str).astype(object)),
    (lambda: MLPClassifier((3,), max_iter=2, random_state=0),
     lambda y: np.stack([y == 0, y == 1, y == 2, y != 1], axis=1).astype(int)),
    (lambda: MLPRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0, verbose=0,
                          dtype="float64", clip_norm=1.0), lambda y: np.stack([y, -y], 1)),
    (lambda: MLPRegressor("poisson", (3,), max_iter=2, random_state=0), lambda y: y),
])
def test_every_kind_of_valid_file_loads_as_saved(tmp_path, make, target):
    X, y = _data(60)
    est = make().fit(X, target(y))
    est.save(tmp_path / "m.xpnet")
    back = xpnet.load(tmp_path / "m.xpnet")
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    if hasattr(est, "classes_"):
        np.testing.assert_array_equal(back.classes_, est.classes_)
        assert back.classes_.dtype == est.classes_.dtype


def test_keys_other_tools_add_at_the_top_are_left_alone(files, tmp_path):
    """The CLI records its dataset in the meta: not part of the model, not refused."""
    path = _mutated(files, "clf", _set("dataset", value={"name": "iris"}), tmp_path)
    X, _ = _data()
    np.testing.assert_array_equal(xpnet.load(path).predict_proba(X),
                                  files["clf"][1].predict_proba(X))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_save_refuses_what_load_would_refuse(tmp_path):
    X, y = _data(60)
    est = MLPClassifier((4,), max_iter=2, random_state=0).fit(X, y)
    path = tmp_path / "m.xpnet"
    est.set_params(hidden_layer_sizes=(9,))  # the fitted network stays 5-4-3
    with pytest.raises(ValueError, match=r"cannot save .*: params.hidden_layer_sizes \[9\] "
                                         r"disagrees with layer_dims \[5, 4, 3\]"):
        est.save(path)
    est.set_params(hidden_layer_sizes=(4,))
    est.coefs_ = [np.full_like(c, np.nan) for c in est.coefs_]
    with pytest.raises(ValueError, match=r"cannot save .*array W\[1\] holds NaN"):
        est.save(path)
    assert not path.exists()


# ------------------------------------------------------------------------------ the fuzzer

_NAMES = ["inf", "-inf", "nan", "", "auto", "relu", "tanh", "logistic", "sigmoid", "softmax",
          "identity", "exp", "float32", "float64", "float16", "MLPClassifier", "MLPRegressor",
          "binary", "multiclass", "multilabel", "continuous", "sgd", "adam", "constant",
          "RandomState", "Generator", "PCG64", "MT19937", "Philox", "<f8", "<i8", "<U1", "|S3",
          "|b1", "object", "O", "W[1]"]
_SCALARS = (st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70)
            | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6)
            | st.sampled_from(_NAMES))
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


def _tweaks(old: Any) -> list[Any]:
    """Values near ``old``: off by one, of the next type, non-finite, reordered, cut."""
    if isinstance(old, bool):
        return [not old, int(old), str(old).lower()]
    if isinstance(old, int):
        return [old + 1, old - 1, -old - 1, 0, 2 ** 63, float(old), str(old)]
    if isinstance(old, float):
        return [float("nan"), float("inf"), -float("inf"), -old, 0.0, old * 2, "nan", "inf",
                str(old), int(old)]
    if isinstance(old, str):
        return [old.upper(), old + "x", old[:-1], [old]]
    if isinstance(old, list):
        return [old[::-1], old[:-1], old + old[-1:], [], old[1:] + old[:1], {"0": old}]
    if isinstance(old, dict):
        return [{}, list(old.values())] + [{k: v for k, v in old.items() if k != drop}
                                           for drop in list(old)[:3]]
    return []


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in the meta (long lists: their first, second and last entries)."""
    out = [prefix]
    if isinstance(obj, dict):
        for key, value in obj.items():
            out += _paths(value, prefix + (key,))
    elif isinstance(obj, list):
        for i in range(len(obj)) if len(obj) <= 6 else (0, 1, len(obj) - 1):
            out += _paths(obj[i], prefix + (i,))
    return out


def _outcome(path: str, original: Any, X: np.ndarray, checkpoint: bool) -> str:
    """"refused" (ModelFileError) or "loaded", after checking that the loaded model is the
    original one (the arrays were not touched): same outputs, labels as the file says."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a device that is not here, feature names, ...
        try:
            back = xpnet.load(path)
            if checkpoint:
                modelfile.restore_training(modelfile.read(path, training=True),
                                           get_backend("numpy"))
        except ModelFileError:
            return "refused"
        if isinstance(original, MLPRegressor):
            np.testing.assert_array_equal(back.predict(X), original.predict(X))
            return "loaded"
        np.testing.assert_array_equal(back.predict_proba(X), original.predict_proba(X))
        if original._target_kind == "multilabel":
            np.testing.assert_array_equal(back.predict(X), original.predict(X))
        else:
            index = np.searchsorted(original.classes_, original.predict(X))
            np.testing.assert_array_equal(back.predict(X), back.classes_[index])
    return "loaded"


def test_fuzzed_metadata_is_refused_or_loads_the_same_model(files, tmp_path_factory):
    """One meta field at a time: replaced (a near value, another type, non-finite, random
    JSON), deleted, or given an unknown key or entry; re-saved with valid checksums. Loading
    raises ModelFileError or gives the original model: never another exception, never a
    different model."""
    X, _ = _data()
    loaded = {name: container.load(path) for name, (path, _) in files.items()}
    paths = {name: _paths(meta) for name, (_, meta) in loaded.items()}
    target = str(tmp_path_factory.mktemp("fuzz") / "fuzzed.xpnet")
    outcomes: Counter = Counter()

    @settings(max_examples=200, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(files)), label="file")
        arrays, meta = loaded[name]
        meta = copy.deepcopy(meta)
        where = data.draw(st.sampled_from(paths[name]), label="field")
        parent = meta
        for key in where[:-1]:
            parent = parent[key]
        old = parent[where[-1]] if where else meta
        ops = ["replace", "delete", "add"] if where else ["add"]
        op = data.draw(st.sampled_from(ops), label="op")
        if op == "replace":
            tweaks = _tweaks(old)
            new = data.draw(st.sampled_from(tweaks) | _JSON if tweaks else _JSON, label="new")
            parent[where[-1]] = new
        elif op == "delete":
            del parent[where[-1]]
        elif isinstance(old, dict):
            old[data.draw(st.text(min_size=1, max_size=6), label="key")] = data.draw(_JSON)
        elif isinstance(old, list):
            old.append(copy.deepcopy(old[-1]) if old and data.draw(st.booleans())
                       else data.draw(_JSON))
        else:
            parent[where[-1]] = [old, data.draw(_JSON)]
        _resave(target, arrays, meta)
        outcomes[_outcome(target, files[name][1], X, "training" in loaded[name][1])] += 1

    fuzz()
    print(f"\nfuzzed model files: {dict(outcomes)}")
    assert sum(outcomes.values()) == 200
    assert outcomes["refused"] >= 100 and outcomes["loaded"] >= 1


def test_files_from_before_the_newer_parameters_still_load(tmp_path):
    """A file whose params lack tf32, init, distributed, class_weight (and loss) loads; init
    takes "he", the initialisation such a file's model was made with."""
    import warnings

    from xpnet.io import container

    X = np.random.default_rng(0).standard_normal((40, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for est, y in ((xpnet.MLPClassifier((4,), max_iter=2), np.arange(40) % 2),
                       (xpnet.MLPRegressor(hidden_layer_sizes=(4,), max_iter=2), X[:, 0])):
            est.fit(X, y)
            path = tmp_path / f"{type(est).__name__}.xpnet"
            est.save(path)
            arrays, meta = container.load(path)
            meta = {k: v for k, v in meta.items() if k not in ("format", "format_version")}
            for key in ("tf32", "init", "distributed", "class_weight", "loss"):
                meta["params"].pop(key, None)
            container.save(path, arrays, meta)
            back = xpnet.load(path)
            assert back.get_params()["init"] == "he" and back.get_params()["tf32"] is False
            np.testing.assert_array_equal(back.predict(X), est.predict(X))
