"""Customer lifetime value models: BG/NBD (and Pareto/NBD) purchases, Gamma-Gamma spend, CLV, holdout.

Familiar to users of the `lifetimes` package (same parameter names and method names), without
depending on it: closed-form log-likelihoods on arrays, analytic gradients, log-space arithmetic.
"""

from models.clv.bgnbd import BetaGeoModel
from models.clv.gamma_gamma import GammaGammaModel
from models.clv.holdout import HoldoutResult, evaluate_holdout, holdout_evaluation
from models.clv.pareto_nbd import ParetoNBDModel
from models.clv.summary import customer_summary, purchases_between
from models.clv.value import customer_lifetime_value, history_flags

__all__ = [
    "BetaGeoModel",
    "GammaGammaModel",
    "HoldoutResult",
    "ParetoNBDModel",
    "customer_lifetime_value",
    "customer_summary",
    "evaluate_holdout",
    "history_flags",
    "holdout_evaluation",
    "purchases_between",
]
