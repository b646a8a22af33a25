"""The estimators' inputs: X (n_samples, n_features) and y checked, then moved to the backend.

Every check runs before an estimator changes anything, and every error says what was wrong,
what was expected and what to do. NumPy (or array-like) inputs are checked on the host and
moved once; arrays already on the model's backend stay there (the checks then read back a
single scalar, never the data).

Targets are encoded on the side where they live (host for NumPy, the device for backend
arrays) into ``Y`` with one row per example: one column for binary problems (Y = [y ==
classes[1]]), one-hot for multiclass, the 0/1 indicator itself for multilabel, the values for
regression.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np

from xpnet.estimators.sklearn_base import DataConversionWarning
from xpnet.backends import Backend, BackendError, backend_of, get_backend, to_numpy
from xpnet.training.streaming import is_sparse

__all__ = ["Target", "check_X", "check_host_X", "check_y_length", "classification_target",
           "input_dtype", "is_backend_array", "not_finite", "regression_target",
           "resolve_backend"]


def input_dtype(X: Any) -> str:
    """The dtype a fit with ``dtype=None`` computes in, as scikit-learn's: "float32" for float32
    X (NumPy, SciPy sparse, a backend array, a DataFrame of float32 columns), else "float64"."""
    dtype = getattr(X, "dtype", None)
    if dtype is None and hasattr(X, "dtypes"):  # a DataFrame: float32 if every column is
        names = {str(d) for d in X.dtypes}
        return "float32" if names == {"float32"} else "float64"
    return "float32" if str(dtype).rsplit(".", 1)[-1] == "float32" else "float64"


def is_backend_array(x: Any) -> bool:
    """Whether ``x`` is an array of a non-NumPy backend xpnet supports (CuPy, torch, strict)."""
    if isinstance(x, np.ndarray):
        return False
    try:
        return backend_of(x).name != "numpy"
    except TypeError:
        return False


def resolve_backend(backend: Any, device: Any, X: Any) -> Backend:
    """The Backend a fit runs on: ``backend="auto"`` follows an X already on a backend (its
    library and device); an explicit backend must agree with such an X."""
    if is_backend_array(X):
        where = backend_of(X)
        if isinstance(backend, str) and backend.lower() == "auto" and device is None:
            return where
        be = get_backend(backend, device)
        if be.name == where.name and device is None:
            be = where  # the backend asked for; X's device
        if be != where:
            raise BackendError(f"X is an array on {where} but the estimator is set to {be}; pass "
                               f"X as a NumPy array or on {be}, or set backend/device to match X")
        return be
    return get_backend(backend, device)


def _describe(x: Any) -> str:
    try:
        return f"an array on {backend_of(x)}"
    except TypeError:
        return f"a {type(x).__module__}.{type(x).__qualname__}"


def _check_place(x: Any, be: Backend, name: str) -> None:
    where = backend_of(x)
    if where != be:
        raise BackendError(f"{name} is {_describe(x)} but this model lives on {be}; pass a NumPy "
                           f"array, or an array on {be} (xpnet.get_backend({be.name!r}, "
                           f"{be.device!r}).asarray({name}))")


def not_finite(name: str, has_nan: bool, dtype: Any) -> ValueError:
    """The error for an input with NaN (``has_nan``) or infinity, as :func:`check_X` raises it."""
    what = "NaN" if has_nan else f"infinity or a value too large for dtype('{dtype}')"
    return ValueError(f"Input {name} contains {what}. xpnet cannot train on or predict from "
                      f"missing or infinite values: impute or drop them first (e.g. "
                      f"sklearn.impute.SimpleImputer)")


def _shape_checks(shape: tuple, name: str, n_features: int | None, estimator: str) -> None:
    if len(shape) != 2:
        if len(shape) <= 1:
            raise ValueError(f"Expected 2D array, got {'1D array' if shape else 'scalar'} "
                             f"instead: {name} has shape {shape}, but it must be (n_samples, "
                             f"n_features). Reshape your data either using array.reshape(-1, 1) "
                             f"if your data has a single feature or array.reshape(1, -1) if it "
                             f"contains a single sample.")
        raise ValueError(f"Found array with dim {len(shape)}. {estimator} expected <= 2: {name} "
                         f"must be (n_samples, n_features); got shape {shape}")
    if shape[0] < 1:
        raise ValueError(f"Found array with 0 sample(s) (shape={shape}) while a minimum of 1 "
                         f"is required. {name} is empty.")
    if shape[1] < 1:
        raise ValueError(f"Found array with 0 feature(s) (shape={shape}) while a minimum of 1 "
                         f"is required.")
    if n_features is not None and shape[1] != n_features:
        raise ValueError(f"X has {shape[1]} features, but {estimator} is expecting {n_features} "
                         f"features as input. Pass X with the {n_features} columns the model "
                         f"was fitted on.")


def _host_array(X: Any, name: str) -> np.ndarray:
    """``X`` as a NumPy array of numbers; sparse, complex, string and object-of-non-numbers
    inputs raise."""
    if X is None:
        raise ValueError(f"Expected array-like (array or non-string sequence), got None for {name}")
    if hasattr(X, "tocsr"):
        raise TypeError(f"{name} is a sparse matrix of a format xpnet does not take "
                        f"({type(X).__module__}.{type(X).__name__}); pass a SciPy or cupyx "
                        f"CSR or CSC matrix, or a dense array")
    try:
        A = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} cannot be read as a 2-D array of numbers: {exc}") from None
    if A.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {name} is {A.dtype}; pass its real part "
                         f"(or real and imaginary parts as separate features)")
    if A.dtype.kind in "USa" or (A.dtype.kind == "O" and any(isinstance(v, (str, bytes))
                                                             for v in A.flat)):
        raise TypeError(f"{name} holds strings ({A.dtype}); xpnet needs numbers: encode "
                        f"categorical features first (e.g. sklearn.preprocessing.OneHotEncoder)")
    if A.dtype.kind == "O":
        try:
            A = A.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} has dtype object with values that are not numbers: {exc}. "
                            f"Pass a numeric array") from None
    if A.dtype.kind not in "biuf":
        raise TypeError(f"{name} has dtype {A.dtype}; expected numbers (bool, int or float)")
    return A


def check_X(X: Any, be: Backend, dtype: str, *, n_features: int | None = None,
            estimator: str = "the estimator", name: str = "X", upload: bool = True) -> Any:
    """``X`` (n_samples, n_features) checked, cast to ``dtype`` and on ``be``'s device.

    A NumPy/array-like X is checked on the host and moved once (C order; ``upload=False``:
    kept on the host as a C-ordered NumPy array); an array of ``be`` stays on its device (a
    different backend or device raises BackendError).
    """
    if type(X).__module__.startswith("cupyx.scipy.sparse") and hasattr(X, "get"):
        X = X.get()  # cupyx CSR / CSC: its (sparse) values come to the host once
    if is_sparse(X):  # SciPy CSR / CSC: kept sparse on the host, rows made dense per batch
        return _checked_sparse(X, dtype, name, n_features, estimator)
    if is_backend_array(X):
        _check_place(X, be, name)
        xp = be.xp
        _shape_checks(tuple(X.shape), name, n_features, estimator)
        if xp.isdtype(X.dtype, "complex floating"):
            raise ValueError(f"Complex data not supported: {name} is {X.dtype}")
        if not xp.isdtype(X.dtype, ("real floating", "integral", "bool")):
            raise TypeError(f"{name} has dtype {X.dtype}; expected numbers")
        target = be.dtype(dtype)
        Xd = X if X.dtype == target else xp.astype(X, target)
        finite = xp.isfinite(Xd)
        if not bool(xp.all(finite)):  # one scalar read, not the data
            raise not_finite(name, bool(xp.any(xp.isnan(Xd))), dtype)
        return Xd
    A = _host_array(X, name)
    _shape_checks(A.shape, name, n_features, estimator)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow shows up as inf below
        A = np.ascontiguousarray(A, dtype=dtype)
    if not _host_all_finite(A):
        raise not_finite(name, bool(np.isnan(A).any()), dtype)
    return be.asarray(A) if upload else A


def check_host_X(X: Any, *, n_features: int | None = None, estimator: str = "the estimator",
                 name: str = "X") -> np.ndarray | None:
    """A dense host ``X`` as a NumPy array of numbers with its shape checked, neither cast nor
    checked for NaN/inf (not copied: one pass over it is the caller's, which casts and checks
    the values as it sends them to a device, raising :func:`not_finite`); None for an X that
    is not dense host data (a backend array, a sparse matrix): :func:`check_X` takes those."""
    if is_backend_array(X) or is_sparse(X) or hasattr(X, "tocsr"):
        return None
    A = _host_array(X, name)
    _shape_checks(A.shape, name, n_features, estimator)
    return A


def _checked_sparse(X: Any, dtype: str, name: str, n_features: int | None,
                    estimator: str) -> Any:
    """A SciPy sparse X as CSR in ``dtype`` (CSC, COO and the other formats converted, as
    scikit-learn converts them); its stored values numbers and finite."""
    if len(X.shape) != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape {X.shape}")
    _shape_checks(tuple(X.shape), name, n_features, estimator)
    if np.dtype(X.dtype).kind not in "biuf":
        raise TypeError(f"{name} has dtype {X.dtype}; expected numbers")
    A = X.tocsr().astype(dtype, copy=False)
    if not np.isfinite(A.data).all():
        raise not_finite(name, bool(np.isnan(A.data).any()), dtype)
    A.sort_indices()
    return A


def _host_all_finite(A: np.ndarray, rows: int = 1 << 16) -> bool:
    """np.isfinite(A).all() over blocks of rows: a memory-mapped X bigger than the host's
    memory is read once, never held (nor its boolean mask) whole."""
    return all(bool(np.isfinite(A[i:i + rows]).all()) for i in range(0, max(len(A), 1), rows))


def check_y_length(y: Any, n_samples: int, name: str = "y") -> None:
    """y must have one entry (row) per sample of X."""
    shape = tuple(y.shape) if hasattr(y, "shape") else (len(y),)
    if len(shape) == 0 or shape[0] != n_samples:
        raise ValueError(f"{name} has {shape[0] if shape else 0} samples but X has {n_samples}; "
                         f"Found input variables with inconsistent numbers of samples: "
                         f"[{n_samples}, {shape[0] if shape else 0}]. Pass one target per row "
                         f"of X")


def _y_array(y: Any, be: Backend, name: str = "y") -> tuple[Any, Any]:
    """(y, namespace): a backend array of ``be`` stays (namespace ``be.xp``); anything else
    becomes NumPy (namespace ``numpy``)."""
    if y is None:
        raise ValueError(f"requires y to be passed, but the target y is None. Expected "
                         f"array-like (array or non-string sequence), got None for {name}")
    if is_backend_array(y):
        _check_place(y, be, name)
        return y, be.xp
    if type(y).__module__.startswith("scipy.sparse") or hasattr(y, "tocsr"):
        raise TypeError(f"{name} is a sparse matrix; pass a dense array ({name}.toarray())")
    try:
        Y = np.asarray(y)
    except Exception as exc:
        raise ValueError(f"{name} cannot be read as an array: {exc}") from None
    if Y.dtype == object and Y.size and all(isinstance(v, str) for v in Y.flat):
        Y = Y.astype(str)  # labels that are all strings: a str array, as scikit-learn's
    return Y, np


def _column_to_1d(y: Any, xp: Any) -> Any:
    if y.ndim == 2 and y.shape[1] == 1:
        warnings.warn("A column-vector y was passed when a 1d array was expected. Please change "
                      "the shape of y to (n_samples, ), for example using ravel().",
                      DataConversionWarning, stacklevel=4)
        return xp.reshape(y, (-1,))
    return y


class Target(NamedTuple):
    """An encoded target: ``Y`` (n_samples, n_outputs) on the backend, in the model's dtype."""

    Y: Any
    kind: str                 # "binary", "multiclass", "multilabel" or "continuous"
    classes: np.ndarray | None
    out_activation: str


