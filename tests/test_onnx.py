"""``est.to_onnx()``: the ONNX model of the prediction path, run by onnxruntime, answers as
``predict_proba`` / ``predict`` do (float32 rtol 1e-5, float64 rtol 1e-12) for every output
activation (softmax, sigmoid binary and multilabel, identity, exp), several hidden ones, both
dtypes, batch sizes never seen in training and a single row; and it is xpnet's own forward
pass (:mod:`xpnet.io.onnx` has no equations of its own) that builds the graph."""

from __future__ import annotations

import ast
import json
import pathlib
import sys
import warnings
from typing import Any

import numpy as np
import pytest

pytest.importorskip("ndonnx")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import xpnet  # noqa: E402
from xpnet.estimators.sklearn_base import ConvergenceWarning, NotFittedError  # noqa: E402
from xpnet.io.onnx import to_onnx  # noqa: E402

N_TRAIN, N_FEATURES = 60, 4
# float32: onnxruntime's kernels (its GEMM, exp, tanh) round differently from NumPy's, a few
# ulps; atol only for entries that are differences near 0 (1 - p with p ~ 1, an identity
# output crossing 0)
TOL = {"float32": dict(rtol=1e-5, atol=1e-6), "float64": dict(rtol=1e-12, atol=1e-14)}
# hidden activations, one spec per case (every one of them in both dtypes); one model per case
# and dtype keeps this file quick (each export takes ndonnx ~0.5 s, whatever the size)
HIDDEN = {"multiclass": "relu", "multiclass_str": "tanh", "binary": ("leaky_relu", "sigmoid"),
          "binary_str": ("identity", "relu"), "multilabel": "tanh",
          "regression": ("leaky_relu", "sigmoid"), "regression2": "relu",
          "poisson": ("tanh", "identity")}


def data(case: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N_TRAIN, N_FEATURES))
    s = X @ rng.normal(size=(N_FEATURES, 3))
    if case == "multiclass":
        return X, np.argmax(s, axis=1) * 10 - 7  # numeric labels that are not 0..k-1
    if case == "multiclass_str":
        return X, np.array(["cat", "dog", "emu"])[np.argmax(s, axis=1)]
    if case == "binary":
        return X, np.where(s[:, 0] > 0, 3.0, -1.0)  # float labels
    if case == "binary_str":
        return X, np.where(s[:, 0] > 0, "yes", "no")
    if case == "multilabel":
        return X, (s > 0).astype(np.int64)
    if case == "regression":
        return X, s[:, 0]
    if case == "regression2":
        return X, s[:, :2]
    if case == "poisson":
        return X, rng.poisson(np.exp(0.5 * s[:, 0])).astype(np.float64)
    raise AssertionError(case)


# case -> its output activation g[L]
CASES = {"multiclass": "softmax", "multiclass_str": "softmax", "binary": "sigmoid",
         "binary_str": "sigmoid", "multilabel": "sigmoid", "regression": "identity",
         "regression2": "identity", "poisson": "exp"}


def fitted(case: str, dtype: str, hidden: Any = "relu", backend: str = "numpy",
           **kw: Any) -> Any:
    X, y = data(case)
    if case in ("regression", "regression2", "poisson"):
        est = xpnet.MLPRegressor(loss="poisson" if case == "poisson" else "squared_error",
                                 hidden_layer_sizes=(8, 5), activation=hidden, max_iter=30,
                                 learning_rate_init=0.01, dtype=dtype, random_state=0,
                                 backend=backend, **kw)
    else:
        est = xpnet.MLPClassifier(hidden_layer_sizes=(8, 5), activation=hidden, max_iter=30,
                                  learning_rate_init=0.01, dtype=dtype, random_state=0,
                                  backend=backend, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert est._net.g[-1] == CASES[case]
    return est


def session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def run(sess, X) -> dict[str, np.ndarray]:
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {"X": X})))


def batches():
    rng = np.random.default_rng(1)
    # batch sizes never used in training (N_TRAIN, and its minibatches of min(200, n)), one row
    return [rng.normal(size=(37, N_FEATURES)), rng.normal(size=(1, N_FEATURES)),
            3.0 * rng.normal(size=(101, N_FEATURES))]


def check_against_estimator(est, model):
    """Every output of ``model`` equals what ``est`` answers, for each test batch."""
    dt = est._dtype
    sess = session(model)
    for Xt in batches():
        out = run(sess, Xt.astype(dt))
        if est._target_kind == "continuous":
            assert set(out) == {"y"}
            want = est.predict(Xt)
            assert out["y"].dtype == want.dtype and out["y"].shape == want.shape
            np.testing.assert_allclose(out["y"], want, **TOL[dt])
            continue
        assert set(out) == {"proba", "label"}
        want = est.predict_proba(Xt)
        assert out["proba"].dtype == want.dtype and out["proba"].shape == want.shape
        np.testing.assert_allclose(out["proba"], want, **TOL[dt])
        labels = est.predict(Xt)
        kind = {p.key: p.value for p in model.metadata_props}["xpnet.label"]
        got = est.classes_[out["label"]] if kind == "index" else out["label"]
        assert out["label"].shape == labels.shape
        assert out["label"].dtype == (np.int64 if kind == "index" else labels.dtype)
        np.testing.assert_array_equal(got, labels)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_onnx_equals_predict(case, dtype):
    est = fitted(case, dtype, HIDDEN[case])
    model = est.to_onnx()
    onnx.checker.check_model(model, full_check=True)
    check_against_estimator(est, model)


@pytest.mark.parametrize("case,label_kind", [("multiclass", "values"), ("binary", "values"),
                                             ("multiclass_str", "index"),
                                             ("binary_str", "index"),
                                             ("multilabel", "indicator"),
                                             ("regression", None), ("poisson", None)])
