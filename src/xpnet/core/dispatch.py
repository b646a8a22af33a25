"""Where the equations find the namespace and backend of given arrays: a resolver that
:mod:`xpnet.backends` registers when it is imported (which ``import xpnet`` does).

The core names no array library and imports nothing above it; the functions that accept bare
arrays without an ``xp`` (an optimizer built on a list of tensors, say) ask here.
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["register", "resolve"]

_resolver: Callable[..., tuple[Any, Any]] | None = None


def register(resolver: Callable[..., tuple[Any, Any]]) -> None:
    """Install ``resolver(*arrays) -> (xp, backend)``; it raises TypeError for mixed libraries."""
    global _resolver
    _resolver = resolver


def resolve(*arrays: Any) -> tuple[Any, Any]:
    """(xp, backend) of the arrays; TypeError when they are not arrays of one backend."""
    if _resolver is None:
        raise RuntimeError("no array backends are registered: import xpnet first")
    return _resolver(*arrays)
