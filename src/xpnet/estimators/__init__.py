"""scikit-learn's MLPClassifier and MLPRegressor on any array backend (:mod:`xpnet.estimators.mlp`)."""

from xpnet.estimators.mlp import MLPClassifier, MLPRegressor, load

__all__ = ["MLPClassifier", "MLPRegressor", "load"]
