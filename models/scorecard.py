"""The credit scorecard as configuration declares it: indicators in five groups, grade cut-offs and
manual overrides. Plain declarations, apart from the arithmetic in models/credit.py, so reading
`kam.yaml` does not import pandas (every `kam` command validates the configuration first).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

GROUPS = ("character", "payment_record", "operating_capacity", "solvency", "profitability")
FINANCIAL_GROUPS = ("solvency", "profitability")


@dataclass(frozen=True)
class Indicator:
    name: str
    group: str
    points: float
    bands: tuple[tuple[float, float], ...]  # (threshold, share of points), best band first
    higher_is_better: bool = True
    missing: float = 0.0  # share of points when the value is unknown
    label: str = ""

    @property
    def financial(self) -> bool:
        return self.group in FINANCIAL_GROUPS


@dataclass(frozen=True)
class Scorecard:
    indicators: tuple[Indicator, ...]
    grades: tuple[tuple[str, float], ...]  # (grade, minimum score), best first; the last is the floor


@dataclass(frozen=True)
class Override:
    customer_id: str
    grade: str
    reason: str
    expires: date
