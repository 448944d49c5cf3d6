"""Shared maximum-likelihood machinery for the CLV models.

Every model hands over one function returning the summed log-likelihood and its gradient in the
natural parameters. Fitting happens on log-parameters, so positivity needs no bounds and L-BFGS sees
a well-scaled problem; the analytic gradient is what makes a million-customer fit take seconds
instead of minutes (finite differences would cost one extra pass over the data per parameter).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

LogLik = Callable[[np.ndarray], tuple[float, np.ndarray]]


class ConvergenceWarning(UserWarning):
    """The optimiser stopped before the gradient vanished; the parameters may be off."""


@dataclass(frozen=True)
class FitResult:
    params: np.ndarray
    log_likelihood: float
    converged: bool
    iterations: int
    message: str


def maximise(loglik: LogLik, start: Sequence[float], *, max_iter: int = 2000) -> FitResult:
    """Maximise `loglik` over strictly positive parameters starting from `start`.

    Callers pass summed log-likelihoods; L-BFGS-B's tolerances are set near machine precision so the
    figures published for CDNOW (five significant digits) come out exactly, not approximately.
    """

    def negative(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        params = np.exp(log_params)
        value, grad = loglik(params)
        if not np.isfinite(value):
            return np.inf, np.zeros_like(log_params)
        return -value, -grad * params  # chain rule: d/dlog(p) = p * d/dp

    res = minimize(
        negative, np.log(np.asarray(start, dtype=float)), jac=True, method="L-BFGS-B",
        options={"maxiter": max_iter, "ftol": 1e-15, "gtol": 1e-9, "maxcor": 20},
    )
    params = np.exp(res.x)
    value, grad = loglik(params)
    # L-BFGS-B also stops on "no further progress possible" at a true optimum; judge by the gradient.
    converged = bool(np.all(np.abs(grad * params) <= 1e-4 * max(1.0, abs(value)) ** 0.5))
    return FitResult(params, float(value), converged, int(res.nit), str(res.message))


def standard_errors(loglik: LogLik, params: np.ndarray) -> np.ndarray:
    """Asymptotic standard errors from the observed information (numerical Hessian of -LL).

    The Hessian is taken by central differences of the analytic gradient, with steps relative to
    each parameter so tiny shapes (r ~ 0.2) and large scales (alpha ~ 10) are treated alike.
    """
    params = np.asarray(params, dtype=float)
    k = len(params)
    hessian = np.empty((k, k))
    for j in range(k):
        step = 1e-5 * max(abs(params[j]), 1e-8)
        up, down = params.copy(), params.copy()
        up[j] += step
        down[j] -= step
        hessian[:, j] = -(loglik(up)[1] - loglik(down)[1]) / (2 * step)
    hessian = (hessian + hessian.T) / 2
    try:
        cov = np.linalg.inv(hessian)
    except np.linalg.LinAlgError:
        return np.full(k, np.nan)
    return np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))


def fit_into(model, name: str, names: Sequence[str], loglik: LogLik, start: Sequence[float],
             n_customers: int) -> FitResult:
    """Maximise `loglik` and store `params_`, `log_likelihood_` and `n_customers_` on the model,
    warning (not failing) when the optimiser stops short: a night's CLV should not die on it."""
    result = maximise(loglik, start)
    if not result.converged:
        warnings.warn(f"{name} fit did not converge: {result.message}", ConvergenceWarning, stacklevel=3)
    model.params_ = dict(zip(names, map(float, result.params), strict=True))
    model.log_likelihood_ = result.log_likelihood
    model.n_customers_ = n_customers
    return result
