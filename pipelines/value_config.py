"""kam.yaml sections for customer value: CLV, cost-to-serve, alerts and the credit scorecard.

Kept apart from config.py (sources, entities, tiers) so each stays readable; KamConfig includes
these. Every figure the domain literature gives as a rule of thumb is a default here or in kam.yaml,
never a constant in the code that uses it.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.scorecard import FINANCIAL_GROUPS, GROUPS, Indicator, Override, Scorecard


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClvConfig(_Strict):
    """CLV from BG/NBD + Gamma-Gamma on each customer's order history up to the as-of date."""

    horizon_months: Annotated[int, Field(ge=1, le=120)] = 12
    discount_rate_yearly: Annotated[float, Field(ge=0, le=1)] = 0.10
    default_margin: Annotated[float, Field(gt=0, le=1)] = 0.30  # when a customer's own margin is unknown
    min_history_weeks: Annotated[float, Field(ge=0)] = 4.0  # younger customers' estimates are flagged
    min_customers: Annotated[int, Field(ge=2)] = 30  # fewer: no fit, CLV left empty with a reason
    holdout_weeks: Annotated[float, Field(gt=0, le=260)] = 26.0
    at_risk_probability: Annotated[float, Field(gt=0, lt=1)] = 0.5
    refit_weekday: Annotated[int, Field(ge=0, le=6)] | None = Field(
        6, description="as-of weekday (0 = Monday) on which the BG/NBD and Gamma-Gamma parameters are "
                       "fitted again; the nights between score with that week's (null: refit every night)")


class CostToServeConfig(_Strict):
    """Each part of the cost of serving a customer; a part left out (null) is simply not counted."""

    per_order: Annotated[float, Field(ge=0)] | None = None  # order handling, per order
    per_service_case: Annotated[float, Field(ge=0)] | None = None
    per_complaint: Annotated[float, Field(ge=0)] | None = None  # on top of the case cost
    per_return: Annotated[float, Field(ge=0)] | None = None  # handling, on top of the credit note
    return_credits: bool = False  # count credit notes for returns as a cost
    freight: bool = False  # freight cost as recorded by logistics
    capital_rate_yearly: Annotated[float, Field(ge=0, le=1)] | None = None  # payment delay as cost of capital


# Tier lists left out (null) mean "every tier but the lowest": the customers worth a call.
class DecliningAlert(_Strict):
    former_tiers: list[str] | None = None
    # revenue or orders of the trailing 12 months below (1 - drop) x the 12 months before
    drop: Annotated[float, Field(gt=0, lt=1)] = 0.40
    # A fall means something only for a customer that bought more than once: a single order a year
    # "falls" 100% whenever it slips into the next year.
    min_orders_before: Annotated[int, Field(ge=1)] = 2


class AlertConfig(_Strict):
    declining: DecliningAlert | None = DecliningAlert()
    at_risk: bool = True  # probability alive below clv.at_risk_probability in the at-risk tiers
    at_risk_tiers: list[str] | None = None
    complaints_12m: Annotated[int, Field(ge=1)] | None = 3
    days_late: Annotated[float, Field(ge=0)] | None = 15.0  # median days past due ...
    late_invoices: Annotated[int, Field(ge=1)] = 12  # ... over the customer's most recent invoices due
    costs_more_than_it_earns: bool = True
    narrow_buyer_max_lines: Annotated[int, Field(ge=1)] | None = 1
    narrow_buyer_tiers: list[str] | None = None


class IndicatorConfig(_Strict):
    group: str
    points: Annotated[float, Field(gt=0)]
    bands: list[tuple[float, Annotated[float, Field(ge=0, le=1)]]]
    higher_is_better: bool = True
    missing: Annotated[float, Field(ge=0, le=1)] = 0.0
    label: str = ""

    @model_validator(mode="after")
    def _sane(self) -> IndicatorConfig:
        if self.group not in GROUPS:
            raise ValueError(f"group {self.group!r} is not one of {', '.join(GROUPS)}")
        if not self.bands:
            raise ValueError("give at least one band [threshold, share]")
        thresholds = [t for t, _ in self.bands]
        ordered = sorted(thresholds, reverse=self.higher_is_better)
        if thresholds != ordered:
            raise ValueError(f"bands must go from the best threshold to the worst, got {thresholds}")
        return self


class OverrideConfig(_Strict):
    customer_id: str
    grade: str
    reason: Annotated[str, Field(min_length=3)]
    expires: date


class CreditConfig(_Strict):
    """The 100-point scorecard, computed each quarter from the previous quarter."""

    total_points: float = 100.0
    financial_points: float = 30.0
    grades: dict[str, float]  # grade -> minimum score, best first; the last is the floor (0)
    indicators: dict[str, IndicatorConfig]
    overrides: list[OverrideConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _adds_up(self) -> CreditConfig:
        total = sum(i.points for i in self.indicators.values())
        financial = sum(i.points for i in self.indicators.values() if i.group in FINANCIAL_GROUPS)
        if abs(total - self.total_points) > 1e-9:
            raise ValueError(f"indicator points add up to {total:g}, not {self.total_points:g}")
        if abs(financial - self.financial_points) > 1e-9:
            raise ValueError(
                f"financial indicator points add up to {financial:g}, not {self.financial_points:g}")
        minimums = list(self.grades.values())
        if minimums != sorted(minimums, reverse=True) or not minimums:
            raise ValueError("grades must go from the best (highest minimum score) to the worst")
        for o in self.overrides:
            if o.grade not in self.grades:
                raise ValueError(
                    f"override for {o.customer_id}: {o.grade!r} is not a grade ({', '.join(self.grades)})")
        return self

    def scorecard(self) -> Scorecard:
        return Scorecard(
            tuple(Indicator(name, i.group, i.points, tuple(map(tuple, i.bands)), i.higher_is_better,
                            i.missing, i.label) for name, i in self.indicators.items()),
            tuple(self.grades.items()),
        )

    def override_list(self) -> list[Override]:
        return [Override(o.customer_id, o.grade, o.reason, o.expires) for o in self.overrides]
