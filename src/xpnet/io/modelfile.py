"""An estimator as a model file (and as a checkpoint, and as picklable host state).

A model file (:mod:`xpnet.serialization`: never pickled, never executed) holds

* arrays: ``W[l]``, ``b[l]`` (l = 1..L, in the model's dtype), the optimizer state
  ``opt/<name>/<i>``; a checkpoint adds ``best/W[l]``, ``best/b[l]`` (early stopping) and
  ``split/train``, ``split/val`` (the validation split's row indices);
* meta (JSON): the estimator class and its parameters, ``layer_dims``, ``activations``,
  ``dtype``, ``classes`` (with their dtype: strings stay strings), the optimizer's scalars,
  the schedule's bookkeeping, the history and the host RNG's state (``rng``: a loaded model's
  next partial_fit shuffles as the saved one's would have); a checkpoint adds
  ``training``: the host RNG state (``bit_generator.state``), the epoch counter, why the run
  stopped and the fingerprint of ``validation_data`` (``{"samples", "sha256"}`` or null)
  that a resumed fit must match.

Non-finite floats (an initial best loss of inf) are written as the strings "inf", "-inf",
"nan", so the meta is strict JSON.

The checksums prove a file intact, not honest: :func:`read` also checks every field against
the others, the arrays and the estimator's parameters (:func:`xpnet.io.metadata.validate`),
and refuses with ModelFileError, naming the field, anything inconsistent, unknown or
non-finite; :func:`write` refuses to write what it would refuse to read. A loaded model is
what the file says, or none.
"""

from __future__ import annotations

import math

import os
import warnings
from typing import Any, Mapping

import numpy as np

from xpnet.io import container as serialization
from xpnet.io.metadata import (LATER_PARAMS, classes_from_json, classes_to_json, problem,
                               to_json, validate)
from xpnet.backends import Backend, BackendError, get_backend, to_numpy
from xpnet.core.optim import LearningRateSchedule, Optimizer
from xpnet.training.host_random import HostRandom
from xpnet.training.network import Network
from xpnet.training.progress import Progress, TrainingState

__all__ = ["check_resumable", "device_network", "device_optimizer", "host_network",
           "host_optimizer", "load_estimator", "rank_state", "read", "restore_training",
           "write"]

# --------------------------------------------------------------------------- JSON helpers
def _float(x: Any) -> float | None:
    return None if x is None else float(x)


def _floats(xs: Any) -> list[float] | None:
    return None if xs is None else [float(x) for x in xs]


def _params_json(est: Any) -> dict[str, Any]:
    out = {}
    for key, value in est.get_params(deep=False).items():
        if key == "random_state" and not (value is None or isinstance(value, (int, np.integer))):
            value = None  # a Generator / RandomState: its state is in the checkpoint's RNG
        elif key == "device" and value is not None and not isinstance(value, (int, str)):
            value = str(value)
        elif key == "dtype":
            value = np.dtype(value).name if not isinstance(value, (str, type(None))) else value
        elif key == "distributed" and value is not None and not isinstance(value, str):
            value = "mpi"  # a communicator object: what it stands for
        out[key] = to_json(value)
    return out


