"""The import rule, read from the source with ``ast`` (every import statement, also inside
functions):

    errors  <-  core  <-  backends  <-  functional, training  <-  io  <-  estimators  <-  cli, bench

* ``core`` (the equations) imports only the standard library, ``xpnet.core`` and
  ``xpnet.errors``: it names no array library (NumPy included) and nothing above it;
* only ``backends`` (and ``bench``, whose candidates are PyTorch and scikit-learn models) imports the array libraries' own packages (cupy, torch, array_api_strict,
  array_api_compat); NumPy, the host's array library, is used above ``core`` for host-side
  work (input checks, host random draws, model files);
* no module imports a layer above its own;
* no module imports a private (``_name``) name or module of another xpnet module, and no
  ``__all__`` lists a private name;
* no import cycles between modules.
"""

from __future__ import annotations

import ast
import pathlib
import sys

import pytest

SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "xpnet"
LAYERS = {"errors": 0, "core": 1, "backends": 2, "functional": 3, "training": 3, "io": 4,
          "estimators": 5, "datasets": 0, "tables": 0, "plotting": 0, "callbacks": 4,
          "cli": 6, "bench": 6,
          "__init__": 6,
          "pipeline": 5, "columns": 0,  # issue 20: a model with its preprocessing; CSV cells
          "__main__": 7}
DEVICE_LIBRARIES = {"cupy", "cupyx", "torch", "array_api_strict", "array_api_compat", "ndonnx"}


def modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out["xpnet." + ".".join(parts) if parts != ["__init__"] else "xpnet"] = path
    return out


def imports(path: pathlib.Path) -> list[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) for every import statement."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            found.append((node.module, [a.name for a in node.names], node.lineno))
    return found


def layer(module: str) -> int:
    top = module.split(".")[1] if module != "xpnet" else "__init__"
    return LAYERS[top]


MODULES = modules()


def test_every_top_level_part_has_a_layer():
    assert {m.split(".")[1] for m in MODULES if m != "xpnet"} <= set(LAYERS)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_layers(module):
    path = MODULES[module]
    problems = []
    for target, names, line in imports(path):
        root = target.split(".")[0]
        where = f"{path.relative_to(SRC.parent)}:{line}: {target}"
        if root == "xpnet":
            full = [target] + [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
            for t in full:
                if t in MODULES and t != "xpnet" and layer(t) > layer(module) \
                        and not module.startswith(t):
                    problems.append(f"{where}: imports a higher layer")
            if any(part.startswith("_") and part != "__version__"
                   for part in target.split(".")[1:] + names) and target != module:
                problems.append(f"{where}: imports a private name {names}")
            if module.startswith("xpnet.core") and not (target.startswith("xpnet.core")
                                                        or target == "xpnet.errors"):
                problems.append(f"{where}: core imports only core and errors")
        elif module.startswith("xpnet.core") and root not in sys.stdlib_module_names:
            problems.append(f"{where}: core names a library")
        elif root in DEVICE_LIBRARIES and not module.startswith(("xpnet.backends", "xpnet.bench")):
            problems.append(f"{where}: only backends/ names {root}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_names_in_all(module):
    tree = ast.parse(MODULES[module].read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__"
                                                for t in node.targets):
            names = [e.value for e in node.value.elts]
            assert not [n for n in names if n.startswith("_") and n != "__version__"], names


def test_no_import_cycles():
    graph = {m: {t for t, names, _ in imports(p) if t in MODULES and t != m}
             | {f"{t}.{n}" for t, names, _ in imports(p) for n in names
                if f"{t}.{n}" in MODULES}
             for m, p in MODULES.items()}
    for m in graph:  # a package's __init__ may import its own submodules
        graph[m] = {t for t in graph[m] if not t.startswith(m + ".")}
    state: dict[str, int] = {}

    def visit(m, stack):
        state[m] = 1
        for t in graph[m]:
            if state.get(t) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack + [m, t]))
            if t not in state:
                visit(t, stack + [m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
