"""The host random stream of a fit: scikit-learn's ``check_random_state`` semantics.

Every random draw of a fit comes, in scikit-learn's order, from one host stream: the initial
W[l], b[l], then the early-stopping split, then each epoch's shuffle (and, with dropout, each
epoch's mask seed, an xpnet extension drawn after the shuffle). ``random_state`` is read as
scikit-learn reads it:

* an int: ``numpy.random.RandomState(seed)``, made afresh at every ``fit`` / ``partial_fit``
  call (so the same int gives the same draws, call after call, as in scikit-learn);
* a ``RandomState``: used as is (its state advances);
* None: NumPy's global ``RandomState`` (``np.random.seed`` makes it reproducible);
* a ``numpy.random.Generator`` (xpnet only): used as is; its draws differ from scikit-learn's.

:class:`HostRandom` gives both kinds of generator one interface, and a JSON-able state for
checkpoints.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["HostRandom", "check_random_state"]


def check_random_state(random_state: Any) -> "HostRandom":
    """The fit's stream for ``random_state`` (see the module docstring)."""
    if isinstance(random_state, HostRandom):
        return random_state
    if isinstance(random_state, (np.random.RandomState, np.random.Generator)):
        return HostRandom(random_state)
    if random_state is None:
        return HostRandom(np.random.mtrand._rand)
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return HostRandom(np.random.RandomState(int(random_state)))
    raise ValueError(f"random_state must be None, a non-negative int, a numpy.random."
                     f"RandomState or Generator; got {random_state!r}")


class HostRandom:
    """A ``RandomState`` or ``Generator`` behind the few draws a fit makes."""

    def __init__(self, gen: np.random.RandomState | np.random.Generator) -> None:
        self.gen = gen
        self.legacy = isinstance(gen, np.random.RandomState)

    def permutation(self, x: Any) -> np.ndarray:
        """A permutation of 0..x-1 (x an int) or a shuffled copy of the array x
        (``RandomState.permutation``: scikit-learn's shuffle)."""
        return self.gen.permutation(x)

    def uniform(self, low: float, high: float, size: Any) -> np.ndarray:
        """Uniform float64 draws on [low, high)."""
        return self.gen.uniform(low, high, size)

    def standard_normal(self, size: Any) -> np.ndarray:
        return self.gen.standard_normal(size)

    def seed63(self) -> int:
        """An integer in [0, 2^63): one epoch's dropout seed."""
        if self.legacy:
            return int(self.gen.randint(0, 2 ** 63 - 1, dtype=np.int64))
        return int(self.gen.integers(0, 2 ** 63))

    def choice(self, a: Any, size: Any = None, replace: bool = True) -> Any:
        return self.gen.choice(a, size=size, replace=replace)

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> dict[str, Any]:
        """{"kind": "RandomState" | "Generator", "state": the bit generator's state dict}."""
        if self.legacy:
            return {"kind": "RandomState", "state": self.gen.get_state(legacy=False)}
        return {"kind": "Generator", "state": self.gen.bit_generator.state}

    @state.setter
    def state(self, value: dict[str, Any]) -> None:
        if self.legacy:
            self.gen.set_state(value["state"])
        else:
            self.gen.bit_generator.state = value["state"]

    @classmethod
    def from_state(cls, value: Any) -> "HostRandom":
        """A stream in the saved :attr:`state` (also the older form: a bare Generator state)."""
        if not isinstance(value, dict):
            raise ValueError(f"a random state must be a mapping; got {type(value).__name__}")
        if value.get("kind") == "RandomState":
            rs = np.random.RandomState()
            rs.set_state(dict(value["state"]))
            return cls(rs)
        state = value["state"] if value.get("kind") == "Generator" else value
        name = state.get("bit_generator") if isinstance(state, dict) else None
        if not isinstance(name, str) or not hasattr(np.random, name):
            raise ValueError(f"unknown bit generator {name!r} in a saved random state")
        gen = np.random.Generator(getattr(np.random, name)())
        gen.bit_generator.state = dict(state)
        return cls(gen)
