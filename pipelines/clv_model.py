"""The CLV model a week of nights shares (`kam_clv_model`): the BG/NBD and Gamma-Gamma parameters
and the holdout check made when they were fitted.

Fitted every night, the population parameters moved a little with each night's data, so every
customer's CLV, probability alive and expected purchases moved with them, whatever the customer
did; and the fit with its holdout refit took 4 of the build's seconds at a million customers. So
the parameters are fitted on `clv.refit_weekday` (Sunday by default, as mining's model) and the
nights in between score tonight's customers with them: a customer's figures then move only with
its own purchases and the passing days. The holdout check belongs to the fit; a night that keeps
the model writes the fit night's check into `clv_holdout` again, so the mart always describes the
model tonight's figures came from. How a week's model is stored: pipelines/weekly_model.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date

from models.clv import BetaGeoModel, GammaGammaModel
from pipelines import weekly_model
from pipelines.value_config import ClvConfig
from pipelines.warehouse import Warehouse

MODEL_TABLE = "kam_clv_model"


@dataclass(frozen=True)
class ClvModel:
    fit_date: date
    fingerprint: str
    bgnbd: dict[str, float]
    gamma_gamma: dict[str, float]
    converged: bool
    warnings: list[str] = field(default_factory=list)
    holdout: list[dict] | None = None  # clv_holdout's rows of the fit night (dates as ISO text)

    def estimators(self) -> tuple[BetaGeoModel, GammaGammaModel]:
        """The two fitted estimators, rebuilt from the stored parameters."""
        bg, spend = BetaGeoModel(), GammaGammaModel()
        bg.params_, spend.params_ = dict(self.bgnbd), dict(self.gamma_gamma)
        bg.converged_ = spend.converged_ = self.converged
        return bg, spend


def fingerprint(config: ClvConfig) -> str:
    """Everything in the clv section but the refit weekday shapes the stored model and its check."""
    return weekly_model.fingerprint(config.model_dump(exclude={"refit_weekday"}))


def kept_model(warehouse: Warehouse, as_of: date, config: ClvConfig) -> ClvModel | None:
    """This week's model for the night `as_of`, or None when tonight fits one."""
    row = weekly_model.kept_row(warehouse, MODEL_TABLE, as_of, config.refit_weekday, fingerprint(config))
    if row is None:
        return None
    return ClvModel(fit_date=row["fit_date"], fingerprint=row["fingerprint"], **json.loads(row["model"]))


def save(warehouse: Warehouse, model: ClvModel) -> None:
    """Store the model fitted tonight (a re-run replaces its own night's row)."""
    text = json.dumps({"bgnbd": model.bgnbd, "gamma_gamma": model.gamma_gamma, "converged": model.converged,
                       "warnings": model.warnings, "holdout": model.holdout}, default=str)
    weekly_model.save_row(warehouse, MODEL_TABLE, model.fit_date, model.fingerprint, text)
