"""The meta of an estimator file: how its values become JSON, and what each field must hold.

The checksums of a model file prove it intact, not honest. :func:`validate` checks every field
against the others, the arrays and the estimator's parameters, and refuses with
ModelFileError, naming the field, anything inconsistent, unknown or non-finite (a loaded model
is what the file says, or none); :func:`problem` is the same check for a file about to be
written. :func:`to_json` / :func:`classes_to_json` are how the writer spells values.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Mapping, NoReturn

import numpy as np

from xpnet.core.constraints import CONSTRAINTS
from xpnet.core.registry import (ACTIVATION_ALIASES, CLASSIFIER_OUTPUTS, HIDDEN_ACTIVATIONS,
                                 REGRESSOR_OUTPUTS, SCHEDULES)
from xpnet.io import container as serialization

__all__ = ["BIT_GENERATORS", "LATER_PARAMS", "classes_from_json", "classes_to_json", "problem",
           "to_json", "validate"]

#: Parameters added after the first files were written, with the value that the models in
#: files without them were made with (He initialisation was the default before "init").
#: (Every file records its ``dtype``: those written when "float32" was the default keep it.)
LATER_PARAMS = {"tf32": False, "init": "he", "distributed": None, "class_weight": None,
                "loss": "squared_error", "max_fun": 15000, "progress_bar": False,
                "graphs": "auto", "kernels": "auto"}

BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def to_json(obj: Any) -> Any:
    """Plain JSON values: tuples become lists, NumPy scalars Python's, non-finite floats
    strings, arrays lists."""
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_json(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def classes_to_json(classes: np.ndarray | None) -> Any:
    if classes is None:
        return None
    c = np.asarray(classes)
    if c.dtype.kind == "S":
        return {"dtype": c.dtype.str, "values": [v.decode("latin-1") for v in c.tolist()]}
    return {"dtype": "object" if c.dtype.kind == "O" else c.dtype.str, "values": to_json(c)}


def classes_from_json(data: Any) -> np.ndarray | None:
    if data is None:
        return None
    values, dtype = data["values"], data["dtype"]
    if dtype == "object":
        c = np.empty(len(values), dtype=object)
        c[:] = values
        return c
    if np.dtype(dtype).kind == "S":
        return np.array([v.encode("latin-1") for v in values], dtype=dtype)
    return np.array(values, dtype=dtype)


# What an estimator file must say, field by field; :func:`validate` checks it on every read
# (and :func:`write` before writing), so a loaded model is exactly what the file says or none.
_ESTIMATORS = ("MLPClassifier", "MLPRegressor")
_STOPS = (None, "max_iter", "converged", "interrupted", "epoch", "callback")
_HISTORY = ("epoch", "loss", "val_loss", "val_score", "time", "learning_rate")
_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}  # as _json writes them
# the JSON types of class labels, by the kind of the classes' dtype
_LABELS = {"b": (bool,), "i": (int,), "u": (int,), "f": (float,), "U": (str,), "S": (str,),
           "O": (str, int, float)}
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_U32, _U64, _U128 = 2 ** 32 - 1, 2 ** 64 - 1, 2 ** 128 - 1
# bit generator: ({key of its "state": (list length or None, largest value)}, {other key: ...})
_RNG_LAYOUTS = {
    "MT19937": ({"key": (624, _U32), "pos": (None, 624)}, {}),
    "PCG64": ({"state": (None, _U128), "inc": (None, _U128)},
              {"has_uint32": (None, 1), "uinteger": (None, _U32)}),
    "Philox": ({"counter": (4, _U64), "key": (2, _U64)},
               {"buffer": (4, _U64), "buffer_pos": (None, 4), "has_uint32": (None, 1),
                "uinteger": (None, _U32)}),
    "SFC64": ({"state": (4, _U64)}, {"has_uint32": (None, 1), "uinteger": (None, _U32)}),
}
_RNG_LAYOUTS["PCG64DXSM"] = _RNG_LAYOUTS["PCG64"]


class _Invalid(Exception):
    """A field of an estimator file that xpnet would not have written; the message names it."""


def _bad(field: str, found: Any, expected: str) -> NoReturn:
    text = repr(found)
    raise _Invalid(f"{field} is {text if len(text) <= 80 else text[:77] + '...'}; "
                   f"expected {expected}")


def _number(v: Any) -> float | None:
    """A JSON number (or "inf", "-inf", "nan") as a float; None for anything else."""
    if isinstance(v, str):
        return _NON_FINITE.get(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        return float(v)
    except OverflowError:  # an integer beyond the floats
        return math.copysign(math.inf, v)


def _inside(v: Any, low: float = -math.inf, high: float = math.inf, low_open: bool = False,
            high_open: bool = False) -> bool:
    """``v`` is a finite number in the interval."""
    x = _number(v)
    return (x is not None and math.isfinite(x) and (x > low if low_open else x >= low)
            and (x < high if high_open else x <= high))


def _real(field: str, v: Any, low: float = -math.inf, high: float = math.inf,
          low_open: bool = False, high_open: bool = False) -> float:
    """``v``: a finite number in the interval."""
    if not _inside(v, low, high, low_open, high_open):
        _bad(field, v, f"a finite number in {'(' if low_open else '['}{low:g}, {high:g}"
                       f"{')' if high_open else ']'}")
    return float(v)


def _any_number(field: str, v: Any) -> None:
    """``v``: a number, finite or not (a validation curve's NaN for epochs without one)."""
    if _number(v) is None:
        _bad(field, v, "a number, 'nan', 'inf' or '-inf'")


def _int(field: str, v: Any, low: int = 0, high: int | None = None) -> int:
    """``v``: an integer in [low, high]."""
    if type(v) is not int or v < low or (high is not None and v > high):
        _bad(field, v, f"an integer >= {low}" + ("" if high is None else f" and <= {high}"))
    return v


def _flag(field: str, v: Any) -> bool:
    """``v``: true or false."""
    if not isinstance(v, bool):
        _bad(field, v, "true or false")
    return v


def _one_of(field: str, v: Any, options: tuple) -> Any:
    """``v``: one of the ``options`` (strings, or None)."""
    if not (v is None or isinstance(v, str)) or v not in options:
        _bad(field, v, "one of " + ", ".join(map(repr, options)))
    return v


def _list(field: str, v: Any, n: int | None = None, each: str = "") -> list:
    """``v``: a list (of ``n`` entries)."""
    if not isinstance(v, list) or (n is not None and len(v) != n):
        _bad(field, v, "a list" if n is None else f"a list of {n}{each}")
    return v


def _object(field: str, v: Any, required: tuple, optional: tuple = ()) -> dict:
    """``v``: a JSON object with the ``required`` keys, maybe ``optional`` ones, no others."""
    if not isinstance(v, dict):
        _bad(field, v, f"an object with keys {', '.join(required)}")
    for key in required:
        if key not in v:
            raise _Invalid(f"{field}.{key} is missing")
    for key in v:
        if key not in required and key not in optional:
            raise _Invalid(f"{field}.{key} is unknown: not a field of an xpnet estimator file")
    return v


def _check(expected: str, test: Callable[[Any], bool]) -> Callable[[str, Any], None]:
    """A parameter's check: ``test(value)`` holds, else the field is refused."""
    def check(field: str, value: Any) -> None:
        if not test(value):
            _bad(field, value, expected)
    return check


def _names(*names: str) -> Callable[[str, Any], None]:
    return lambda field, v: _one_of(field, v, names)


def _constraint(name: str) -> Callable[[str, Any], None]:
    """The parameter's check from the estimators' constraint table (what fit accepts; JSON
    writes n_iter_no_change=inf as "inf")."""
    constraint = CONSTRAINTS[name]

    def check(field: str, v: Any) -> None:
        value = _NON_FINITE.get(v, v) if isinstance(v, str) else v
        if type(v) is float and name in _INTEGERS and v.is_integer():
            _bad(field, v, constraint.describe())  # JSON keeps 10 and 10.0 apart
        try:
            constraint.check(field, value)
        except (ValueError, TypeError):
            _bad(field, v, constraint.describe())
    return check


_INTEGERS = ("max_iter", "max_fun", "n_iter_no_change", "batch_size")


def _positive(v: Any) -> bool:
    return type(v) is int and v >= 1


def _rate(v: Any) -> bool:
    return _inside(v, 0.0, 1.0, high_open=True)


# the estimators' parameters as fit checks them (xpnet.estimators.params.Config), as JSON
_PARAMS: dict[str, Callable[[str, Any], None]] = {
    "hidden_layer_sizes": _check("a positive integer or a list of them", lambda v: _positive(v)
                                 or isinstance(v, list) and all(map(_positive, v))),
    "activation": _check("an activation name or a list of them", lambda v: isinstance(v, str)
                         or isinstance(v, list) and all(isinstance(a, str) for a in v)),
    "solver": _constraint("solver"),
    "alpha": _constraint("alpha"),
    "batch_size": _constraint("batch_size"),
    "learning_rate": _constraint("learning_rate"),
    "learning_rate_init": _constraint("learning_rate_init"),
    "power_t": _constraint("power_t"),
    "max_iter": _constraint("max_iter"),
    "shuffle": _constraint("shuffle"),
    "random_state": _check("null or an integer >= 0",
                           lambda v: v is None or type(v) is int and v >= 0),
    "tol": _constraint("tol"),
    "verbose": _check("true, false or a level >= 0",
                      lambda v: isinstance(v, bool) or type(v) is int and v >= 0),
    "warm_start": _constraint("warm_start"),
    "momentum": _constraint("momentum"),
    "nesterovs_momentum": _constraint("nesterovs_momentum"),
    "early_stopping": _constraint("early_stopping"),
    "validation_fraction": _constraint("validation_fraction"),
    "beta_1": _constraint("beta_1"),
    "beta_2": _constraint("beta_2"),
    "epsilon": _constraint("epsilon"),
    "n_iter_no_change": _constraint("n_iter_no_change"),
    "max_fun": _constraint("max_fun"),
    "progress_bar": _constraint("progress_bar"),
    "backend": _check("a backend name", lambda v: isinstance(v, str) and v != ""),
    "device": _check("null, a device index or a device name", lambda v: v is None
                     or isinstance(v, str) or type(v) is int and v >= 0),
    "dtype": _names(None, "float32", "float64"),  # null: X's (the model's is "dtype" below)
    "dropout": _check("a rate in [0, 1) or a list of them", lambda v: _rate(v)
                      or isinstance(v, list) and all(map(_rate, v))),
    "clip_norm": _constraint("clip_norm"),
    "tf32": _constraint("tf32"),
    "init": _constraint("init"),
    "distributed": _check("null, 'mpi' or 'nccl'", lambda v: v in (None, "mpi", "nccl")),
    "graphs": _constraint("graphs"),
    "kernels": _constraint("kernels"),
}
_ESTIMATOR_PARAMS = {
    "MLPClassifier": {**_PARAMS, "class_weight": _check(
        "null, 'balanced' or {label: weight >= 0}", lambda v: v is None or v == "balanced"
        or isinstance(v, dict) and all(_inside(w, 0) for w in v.values()))},
    "MLPRegressor": {**_PARAMS, "loss": _names(*REGRESSOR_OUTPUTS)},
}


def validate(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], where: str) -> None:
    """Every meta field of an estimator file, checked against the others, the arrays and the
    estimator's parameters: anything inconsistent, unknown or non-finite raises
    ModelFileError naming the field, what it holds and what was expected.

    :func:`read` calls it, so every load (:func:`load_estimator`) and every resumed fit
    (:func:`restore_training`, on what :func:`read` returned) is checked. Top-level keys other
    than xpnet's (e.g. what the CLI records) are left alone: they do not make the model.
    """
    try:
        _check_estimator(arrays, meta)
    except _Invalid as exc:
        raise serialization.ModelFileError(f"{where}: {exc}") from None


