"""The names a user may give, each listed once: solvers, schedules, initialisations,
activations and the output layer each loss pairs with.

Everything that validates or offers a name — the estimators' parameter constraints
(:mod:`xpnet.estimators.constraints`), model files (:mod:`xpnet.io.metadata`), the command
line — reads it from here, so a new solver or activation is added in one place (and its maths
in its own module: :mod:`xpnet.core.optim`, :mod:`xpnet.core.activations`).
"""

from __future__ import annotations

from xpnet.core.activations import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS
from xpnet.core.optim import OPTIMIZERS, SCHEDULES

__all__ = ["ACTIVATION_ALIASES", "CLASSIFIER_OUTPUTS", "HIDDEN_ACTIVATIONS", "INITS",
           "OUTPUT_ACTIVATIONS", "REGRESSOR_OUTPUTS", "SCHEDULES", "SOLVERS", "STOCHASTIC",
           "activation_name"]

#: the stochastic solvers: epochs of mini-batches through an optimizer of :mod:`xpnet.core.optim`
STOCHASTIC = tuple(OPTIMIZERS)
#: every solver: the stochastic ones and scikit-learn's full-batch L-BFGS (scipy's L-BFGS-B)
SOLVERS = (*STOCHASTIC, "lbfgs")
#: "glorot": scikit-learn's uniform W and b; "he": He-normal for relu layers, Glorot otherwise
INITS = ("glorot", "he")
#: scikit-learn's names for xpnet's activations
ACTIVATION_ALIASES = {"logistic": "sigmoid"}
#: a classifier's output activation by target kind (its cost: OUTPUT_COST in core.losses)
CLASSIFIER_OUTPUTS = {"binary": "sigmoid", "multiclass": "softmax", "multilabel": "sigmoid"}
#: a regressor's output activation by ``loss``
REGRESSOR_OUTPUTS = {"squared_error": "identity", "poisson": "exp"}


def activation_name(name: str) -> str:
    """xpnet's name for an activation given by scikit-learn's name or xpnet's own."""
    return ACTIVATION_ALIASES.get(name, name)