def _params_from_json(params: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(params)
    if out.get("n_iter_no_change") == "inf":  # np.inf, written as JSON can
        out["n_iter_no_change"] = math.inf
    if isinstance(out.get("hidden_layer_sizes"), list):
        out["hidden_layer_sizes"] = tuple(out["hidden_layer_sizes"])
    return out


# --------------------------------------------------------------------------- host <-> device
def host_network(net: Network) -> dict[str, Any]:
    """The network as NumPy arrays and names (for pickling)."""
    return {"W": {l: to_numpy(w).copy() for l, w in net.W.items()},
            "b": {l: to_numpy(v).copy() for l, v in net.b.items()},
            "g": list(net.g), "backend": net.backend.name, "device": net.backend.device_spec}


def _backend_or_numpy(name: str, device: Any, warn: bool) -> Backend:
    try:
        return get_backend(name, device)
    except BackendError as exc:
        if warn:
            warnings.warn(f"the model was on backend {name!r} (device {device!r}), which is not "
                          f"usable here ({exc}); it is placed on NumPy instead",
                          UserWarning, stacklevel=4)
        return get_backend("numpy")


def device_network(state: Mapping[str, Any], warn_fallback: bool = True,
                   backend: Backend | None = None) -> Network:
    """A Network from :func:`host_network`'s dict, on ``backend`` (default: the one it was on,
    or NumPy with a warning when that one is not usable here)."""
    be = backend or _backend_or_numpy(state["backend"], state["device"], warn_fallback)
    W = {int(l): be.asarray(np.asarray(w)) for l, w in state["W"].items()}
    b = {int(l): be.asarray(np.asarray(v)) for l, v in state["b"].items()}
    return Network(W, b, list(state["g"]), be)


def host_optimizer(opt: Optimizer) -> dict[str, Any]:
    """``opt.state_dict()`` with NumPy arrays (for pickling and files)."""
    state = opt.state_dict()
    return {k: [to_numpy(a).copy() for a in v] if isinstance(v, list) else v
            for k, v in state.items()}


def device_optimizer(state: Mapping[str, Any], net: Network) -> Optimizer:
    """The optimizer :func:`host_optimizer` described, over ``net``'s parameters."""
    name = state["name"]
    if name == "sgd":
        kw = {"momentum": state["momentum"], "nesterov": state["nesterov"]}
    elif name == "adam":
        kw = {"beta_1": state["beta_1"], "beta_2": state["beta_2"], "epsilon": state["epsilon"]}
    else:
        raise ValueError(f"unknown optimizer {name!r} in the saved state")
    opt = net.optimizer(name, learning_rate=state["learning_rate_init"], **kw)
    opt.load_state_dict(dict(state))
    return opt


# --------------------------------------------------------------------------- writing
def write(est: Any, path: str | os.PathLike, trainer: Any = None,
          validation: Mapping[str, Any] | None = None,
          ranks: list[dict[str, Any]] | None = None) -> None:
    """Save a fitted estimator (with ``trainer``: a checkpoint of the run in progress, and
    ``validation``: the fingerprint of its validation_data, if any). ``ranks``: data
    parallel, the other ranks' own state (:func:`rank_state`, ranks 1..N-1), so that each can
    resume its own shuffle."""
    net: Network = est._net
    arrays: dict[str, np.ndarray] = {}
    for l in range(1, net.L + 1):
        arrays[f"W[{l}]"] = to_numpy(net.W[l])
        arrays[f"b[{l}]"] = to_numpy(net.b[l])
    opt_meta = None
    if getattr(est, "_optimizer", None) is not None:
        opt_meta = {}
        for key, value in host_optimizer(est._optimizer).items():
            if isinstance(value, list):
                opt_meta[key] = {"arrays": len(value)}
                for i, a in enumerate(value):
                    arrays[f"opt/{key}/{i}"] = a
            else:
                opt_meta[key] = to_json(value)
    p: Progress = est._progress
    from xpnet import __version__

    meta: dict[str, Any] = {
        "estimator": type(est).__name__,
        "xpnet_version": __version__,
        "params": _params_json(est),
        "layer_dims": net.dims,
        "activations": list(net.g),
        "dtype": est._dtype,
        "target_kind": est._target_kind,
        "classes": classes_to_json(getattr(est, "classes_", None)),
        "n_features_in": int(est.n_features_in_),
        "feature_names_in": (None if getattr(est, "feature_names_in_", None) is None
                             else [str(c) for c in est.feature_names_in_]),
        "n_outputs": int(est.n_outputs_),
        "trained_on": {"backend": net.backend.name, "device": net.backend.device_spec},
        "optimizer": opt_meta,
        "schedule": to_json(est._schedule.state_dict()),
        "progress": to_json({"n_iter": p.n_iter, "t": p.t, "loss": p.loss,
                           "loss_curve": p.loss_curve, "val_loss_curve": p.val_loss_curve,
                           "val_scores": p.val_scores, "history": p.history}),
    }
    if trainer is not None:
        rng_state = trainer.rng.state
        train_idx, val_idx = est._split
        arrays["order"] = np.asarray(trainer.order, dtype=np.int64)
        if trainer.best is not None:
            for l in range(1, net.L + 1):
                arrays[f"best/W[{l}]"] = to_numpy(trainer.best[0][l])
                arrays[f"best/b[{l}]"] = to_numpy(trainer.best[1][l])
        if val_idx is not None:
            arrays["split/train"] = np.asarray(train_idx, dtype=np.int64)
            arrays["split/val"] = np.asarray(val_idx, dtype=np.int64)
        meta["training"] = {"rng": to_json(rng_state), "stop": trainer.stop_reason,
                            "n_samples": trainer.n + (0 if val_idx is None else len(val_idx)),
                            "best": trainer.best is not None, "split": val_idx is not None,
                            "validation": None if validation is None else dict(validation)}
        if ranks is not None:
            meta["training"]["ranks"] = []
            for r, state in enumerate(ranks, start=1):
                entry = {k: state[k] for k in ("n_samples", "split", "validation")}
                entry["rng"] = to_json(state["rng"])
                meta["training"]["ranks"].append(entry)
                for key, value in state["arrays"].items():
                    arrays[f"ranks/{r}/{key}"] = np.asarray(value, dtype=np.int64)
    wrong = problem(arrays, meta)  # what read() would refuse is never written
    if wrong is not None:  # (e.g. parameters changed with set_params after fit)
        raise ValueError(f"cannot save {type(est).__name__} to {os.fspath(path)!r}: {wrong}")
    serialization.save(path, arrays, meta)


# --------------------------------------------------------------------------- reading
def read(path: str | os.PathLike, training: bool = False) -> tuple[dict, dict]:
    """(arrays, meta) of an xpnet estimator file, every field checked (:func:`validate`);
    ``training``: it must be a checkpoint."""
    arrays, meta = serialization.load(path)
    where = f"model file {os.fspath(path)!r}"
    needed = ("estimator", "params", "layer_dims", "activations", "dtype", "target_kind",
              "n_features_in", "n_outputs", "progress", "schedule")
    missing = [k for k in needed if k not in meta]
    if missing:
        raise serialization.ModelFileError(f"{where} holds no xpnet estimator (meta lacks "
                                           f"{', '.join(missing)}); write one with est.save()")
    if training and "training" not in meta:
        raise serialization.ModelFileError(
            f"{where} is a saved model, not a checkpoint (no training state): resume from a "
            f"file written by fit(..., checkpoint=PATH), or load it with xpnet.load")
    validate(arrays, meta, where)
    return arrays, meta


def _validation_text(v: Any) -> str:
    if v is None:
        return "none"
    return f"{v.get('samples')} samples, sha256 {str(v.get('sha256'))[:12]}"


def rank_state(trainer: Any, split: tuple[Any, Any],
               validation: Mapping[str, Any] | None) -> dict[str, Any]:
    """One data-parallel rank's own part of a checkpoint: its RNG state, shuffle order,
    early-stopping split and validation fingerprint."""
    train_idx, val_idx = split
    arrays = {"order": trainer.order}
    if val_idx is not None:
        arrays.update({"split/train": train_idx, "split/val": val_idx})
    return {"rng": trainer.rng.state, "arrays": arrays,
            "n_samples": trainer.n + (0 if val_idx is None else len(val_idx)),
            "split": val_idx is not None,
            "validation": None if validation is None else dict(validation)}


def _for_rank(ckpt: tuple[dict, dict], rank: int, size: int, path: Any
              ) -> tuple[dict, dict]:
    """The checkpoint as rank ``rank`` of ``size`` resumes it: its own RNG, order, split and
    validation fingerprint in place of rank 0's."""
    arrays, meta = ckpt
    training = meta["training"]
    written = len(training.get("ranks") or []) + 1
    if written != size:
        raise ValueError(f"checkpoint {os.fspath(path)!r} was written by {written} rank(s); "
                         f"resume it with the same number (mpiexec -n {written}), or start a "
                         f"new run")
    if rank == 0:
        return ckpt
    entry = training["ranks"][rank - 1]
    prefix = f"ranks/{rank}/"
    own = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
    arrays = {k: v for k, v in arrays.items()
              if not k.startswith(("ranks/", "split/", "order"))} | own
    training = {**training, **entry}
    return arrays, {**meta, "training": training}


def check_resumable(ckpt: tuple[dict, dict], estimator: str, dims: list[int], g: list[str],
                    dtype: str, n: int, solver: str, path: Any,
                    validation: Mapping[str, Any] | None = None, rank: int = 0,
                    size: int = 1) -> None:
    """The checkpoint must be of this estimator, network, dtype, solver, data size and
    validation_data (its fingerprint; checkpoints without one had none); data parallel: of
    as many ranks, each with its own shard's size and validation data."""
    arrays, meta = _for_rank(ckpt, rank, size, path)
    training = meta["training"]
    opt = meta.get("optimizer") or {}
    found = {"estimator": meta["estimator"], "network": meta["layer_dims"],
             "activations": meta["activations"], "dtype": meta["dtype"],
             "solver": opt.get("name"), "samples": training.get("n_samples")}
    wanted = {"estimator": estimator, "network": dims, "activations": g, "dtype": dtype,
              "solver": solver, "samples": n}
    diff = [f"{k} {found[k]!r} (this fit: {wanted[k]!r})" for k in wanted
            if found[k] != wanted[k]]
    had = training.get("validation")
    if (None if had is None else dict(had)) != (None if validation is None else dict(validation)):
        diff.append(f"validation_data {_validation_text(had)} (this fit: "
                    f"{_validation_text(validation)}); pass the validation_data of the "
                    f"checkpointed run again")
    if diff:
        raise ValueError(f"checkpoint {os.fspath(path)!r} was written by a different run: "
                         f"{'; '.join(diff)}. Resume with the same data and parameters, or "
                         f"start a new run (resume=False or another checkpoint path)")


def _network(arrays: Mapping[str, np.ndarray], prefix: str, L: int, g: list[str],
             be: Backend, dtype: str) -> Network:
    W = {l: be.asarray(arrays[f"{prefix}W[{l}]"], dtype=dtype) for l in range(1, L + 1)}
    b = {l: be.asarray(arrays[f"{prefix}b[{l}]"], dtype=dtype) for l in range(1, L + 1)}
    return Network(W, b, list(g), be)


def _optimizer_state(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> dict | None:
    opt_meta = meta.get("optimizer")
    if opt_meta is None:
        return None
    state: dict[str, Any] = {}
    for key, value in opt_meta.items():
        if isinstance(value, dict) and set(value) == {"arrays"}:
            state[key] = [arrays[f"opt/{key}/{i}"] for i in range(int(value["arrays"]))]
        else:
            state[key] = value
    return state


def _schedule(meta: Mapping[str, Any]) -> LearningRateSchedule:
    s = dict(meta["schedule"])
    for key in ("power_t", "tol", "best_loss", "best_validation_score"):
        s[key] = float(s[key])
    schedule = LearningRateSchedule(s["name"], power_t=s["power_t"], tol=s["tol"],
                                    n_iter_no_change=int(s["n_iter_no_change"]),
                                    early_stopping=bool(s["early_stopping"]))
    schedule.load_state_dict(s)
    return schedule


def _progress(meta: Mapping[str, Any]) -> Progress:
    p = meta["progress"]
    history = [{**h, **{k: _float(h.get(k)) for k in ("loss", "val_loss", "val_score", "time",
                                                       "learning_rate")}}
               for h in p["history"]]
    return Progress(n_iter=int(p["n_iter"]), t=int(p["t"]), loss=_float(p["loss"]),
                    loss_curve=_floats(p["loss_curve"]),
                    val_loss_curve=_floats(p["val_loss_curve"]),
                    val_scores=_floats(p["val_scores"]), history=history)


def _host_random(saved: Mapping[str, Any]) -> HostRandom:
    """The fit's host stream in its saved state (checked by :func:`_check_rng`): a
    RandomState's, or a Generator's; files of earlier versions hold a bare Generator state."""
    if "kind" not in saved:
        saved = {"kind": "Generator", "state": saved}
    state = dict(saved["state"])
    if saved["kind"] == "RandomState":
        state["state"] = {**state["state"], "key": np.asarray(state["state"]["key"], np.uint32)}
    try:
        return HostRandom.from_state({"kind": saved["kind"], "state": state})
    except (TypeError, ValueError, KeyError) as exc:
        raise serialization.ModelFileError(f"saved RNG state is not valid: {exc}") from None


def restore_training(ckpt: tuple[dict, dict], be: Backend, rank: int = 0,
                     size: int = 1) -> TrainingState:
    """Everything a resumed fit needs, on ``be`` (a :class:`TrainingState`): net, optimizer,
    schedule, progress, rng, best (W, b) or None, the split's row indices (or None) and the
    rows' order; ``ckpt`` is what
    ``read(path, training=True)`` returned, so every field was validated. Data parallel:
    rank ``rank``'s own RNG, order and split."""
    arrays, meta = _for_rank(ckpt, rank, size, "the checkpoint")
    training = meta["training"]
    L, g, dtype = len(meta["layer_dims"]) - 1, meta["activations"], meta["dtype"]
    net = _network(arrays, "", L, g, be, dtype)
    state = _optimizer_state(arrays, meta)
    optimizer = device_optimizer(state, net)
    rng = _host_random(training["rng"])
    best = None
    if training.get("best"):
        b = _network(arrays, "best/", L, g, be, dtype)
        best = (b.W, b.b)
    train_idx = val_idx = None
    if training.get("split"):
        train_idx, val_idx = arrays["split/train"], arrays["split/val"]
    order = arrays.get("order")  # the epochs' cumulative shuffle (None: files before it)
    return TrainingState(net, optimizer, _schedule(meta), _progress(meta), rng, best=best,
                         train_idx=train_idx, val_idx=val_idx,
                         order=None if order is None else np.asarray(order))


def load_estimator(path: str | os.PathLike, classes: Mapping[str, type], backend: Any,
                   device: Any) -> Any:
    """The fitted estimator in ``path`` on ``backend`` / ``device`` (see ``xpnet.load``); the
    file is validated by :func:`read` first, so the model is exactly what it says or none."""
    arrays, meta = read(path)
    cls = classes.get(meta["estimator"])
    if cls is None:
        raise serialization.ModelFileError(
            f"model file {os.fspath(path)!r} holds a {meta['estimator']!r}; xpnet.load reads "
            f"{', '.join(classes)}")
    params = {**LATER_PARAMS, **_params_from_json(meta["params"])}
    valid = set(cls().get_params())
    est = cls(**{k: v for k, v in params.items() if k in valid})
    if backend is not None:
        be = get_backend(backend, device)
    else:
        be = _backend_or_numpy(params.get("backend", "auto"),
                               device if device is not None else params.get("device"), True)
    if backend is not None or be.name != params.get("backend"):
        est.set_params(backend=be.name, device=be.device_spec)
    L = len(meta["layer_dims"]) - 1
    est._net = _network(arrays, "", L, meta["activations"], be, meta["dtype"])
    state = _optimizer_state(arrays, meta)
    if state is not None:
        est._optimizer = device_optimizer(state, est._net)
    est._schedule = _schedule(meta)
    est._progress = _progress(meta)
    est._dtype, est._target_kind = meta["dtype"], meta["target_kind"]
    est._split = (None, None)
    est.n_features_in_, est.n_outputs_ = int(meta["n_features_in"]), int(meta["n_outputs"])
    names = meta.get("feature_names_in")  # validated: None or n_features_in strings
    if names is not None:
        est.feature_names_in_ = np.asarray(names, dtype=object)
    out = meta["activations"][-1]
    est.out_activation_ = "logistic" if out == "sigmoid" else out
    classes_ = classes_from_json(meta.get("classes"))
    if classes_ is not None and meta["target_kind"] != "continuous":
        est.classes_ = classes_
    est._publish()
    return est