def _kind(y: Any, xp: Any) -> str:
    """NumPy's dtype kind letter for a host or backend array ('b', 'i', 'u', 'f', 'c', 'O', ...)."""
    if xp is np:
        return y.dtype.kind
    for kind, name in (("b", "bool"), ("i", "integral"), ("f", "real floating"),
                       ("c", "complex floating")):
        if xp.isdtype(y.dtype, name):
            return kind
    return "?"


def _all_finite(y: Any, xp: Any) -> bool:
    return bool(xp.all(xp.isfinite(y)))


def _check_no_missing(y: Any, xp: Any, name: str) -> None:
    if xp is np and y.dtype == object:
        if any(v is None or (isinstance(v, float) and v != v) for v in y.flat):
            raise ValueError(f"Input {name} contains NaN or None; every example needs a label")
    elif _kind(y, xp) == "f" and not _all_finite(y, xp):
        raise not_finite(name, bool(xp.any(xp.isnan(y))), y.dtype)


def classification_target(y: Any, n_samples: int, be: Backend, dtype: str, *,
                          classes: Any = None, multilabel_width: int | None = None,
                          estimator: str = "MLPClassifier") -> Target:
    """Y for a classifier: binary (1 column), multiclass (one-hot) or multilabel (indicator).

    ``classes`` (sorted labels, NumPy): the known classes (partial_fit, warm_start, score);
    labels outside them raise. Without it the classes are the sorted unique labels of ``y``.
    """
    y, xp = _y_array(y, be)
    check_y_length(y, n_samples)
    if y.ndim == 0 or y.ndim > 2:
        raise ValueError(f"y must be 1-D (n_samples,) labels or a 2-D (n_samples, n_labels) 0/1 "
                         f"indicator; got shape {tuple(y.shape)}")
    y = _column_to_1d(y, xp)
    _check_no_missing(y, xp, "y")
    target_dtype = be.dtype(dtype)
    kind = _kind(y, xp)
    if y.ndim == 2:  # multilabel indicator
        if kind not in "biuf":
            raise ValueError(f"a 2-D y is a multilabel indicator and must hold 0/1; got {y.dtype}")
        Yf = xp.astype(y, be.dtype(dtype) if xp is not np else np.dtype(dtype))
        if not bool(xp.all((Yf == 0) | (Yf == 1))):
            raise ValueError("Unknown label type: multiclass-multioutput. A 2-D y must be a "
                             "multilabel 0/1 indicator (n_samples, n_labels); for one label per "
                             "example pass a 1-D y")
        k = y.shape[1]
        if multilabel_width is not None and k != multilabel_width:
            raise ValueError(f"y has {k} labels but the model was fitted on {multilabel_width}")
        return Target(be.asarray(Yf) if xp is np else Yf, "multilabel", np.arange(k), "sigmoid")
    if multilabel_width is not None:
        raise ValueError(f"the model was fitted on a multilabel indicator of {multilabel_width} "
                         f"labels; y must be 2-D (n_samples, {multilabel_width})")
    if kind == "f":
        if not bool(xp.all(y == xp.round(y))):
            raise ValueError(f"Unknown label type: continuous. {estimator} expects discrete "
                             f"class labels; y holds non-integer values. Maybe you are trying "
                             f"to fit a classifier, which expects discrete classes on a "
                             f"regression target with continuous values: use MLPRegressor")
    try:
        # sorted: the standard leaves unique_values' order open (NumPy >= 2.3 hashes)
        found = np.unique(y) if xp is np else xp.sort(xp.unique_values(y))
    except TypeError as exc:
        raise TypeError(f"y mixes labels of types that cannot be sorted ({exc}); use one type "
                        f"(all str or all numbers)") from None
    found_host = to_numpy(found) if xp is not np else found
    if classes is None:  # one class trains as scikit-learn's: a binary output, Y = 0
        classes = found_host
    else:
        unseen = np.setdiff1d(found_host, classes)
        if unseen.size:
            raise ValueError(f"y contains labels never seen at fit: {unseen.tolist()!r}; the "
                             f"model knows the classes {np.asarray(classes).tolist()!r}")
    k = classes.shape[0]
    C = classes if xp is np else be.asarray(classes)
    if k == 2:
        Yb = xp.reshape(y == C[1], (-1, 1))
    elif k == 1:  # scikit-learn's LabelBinarizer: every row is the negative label
        Yb = xp.reshape(y != C[0], (-1, 1))
    else:
        Yb = xp.reshape(y, (-1, 1)) == xp.reshape(C, (1, -1))
    kind, out = ("binary", "sigmoid") if k <= 2 else ("multiclass", "softmax")
    if xp is np:
        return Target(be.asarray(Yb, dtype=dtype), kind, classes, out)
    return Target(xp.astype(Yb, target_dtype), kind, classes, out)


