"""ndonnx: the array-API namespace whose arrays are nodes of an ONNX graph (for ``to_onnx``).

It is no :class:`~xpnet.backends.Backend` (nothing is computed, nothing lives on a device): the
forward equations run on its arrays once, symbolically, and what they build is the ONNX graph
of the prediction path (:mod:`xpnet.io.onnx`). It lives here because only ``backends/``
imports an array library's own package (``tests/test_layering.py``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["INSTALL_HINT", "onnx_namespace"]

INSTALL_HINT = "pip install 'xpnet[onnx]'"


def onnx_namespace() -> Any:
    """The ``ndonnx`` module: a standard array namespace (``xp``) plus ``argument`` (a graph
    input) and ``build`` (inputs and outputs -> ``onnx.ModelProto``). Imported on first use;
    an ``ImportError`` naming the extra to install when it is missing."""
    try:
        import ndonnx
    except ImportError as e:
        raise ImportError(f"exporting a model to ONNX needs ndonnx and onnx (and onnxruntime "
                          f"to run it): {INSTALL_HINT}") from e
    return ndonnx
