"""``xpnet info``: the backends, their devices, and the versions of the optional extras."""

from __future__ import annotations

import argparse
import platform
from importlib import metadata

__all__ = ["run_info"]


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _graphs() -> None:
    """Where CUDA graphs can be captured here (graphs=True), and why a fit runs eagerly."""
    from xpnet.backends.graphs import support_table
    from xpnet.training.graphs import AUTO

    print("CUDA graphs (the estimators' graphs=True):")
    for place, ok, why in support_table():
        print(f"  {place:<17} {'capturable' if ok else 'eager':<10} {why}")
    print(f"  {AUTO}")


def run_info(args: argparse.Namespace) -> int:
    from xpnet import __version__
    from xpnet.backends import available_backends, get_backend
    from xpnet.backends import devices

    print(f"xpnet {__version__} (Python {platform.python_version()}, {platform.system()} "
          f"{platform.machine()})")
    print("backends:")
    found = available_backends()
    width = max(map(len, found))
    for name, (usable, reason) in found.items():
        if usable:
            listed = ", ".join(devices(name, describe=True)) or "none"
            print(f"  {name:<{width}}  usable    {reason}; devices: {listed}")
        else:
            print(f"  {name:<{width}}  unusable  {reason}")
    print(f"  backend 'auto' means: {get_backend('auto').name}")
    _graphs()
    print("packages:")
    for dist, role in (("numpy", "required"), ("array-api-compat", "required"),
                       ("scikit-learn", "datasets, extra [sklearn]"),
                       ("tqdm", "progress bars, extra [progress]"),
                       ("matplotlib", "--plot, extra [plot]"), ("torch", "backend, extra [torch]"),
                       ("cupy-cuda12x", "backend, extra [cuda12]"),
                       ("cupy-cuda13x", "backend, extra [cuda13]"),
                       ("nvmath-python", "CuPy CUDA graphs, extras [cuda12], [cuda13]"),
                       ("array-api-strict", "backend (testing)"),
                       ("ndonnx", "ONNX export, extra [onnx]"),
                       ("onnxruntime", "ONNX export checks, extra [onnx]"),
                       ("mpi4py", "data parallel, extra [mpi]"),
                       ("mpich", "mpiexec, extra [mpi]"),
                       ("tensorboardX", "TensorBoardLogger, extra [tensorboard]")):
        version = _version(dist)
        if version is not None or role == "required" or not dist.startswith("cupy"):
            print(f"  {dist:<17} {version or 'not installed':<16} {role}")
    return 0
