"""``est.to_onnx(path)``: a fitted model's prediction path as an ONNX model.

The graph is not a second copy of the forward pass: xpnet's own equations
(:func:`xpnet.core.forward.forward` with the portable kernels, :class:`xpnet.core.kernels.Kernels`)
run once on ndonnx arrays (:func:`xpnet.backends.ndonnx.onnx_namespace`), whose operations
record ONNX nodes instead of computing, and what they record is the model. What follows
A[L] is the estimators' own finishing step too (:func:`xpnet.training.inference.probabilities`,
:func:`~xpnet.training.inference.class_index`).

The model
---------
Input ``"X"``: (N, n_features) in the model's dtype (``est.dtype``: float32 or float64; cast
X to it), rows are examples, as for ``predict``; N is free. With ``preprocessing`` (a
:class:`xpnet.io.preprocessing.Preprocessing`: what ``xpnet train`` learned from the training
file; :meth:`xpnet.pipeline.Pipeline.to_onnx`), ``"X"`` is the **raw rows**, float64, in the
order of its ``columns`` (NaN for a missing value where the model fills them), and its steps
(fill, standardize; :meth:`~xpnet.io.preprocessing.Preprocessing.apply`, on graph nodes) run
inside the graph before the network. Outputs:

* classifiers: ``"proba"`` (N, n_classes), as ``predict_proba`` (binary: [1 - p, p]; multilabel:
  (N, n_labels), one sigmoid per label), and ``"label"``:

  - numeric (or boolean) class labels: the labels themselves, as ``predict`` (N,);
  - any other labels (strings, objects): the int64 *index* into the classes (N,); the labels
    are ``json.loads`` of the metadata entry ``xpnet.classes``: ``classes[label]`` is
    ``predict``'s answer; with ``preprocessing``, the labels themselves (strings);
  - multilabel: the int64 0/1 indicator (N, n_labels), as ``predict``.

  The metadata entry ``xpnet.label`` says which: ``"values"``, ``"index"`` or ``"indicator"``.
* regressors: ``"y"``, (N,) for one output, (N, n_outputs) otherwise, as ``predict``.

Metadata (``model.metadata_props``, strings): ``xpnet.estimator``, ``xpnet.version``,
``xpnet.dtype``, ``xpnet.target_kind``, ``xpnet.activations`` (JSON list), and for classifiers
``xpnet.classes`` (JSON list) and ``xpnet.label``; ``xpnet.feature_names`` (JSON list) when
the model was fitted on named columns (with ``preprocessing``: its columns, the input's order);
with ``preprocessing``, ``xpnet.input`` = ``"raw"`` and ``xpnet.preprocessing`` (its JSON).

Needs the ``onnx`` extra: ``pip install 'xpnet[onnx]'`` (ndonnx, onnx; onnxruntime runs it).
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from xpnet.backends import to_numpy
from xpnet.backends.ndonnx import onnx_namespace
from xpnet.core.forward import PORTABLE, forward
from xpnet.io.container import atomic_write
from xpnet.io.preprocessing import Preprocessing
from xpnet.training.inference import class_index, label_classes, probabilities, regression_values

__all__ = ["to_onnx"]


def to_onnx(est: Any, path: str | os.PathLike | None = None,
            preprocessing: Preprocessing | None = None) -> Any:
    """The ONNX model (``onnx.ModelProto``) of fitted ``est``'s prediction path (after
    ``preprocessing``'s steps when given: raw rows in); written to ``path`` too when given
    (atomically). See the module's docstring for its inputs, outputs and metadata."""
    est._check_fitted()
    nd = onnx_namespace()
    net = est._net
    dtype = getattr(nd, est._dtype)
    W = {l: nd.asarray(np.ascontiguousarray(to_numpy(net.W[l]))) for l in range(1, net.L + 1)}
    b = {l: nd.asarray(np.ascontiguousarray(to_numpy(net.b[l]))) for l in range(1, net.L + 1)}
    n_in = int(est.n_features_in_)
    if preprocessing is None:
        A0 = X = nd.argument(shape=("N", n_in), dtype=dtype)
    else:
        if preprocessing.n_features != n_in:
            raise ValueError(f"the preprocessing has {preprocessing.n_features} columns but "
                             f"the model takes {n_in} features")
        X = nd.argument(shape=("N", n_in), dtype=nd.float64)  # raw rows, as read from a file
        A0 = nd.astype(preprocessing.apply(X, xp=nd), dtype)
    # the equations themselves, on graph nodes: examples in columns, as predict runs them
    AL, _ = forward(nd.permute_dims(A0, (1, 0)), W, b, list(net.g), xp=nd, kernels=PORTABLE)
    meta = {"xpnet.estimator": type(est).__name__, "xpnet.dtype": est._dtype,
            "xpnet.target_kind": est._target_kind, "xpnet.activations": json.dumps(list(net.g))}
    if est._target_kind == "continuous":
        outputs = {"y": regression_values(AL, int(net.W[net.L].shape[0]), xp=nd)}  # as predict
    else:
        outputs, meta["xpnet.label"] = _classifier_outputs(est, AL, nd,
                                                           decode=preprocessing is not None)
        meta["xpnet.classes"] = json.dumps(np.asarray(est.classes_).tolist(), default=str)
    names = getattr(est, "feature_names_in_", None)
    if preprocessing is not None:
        names = preprocessing.columns
        meta["xpnet.input"] = "raw"
        meta["xpnet.preprocessing"] = json.dumps(preprocessing.to_json())
    if names is not None:
        meta["xpnet.feature_names"] = json.dumps([str(n) for n in names])
    model = nd.build({"X": X}, outputs)
    from xpnet import __version__

    meta["xpnet.version"] = __version__
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    model.doc_string = (f"xpnet {type(est).__name__}: layers {'-'.join(map(str, net.dims))}, "
                        f"activations {'/'.join(net.g)}, {est._dtype}")
    if path is not None:
        _write(model.SerializeToString(), path)
    return model


def _classifier_outputs(est: Any, AL: Any, nd: Any, decode: bool = False
                        ) -> tuple[dict[str, Any], str]:
    """{"proba", "label"} from A[L] (n[L], N), and what "label" holds (``decode``: string
    labels themselves rather than their index)."""
    kind = est._target_kind  # the estimator's own finishing step, on graph nodes
    proba, index = probabilities(AL, kind, xp=nd), class_index(AL, kind, xp=nd)
    if kind == "multilabel":
        return {"proba": proba, "label": index}, "indicator"
    classes = label_classes(est.classes_)
    if decode and classes.dtype.kind not in "biuf":
        classes = classes.astype(str)
    if classes.dtype.kind in "biuf" or decode:
        return {"proba": proba, "label": nd.take(nd.asarray(classes), index, axis=0)}, "values"
    return {"proba": proba, "label": index}, "index"


def _write(data: bytes, path: str | os.PathLike) -> None:
    """``data`` to ``path`` atomically, as model files are written."""
    atomic_write(path, lambda f: f.write(data), what="ONNX file")