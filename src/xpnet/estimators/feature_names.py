"""``feature_names_in_``: the column names of a DataFrame X, recorded by ``fit`` and checked
at every later call exactly as scikit-learn checks them (its ``_check_feature_names``):
reordered, renamed or missing columns raise, so a DataFrame with its columns shuffled is never
predicted silently wrong.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["check_feature_names", "feature_names"]


def feature_names(X: Any) -> np.ndarray | None:
    """The column names of a dataframe X (pandas, polars, ... anything with ``columns``) as an
    object array when they are all strings; None when X has no names or none is a string."""
    columns = getattr(X, "columns", None)
    if columns is None or isinstance(X, np.ndarray) or not hasattr(X, "__len__"):
        return None
    names = np.asarray(list(columns), dtype=object)
    is_str = [isinstance(c, str) for c in names]
    if names.size and all(is_str):
        return names
    if any(is_str):
        kinds = sorted({type(c).__name__ for c in names})
        raise TypeError(
            f"Feature names are only supported if all input features have string names, but "
            f"your input has {kinds} as feature name / column name types. If you want feature "
            f"names to be stored and validated, you must convert them all to strings, by "
            f"using X.columns = X.columns.astype(str) for example. Otherwise you can remove "
            f"feature / column names from your input data, or convert them all to a "
            f"non-string data type.")
    return None


def check_feature_names(est: Any, X: Any, *, reset: bool) -> None:
    """``reset`` (a new fit): record X's names as ``est.feature_names_in_`` (or drop it);
    otherwise check X's names against them: a mismatch raises ValueError, names on one side
    only warn (scikit-learn's rules and messages)."""
    names = feature_names(X)
    if reset:
        if names is not None:
            est.feature_names_in_ = names
        elif hasattr(est, "feature_names_in_"):
            del est.feature_names_in_
        return
    fitted = getattr(est, "feature_names_in_", None)
    cls = type(est).__name__
    if fitted is None and names is None:
        return
    if names is not None and fitted is None:
        warnings.warn(f"X has feature names, but {cls} was fitted without feature names",
                      UserWarning, stacklevel=4)
        return
    if names is None and fitted is not None:
        warnings.warn(f"X does not have valid feature names, but {cls} was fitted with "
                      f"feature names", UserWarning, stacklevel=4)
        return
    if len(fitted) == len(names) and np.all(fitted == names):
        return
    message = "The feature names should match those that were passed during fit.\n"
    unexpected = sorted(set(names) - set(fitted))
    missing = sorted(set(fitted) - set(names))

    def listed(title: str, items: list[str]) -> str:
        shown = "".join(f"- {name}\n" for name in items[:5])
        more = "- ...\n" if len(items) > 5 else ""
        return f"{title}\n{shown}{more}"

    if unexpected:
        message += listed("Feature names unseen at fit time:", unexpected)
    if missing:
        message += listed("Feature names seen at fit time, yet now missing:", missing)
    if not missing and not unexpected:
        message += "Feature names must be in the same order as they were in fit.\n"
    raise ValueError(message)