def test_metadata_and_signature(case, label_kind):
    est = fitted(case, "float32")
    model = est.to_onnx()
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["xpnet.estimator"] == type(est).__name__
    assert meta["xpnet.dtype"] == "float32"
    assert meta["xpnet.target_kind"] == est._target_kind
    assert json.loads(meta["xpnet.activations"]) == list(est._net.g)
    assert meta.get("xpnet.label") == label_kind
    if label_kind is not None:
        assert json.loads(meta["xpnet.classes"]) == est.classes_.tolist()
    (x,) = model.graph.input
    assert x.name == "X"
    assert x.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    dims = x.type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and dims[1].dim_value == N_FEATURES
    float64 = fitted(case, "float64").to_onnx()
    assert float64.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE


def test_writes_the_file(tmp_path):
    est = fitted("multiclass_str", "float32")
    path = tmp_path / "model.onnx"
    model = est.to_onnx(path)
    assert path.read_bytes() == model.SerializeToString()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # no temporary left
    (tmp_path / "plain").write_bytes(b"")  # the permissions of any new file (the umask's)
    assert path.stat().st_mode == (tmp_path / "plain").stat().st_mode
    with pytest.raises(FileNotFoundError, match="directory"):
        est.to_onnx(tmp_path / "missing" / "model.onnx")
    loaded = onnx.load(str(path))
    check_against_estimator(est, loaded)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    Xt = batches()[0].astype(np.float32)
    labels = json.loads(sess.get_modelmeta().custom_metadata_map["xpnet.classes"])
    np.testing.assert_array_equal(np.array(labels)[run(sess, Xt)["label"]], est.predict(Xt))


@pytest.mark.parametrize("backend", ["torch", "array_api_strict"])
def test_other_backends(backend):
    """A model fitted on another backend exports its weights through host copies."""
    if not xpnet.available_backends()[backend][0]:
        pytest.skip(f"{backend} is not usable here")
    est = fitted("multiclass", "float32", "tanh", backend=backend)
    check_against_estimator(est, est.to_onnx())


def test_loaded_model_exports(tmp_path):
    est = fitted("binary_str", "float64", "relu")
    est.save(tmp_path / "m.xpnet")
    loaded = xpnet.load(tmp_path / "m.xpnet", backend="numpy")
    model = loaded.to_onnx(tmp_path / "m.onnx")
    check_against_estimator(est, model)
    assert model.SerializeToString() == est.to_onnx().SerializeToString()


def test_feature_names_in_metadata():
    pd = pytest.importorskip("pandas")
    X, y = data("regression")
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    est = xpnet.MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0,
                             backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(df, y)
    meta = {p.key: p.value for p in est.to_onnx().metadata_props}
    assert json.loads(meta["xpnet.feature_names"]) == ["a", "b", "c", "d"]


def test_export_follows_the_weights():
    """The model is the network's current parameters run through the equations: new weights
    give a new graph whose outputs are the estimator's new answers (not the old ones)."""
    est = fitted("multiclass", "float64", "tanh")
    Xt = batches()[0]
    before = run(session(est.to_onnx()), Xt)["proba"]
    rng = np.random.default_rng(7)
    est.coefs_ = [c + rng.normal(scale=0.5, size=c.shape) for c in est.coefs_]
    est.intercepts_ = [c - 0.3 for c in est.intercepts_]
    model = est.to_onnx()
    after = run(session(model), Xt)["proba"]
    assert np.abs(after - before).max() > 1e-2
    check_against_estimator(est, model)


@pytest.mark.parametrize("case,absent,present", [
    ("multiclass", "Softmax", {"ReduceMax", "Exp", "ReduceSum", "Div"}),  # exp(Z - max) / sum
    ("binary", "Sigmoid", {"Abs", "Exp", "Where"}),  # exp(-|Z|), two branches
    ("poisson", "Softplus", {"Exp"}),
])
def test_graph_is_xpnets_equations(case, absent, present):
    """The graph holds xpnet's formulations of the activations (softmax shifted by the column
    max, the overflow-free sigmoid), not ONNX's built-in operators: the equations of
    :mod:`xpnet.core.activations` were run to build it."""
    ops = op_types(fitted(case, "float32").to_onnx().graph)
    assert absent not in ops
    assert present <= ops
    assert "MatMul" in ops


def op_types(graph) -> set[str]:
    """The operators of ``graph`` and of its subgraphs (ndonnx puts a matrix product, a
    reduction, in an If on whether the array is empty)."""
    ops = set()
    for node in graph.node:
        ops.add(node.op_type)
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                ops |= op_types(a.g)
            ops |= set().union(*(op_types(g) for g in a.graphs)) if a.graphs else set()
    return ops


def test_no_second_copy_of_the_forward_pass():
    """xpnet.io.onnx has no equations of its own: no matrix product and no activation function;
    it imports xpnet.core.forward's ``forward``."""
    path = pathlib.Path(xpnet.__file__).parent / "io" / "onnx.py"
    tree = ast.parse(path.read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.BinOp)
                and isinstance(n.op, ast.MatMult)]
    called = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call)
              and isinstance(n.func, ast.Attribute)}
    assert not called & {"matmul", "exp", "tanh", "maximum", "where", "abs", "sum", "max",
                         "tensordot", "vecdot"}
    imports = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
               for a in n.names}
    assert ("xpnet.core.forward", "forward") in imports


def test_not_fitted():
    with pytest.raises(NotFittedError):
        xpnet.MLPClassifier().to_onnx()


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ndonnx", None)  # `import ndonnx` raises ImportError
    est = fitted("binary", "float32")
    with pytest.raises(ImportError, match=r"pip install 'xpnet\[onnx\]'"):
        to_onnx(est)