def regression_target(y: Any, n_samples: int, be: Backend, dtype: str, *,
                      n_outputs: int | None = None, loss: str = "squared_error") -> Target:
    """Y (n_samples, n_outputs) for a regressor: numbers, finite (``loss="poisson"``: >= 0,
    and the output is exp)."""
    y, xp = _y_array(y, be)
    check_y_length(y, n_samples)
    if y.ndim == 0 or y.ndim > 2:
        raise ValueError(f"y must be (n_samples,) or (n_samples, n_outputs); got shape "
                         f"{tuple(y.shape)}")
    y = _column_to_1d(y, xp)
    if xp is np:
        if y.dtype.kind == "O":
            try:
                y = y.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"a regressor needs numeric y; y has dtype object with values "
                                 f"that are not numbers ({exc})") from None
        if y.dtype.kind not in "biuf":
            raise ValueError(f"a regressor needs numeric y; got dtype {y.dtype}. Convert the "
                             f"targets to numbers (or use MLPClassifier for labels)")
        with np.errstate(over="ignore", invalid="ignore"):
            Y = np.ascontiguousarray(y, dtype=dtype)
    else:
        if not xp.isdtype(y.dtype, ("real floating", "integral", "bool")):
            raise ValueError(f"a regressor needs numeric y; got dtype {y.dtype}")
        Y = xp.astype(y, be.dtype(dtype))
    if not _all_finite(Y, xp):
        raise not_finite("y", bool(xp.any(xp.isnan(Y))), dtype)
    Y = xp.reshape(Y, (-1, 1)) if Y.ndim == 1 else Y
    if n_outputs is not None and Y.shape[1] != n_outputs:
        raise ValueError(f"y has {Y.shape[1]} outputs but the model was fitted on {n_outputs}")
    if loss == "poisson" and bool(xp.any(Y < 0)):
        raise ValueError("Some value(s) of y are negative which is not allowed for Poisson "
                         "regression (loss='poisson' models counts or rates >= 0)")
    return Target(Y if xp is not np else be.asarray(Y), "continuous", None,
                  "exp" if loss == "poisson" else "identity")
