"""scikit-learn's estimator base classes and exceptions, or minimal stand-ins without it.

With scikit-learn installed (``xpnet[sklearn]``) the estimators are real scikit-learn
estimators (``clone``, pipelines, ``check_estimator``, its warnings and ``NotFittedError``).
Without it they still work: the stand-ins give ``get_params`` / ``set_params`` and the same
exception and warning names, so user code catching them runs either way.
"""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["HAVE_SKLEARN", "BaseEstimator", "ClassifierMixin", "ConvergenceWarning",
           "DataConversionWarning", "NotFittedError", "RegressorMixin"]

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning, DataConversionWarning, NotFittedError

    HAVE_SKLEARN = True
except ImportError:  # the stand-ins: parameters by introspection of __init__, as scikit-learn
    HAVE_SKLEARN = False

    class NotFittedError(ValueError, AttributeError):  # type: ignore[no-redef]
        """The estimator is used before ``fit``."""

    class ConvergenceWarning(UserWarning):  # type: ignore[no-redef]
        """The optimizer stopped at ``max_iter`` before converging."""

    class DataConversionWarning(UserWarning):  # type: ignore[no-redef]
        """The input was converted (e.g. a column-vector y raveled)."""

    class BaseEstimator:  # type: ignore[no-redef]
        """``get_params`` / ``set_params`` from the ``__init__`` signature."""

        @classmethod
        def _get_param_names(cls) -> list[str]:
            sig = inspect.signature(cls.__init__)
            return sorted(p.name for p in sig.parameters.values()
                          if p.name != "self" and p.kind != p.VAR_KEYWORD)

        def get_params(self, deep: bool = True) -> dict[str, Any]:
            return {name: getattr(self, name) for name in self._get_param_names()}

        def set_params(self, **params: Any) -> "BaseEstimator":
            valid = self._get_param_names()
            for key, value in params.items():
                if key not in valid:
                    raise ValueError(f"invalid parameter {key!r} for {type(self).__name__}; "
                                     f"valid parameters: {', '.join(valid)}")
                setattr(self, key, value)
            return self

    class ClassifierMixin:  # type: ignore[no-redef]
        _estimator_type = "classifier"

    class RegressorMixin:  # type: ignore[no-redef]
        _estimator_type = "regressor"
