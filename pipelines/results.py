"""What a step reports back: rows per table, time taken, and findings worth a human's eye."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StepResult:
    step: str
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    details: dict[str, object] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())