def _check_estimator(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    """The whole file; raises _Invalid at the first field that is not as xpnet writes it."""
    name = meta["estimator"]
    if not isinstance(name, str) or name not in _ESTIMATORS:
        _bad("estimator", name, " or ".join(map(repr, _ESTIMATORS)))
    schema = _ESTIMATOR_PARAMS[name]
    if not isinstance(meta["params"], dict):
        _bad("params", meta["params"], "an object")
    # files written before a parameter existed: it takes the value their model was made with
    given = {**{k: v for k, v in LATER_PARAMS.items() if k in schema}, **meta["params"]}
    params = _object("params", given, tuple(schema))
    for key, check in schema.items():
        check(f"params.{key}", params[key])
    dims = meta["layer_dims"]
    if not isinstance(dims, list) or len(dims) < 2 or not all(map(_positive, dims)):
        _bad("layer_dims", dims, "a list [n0, ..., nL] of positive integers, L >= 1")
    dtype = _one_of("dtype", meta["dtype"], ("float32", "float64"))
    L = len(dims) - 1  # W[l] then b[l]: the optimizer's order of the parameters
    shapes = {**{f"W[{l}]": (dims[l], dims[l - 1]) for l in range(1, L + 1)},
              **{f"b[{l}]": (dims[l], 1) for l in range(1, L + 1)}}
    known = {_array(arrays, key, shape, dtype) for key, shape in shapes.items()}
    kind = _check_network(meta, name, params, dims)
    _check_data(meta, kind, dims)
    if "training" in meta and meta.get("optimizer") is None:
        raise _Invalid("optimizer is null; a checkpoint holds the optimizer's state")
    known |= _check_optimizer(meta.get("optimizer"), arrays, shapes, dtype)
    _check_schedule(meta["schedule"])
    _check_progress(meta["progress"])
    if "training" in meta:
        known |= _check_training(meta["training"], arrays, shapes, dtype)
    unknown = sorted(set(arrays) - known)
    if unknown:
        raise _Invalid(f"array {unknown[0]} is unknown: not part of an {name} file")


def _array(arrays: Mapping[str, np.ndarray], key: str, shape: tuple, dtype: str,
           nonnegative: bool = False) -> str:
    """Array ``key`` is there, of ``shape`` and ``dtype``, finite (and >= 0); its name."""
    a = arrays.get(key)
    if a is None:
        raise _Invalid(f"array {key} is missing")
    if a.shape != shape or a.dtype.kind != "f" or a.dtype.itemsize != np.dtype(dtype).itemsize:
        raise _Invalid(f"array {key} is {a.dtype.name} {a.shape}; expected {dtype} {shape} "
                       f"(from the meta's dtype and layer_dims)")
    if not np.isfinite(a).all():
        raise _Invalid(f"array {key} holds NaN or infinity; expected finite values")
    if nonnegative and (a < 0).any():
        raise _Invalid(f"array {key} holds negative values; expected values >= 0")
    return key


def _indices(arrays: Mapping[str, np.ndarray], key: str) -> np.ndarray:
    """Array ``key``: 1-D integer row indices."""
    a = arrays.get(key)
    if a is None:
        raise _Invalid(f"array {key} is missing")
    if a.ndim != 1 or a.dtype.kind not in "iu":
        raise _Invalid(f"array {key} is {a.dtype.name} {a.shape}; expected 1-D row indices")
    return a


def _check_network(meta: Mapping[str, Any], name: str, params: dict, dims: list) -> str:
    """target_kind and activations, and the parameters that shape the network (hidden
    layers, activation, dropout, loss), against layer_dims; the target kind."""
    regressor = name == "MLPRegressor"
    kind = _one_of("target_kind", meta["target_kind"],
                   ("continuous",) if regressor else tuple(CLASSIFIER_OUTPUTS))
    g = _list("activations", meta["activations"], len(dims) - 1, " (one per layer)")
    for i, a in enumerate(g[:-1]):
        _one_of(f"activations[{i}]", a, HIDDEN_ACTIVATIONS)
    out = REGRESSOR_OUTPUTS[params["loss"]] if regressor else CLASSIFIER_OUTPUTS[kind]
    if g[-1] != out:
        _bad(f"activations[{len(g) - 1}]", g[-1], f"{out!r}, the output of {name} with " + (
            f"params.loss {params['loss']!r}" if regressor else f"target_kind {kind!r}"))
    hls, act = params["hidden_layer_sizes"], params["activation"]
    hidden = [hls] if type(hls) is int else hls
    if hidden != dims[1:-1]:
        raise _Invalid(f"params.hidden_layer_sizes {hls!r} disagrees with layer_dims {dims}")
    acts = [act] * len(hidden) if isinstance(act, str) else act
    if [ACTIVATION_ALIASES.get(a, a) for a in acts] != g[:-1]:
        raise _Invalid(f"params.activation {act!r} disagrees with activations {g}")
    if isinstance(params["dropout"], list) and len(params["dropout"]) != len(hidden):
        _bad("params.dropout", params["dropout"],
             f"one rate or a list of {len(hidden)} (one per hidden layer)")
    return kind


def _check_data(meta: Mapping[str, Any], kind: str, dims: list) -> None:
    """n_features_in, n_outputs, classes and feature_names_in against layer_dims and the
    target kind; trained_on and xpnet_version (where present) as xpnet writes them."""
    n_in, n_out = meta["n_features_in"], meta["n_outputs"]
    if type(n_in) is not int or n_in != dims[0]:
        _bad("n_features_in", n_in, f"{dims[0]}, the inputs of W[1] (layer_dims {dims})")
    if type(n_out) is not int or n_out != dims[-1]:
        _bad("n_outputs", n_out, f"{dims[-1]}, the outputs of W[{len(dims) - 1}]")
    outputs = {"binary": (n_out == 1, "1"), "multiclass": (n_out >= 3, ">= 3"),
               "multilabel": (n_out >= 2, ">= 2"), "continuous": (True, "")}
    ok, wanted = outputs[kind]
    if not ok:
        raise _Invalid(f"target_kind {kind!r} disagrees with n_outputs {n_out} "
                       f"(expected {wanted} outputs)")
    _check_classes(meta.get("classes"), kind, n_out)
    names = meta.get("feature_names_in")
    if names is not None and not (isinstance(names, list) and len(names) == n_in
                                  and all(isinstance(c, str) for c in names)):
        _bad("feature_names_in", names, f"null or a list of {n_in} strings (one per feature)")
    if "trained_on" in meta:
        where = _object("trained_on", meta["trained_on"], ("backend", "device"))
        _PARAMS["backend"]("trained_on.backend", where["backend"])
        _PARAMS["device"]("trained_on.device", where["device"])
    if not isinstance(meta.get("xpnet_version", ""), str):
        _bad("xpnet_version", meta["xpnet_version"], "a version string")


def _check_classes(data: Any, kind: str, n_out: int) -> None:
    """classes: null for a regressor; else {"dtype", "values"}: distinct labels in sorted order
    that the dtype holds exactly, 2 (binary; 1 for one class), one per output (multiclass) or
    0..n-1 (multilabel)."""
    if kind == "continuous":
        if data is not None:
            _bad("classes", data, "null (a regressor has no classes)")
        return
    _object("classes", data, ("dtype", "values"))
    dtype, values = data["dtype"], data["values"]
    try:
        dt = np.dtype(dtype) if isinstance(dtype, str) else None
    except Exception:  # NumPy's dtype parser raises several kinds
        dt = None
    if dt is None or dt.kind not in _LABELS or dt.itemsize > 1 << 16 \
            or dtype != ("object" if dt.kind == "O" else dt.str):
        _bad("classes.dtype", dtype, "'object' or the .str of a bool, integer, float or "
                                     "string dtype")
    k = n_out
    if kind == "binary":  # 2; or 1, a classifier fitted on one class (scikit-learn's)
        k = 1 if isinstance(values, list) and len(values) == 1 else 2
    _list("classes.values", values, k, f" (the classes of a {kind} model with {n_out} outputs)")
    for i, v in enumerate(values):
        if not isinstance(v, _LABELS[dt.kind]) or isinstance(v, bool) != (dt.kind == "b") \
                or isinstance(v, float) and not math.isfinite(v):
            _bad(f"classes.values[{i}]", v, f"a label of dtype {dtype}")
    try:
        c = classes_from_json(data)
        exact = classes_to_json(c) == data
        exact = exact and np.array_equal(np.unique(c), c)
    except (TypeError, ValueError, OverflowError, UnicodeError):
        exact = False
    if not exact:
        _bad("classes.values", values, f"distinct labels in sorted order, held exactly by "
                                       f"dtype {dtype}")
    if kind == "multilabel" and (dt.kind not in "iu" or values != list(range(k))):
        _bad("classes.values", values, f"the label indices 0..{k - 1} (multilabel)")


def _check_optimizer(opt: Any, arrays: Mapping[str, np.ndarray], shapes: dict,
                     dtype: str) -> set[str]:
    """optimizer: null, or SGD's or Adam's scalars in range and one state array per parameter
    (shaped like it, finite; Adam's second moments >= 0); the names of those arrays."""
    if opt is None:
        return set()
    if not isinstance(opt, dict):
        _bad("optimizer", opt, "null or an object")
    name = _one_of("optimizer.name", opt.get("name"), ("sgd", "adam"))
    n = len(shapes)
    if name == "sgd":
        _object("optimizer", opt, ("name", "learning_rate", "learning_rate_init", "momentum",
                                   "nesterov", "velocities"))
        momentum = _real("optimizer.momentum", opt["momentum"], 0, 1)
        _flag("optimizer.nesterov", opt["nesterov"])
        states = {"velocities": n if momentum > 0 else 0}
    else:
        _object("optimizer", opt, ("name", "learning_rate", "learning_rate_init", "beta_1",
                                   "beta_2", "epsilon", "t", "ms", "vs"))
        for key in ("beta_1", "beta_2"):
            _real(f"optimizer.{key}", opt[key], 0, 1, high_open=True)
        _real("optimizer.epsilon", opt["epsilon"], 0, low_open=True)
        _int("optimizer.t", opt["t"])
        states = {"ms": n, "vs": n}
    for key in ("learning_rate", "learning_rate_init"):
        _real(f"optimizer.{key}", opt[key], 0, low_open=True)
    names = set()
    for key, count in states.items():
        _object(f"optimizer.{key}", opt[key], ("arrays",))
        if _int(f"optimizer.{key}.arrays", opt[key]["arrays"]) != count:
            _bad(f"optimizer.{key}.arrays", opt[key]["arrays"], f"{count}, one per parameter")
        names |= {_array(arrays, f"opt/{key}/{i}", shape, dtype, nonnegative=key == "vs")
                  for i, shape in enumerate(list(shapes.values())[:count])}
    return names


def _check_schedule(s: Any) -> None:
    """schedule: a learning-rate schedule's settings and bookkeeping, in range."""
    _object("schedule", s, ("name", "power_t", "tol", "n_iter_no_change", "early_stopping",
                            "best_loss", "best_validation_score", "no_improvement_count"))
    _one_of("schedule.name", s["name"], SCHEDULES)
    _real("schedule.power_t", s["power_t"], 0)
    _real("schedule.tol", s["tol"], 0)
    _int("schedule.n_iter_no_change", s["n_iter_no_change"], 1)
    _flag("schedule.early_stopping", s["early_stopping"])
    _int("schedule.no_improvement_count", s["no_improvement_count"])
    for key, start in (("best_loss", "inf"), ("best_validation_score", "-inf")):
        if _number(s[key]) != _NON_FINITE[start] and not _inside(s[key]):
            _bad(f"schedule.{key}", s[key], f"a finite number, or {start!r} before any epoch")


def _check_progress(p: Any) -> None:
    """progress: epoch and sample counts, a finite loss curve ending in ``loss``, and
    validation curves and a history of one entry per epoch of it."""
    _object("progress", p, ("n_iter", "t", "loss", "loss_curve", "val_loss_curve",
                            "val_scores", "history"))
    curve = _list("progress.loss_curve", p["loss_curve"])
    for i, v in enumerate(curve):
        _real(f"progress.loss_curve[{i}]", v)
    n = len(curve)
    _int("progress.n_iter", p["n_iter"], 0, n)
    _int("progress.t", p["t"])
    last = float(curve[-1]) if curve else None
    if not (p["loss"] is None if last is None else _number(p["loss"]) == last):
        _bad("progress.loss", p["loss"], f"{last!r}, the last of progress.loss_curve")
    if (p["val_loss_curve"] is None) != (p["val_scores"] is None):
        raise _Invalid("progress.val_loss_curve and progress.val_scores disagree: expected "
                       "both null or both lists")
    for key in ("val_loss_curve", "val_scores"):
        if p[key] is not None:
            _list(f"progress.{key}", p[key], n, " (one per epoch of progress.loss_curve)")
            for i, v in enumerate(p[key]):
                _any_number(f"progress.{key}[{i}]", v)
    history = _list("progress.history", p["history"], n, " (one per epoch of the loss curve)")
    for i, h in enumerate(history):
        field = f"progress.history[{i}]"
        _object(field, h, _HISTORY)
        if _int(f"{field}.epoch", h["epoch"], 1) != i + 1:
            _bad(f"{field}.epoch", h["epoch"], f"{i + 1}")
        if _number(h["loss"]) != curve[i]:
            _bad(f"{field}.loss", h["loss"], f"{curve[i]!r}, as progress.loss_curve[{i}]")
        for key in ("val_loss", "val_score"):
            if h[key] is not None:
                _any_number(f"{field}.{key}", h[key])
        _real(f"{field}.time", h["time"], 0)
        _real(f"{field}.learning_rate", h["learning_rate"], 0, low_open=True)


def _check_training(t: Any, arrays: Mapping[str, np.ndarray], shapes: dict,
                    dtype: str) -> set[str]:
    """training (a checkpoint's): stop reason, sample count, host RNG state, best parameters,
    the validation split (a partition of the n_samples rows into two non-empty parts), the
    rows' order (a permutation of the training rows), validation fingerprint; the names of
    its arrays."""
    _object("training", t, ("rng", "stop", "n_samples", "best", "split"),
            ("validation", "ranks"))
    _one_of("training.stop", t["stop"], _STOPS)
    names = set()
    if _flag("training.best", t["best"]):
        names |= {_array(arrays, f"best/{key}", shape, dtype) for key, shape in shapes.items()}
    names |= _check_rank(t, arrays, "training", "")
    ranks = t.get("ranks")
    if ranks is not None:  # data parallel: ranks 1..N-1's own state
        _list("training.ranks", ranks)
        for r, entry in enumerate(ranks, start=1):
            field = f"training.ranks[{r - 1}]"
            _object(field, entry, ("rng", "n_samples", "split"), ("validation",))
            names |= _check_rank(entry, arrays, field, f"ranks/{r}/")
    return names


def _check_rank(t: Any, arrays: Mapping[str, np.ndarray], field: str, prefix: str) -> set[str]:
    """One rank's part of a checkpoint: sample count, RNG state, the validation split (a
    partition of its n_samples rows into two non-empty parts), the rows' order (a
    permutation of its training rows), validation fingerprint; the names of its arrays."""
    n = _int(f"{field}.n_samples", t["n_samples"], 1)
    _check_rng(t["rng"])
    names = set()
    n_train = n
    if _flag(f"{field}.split", t["split"]):
        train = _indices(arrays, f"{prefix}split/train")
        val = _indices(arrays, f"{prefix}split/val")
        if not (train.size and val.size and train.size + val.size == n and np.array_equal(
                np.sort(np.concatenate([train, val])), np.arange(n))):
            raise _Invalid(f"arrays {prefix}split/train ({train.size} rows) and "
                           f"{prefix}split/val ({val.size} rows) are not a partition of the "
                           f"{field}.n_samples = {n} rows into two non-empty parts")
        names |= {f"{prefix}split/train", f"{prefix}split/val"}
        n_train = train.size
    if f"{prefix}order" in arrays:  # files before it have none
        order = _indices(arrays, f"{prefix}order")
        if order.size != n_train or not np.array_equal(np.sort(order), np.arange(n_train)):
            raise _Invalid(f"array {prefix}order ({order.size} rows) is not a permutation of "
                           f"the {n_train} training rows")
        names.add(f"{prefix}order")
    v = t.get("validation")
    if v is not None:
        _object(f"{field}.validation", v, ("samples", "sha256"))
        _int(f"{field}.validation.samples", v["samples"], 1)
        if not (isinstance(v["sha256"], str) and _SHA256.match(v["sha256"])):
            _bad(f"{field}.validation.sha256", v["sha256"], "64 lowercase hex digits")
    return names


def _check_rng(saved: Any) -> None:
    """training.rng: a RandomState's (MT19937) or a Generator's bit generator state, every
    number in range (NumPy trusts some: an MT19937 position past its key reads beyond it)."""
    field, kind, state = "training.rng", "Generator", saved  # files before "kind": a Generator's
    if isinstance(saved, dict) and "kind" in saved:
        _object(field, saved, ("kind", "state"))
        kind = _one_of(f"{field}.kind", saved["kind"], ("RandomState", "Generator"))
        field, state = f"{field}.state", saved["state"]
    if not isinstance(state, dict):
        _bad(field, state, "a bit generator's state")
    name = _one_of(f"{field}.bit_generator", state.get("bit_generator"),
                   ("MT19937",) if kind == "RandomState" else BIT_GENERATORS)
    inner, outer = _RNG_LAYOUTS[name]
    if kind == "RandomState":
        outer = {"has_gauss": (None, 1)}
    _object(field, state, ("bit_generator", "state", *outer)
            + (("gauss",) if kind == "RandomState" else ()))
    _object(f"{field}.state", state["state"], tuple(inner))
    for where, obj, layout in ((field, state, outer), (f"{field}.state", state["state"], inner)):
        for key, (length, high) in layout.items():
            if length is None:
                _int(f"{where}.{key}", obj[key], 0, high)
                continue
            for i, word in enumerate(_list(f"{where}.{key}", obj[key], length)):
                _int(f"{where}.{key}[{i}]", word, 0, high)
    if kind == "RandomState":
        _real(f"{field}.gauss", state["gauss"])


def problem(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> str | None:
    """What :func:`validate` would refuse in this file (None: nothing)."""
    try:
        _check_estimator(arrays, meta)
    except _Invalid as exc:
        return str(exc)
    return None
