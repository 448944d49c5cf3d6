"""The run report's customer figures, counted from a planted customer_value (pipelines/report.py)."""

from __future__ import annotations

import re

import pyarrow as pa

from pipelines.report import _value_sections

TIERS = ["Platinum", "Gold", "Iron"]


def _cells(html: str) -> list[list[str]]:
    """The rows of the first HTML table, each cell's text."""
    body = html[html.index("<tbody>"):html.index("</tbody>")]
    return [re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in body.split("</tr>") if "<td" in row]


def test_the_pyramid_and_the_tier_migration_count_each_customer_once():
    # (previous tier, tier, revenue): new customers, stayers, movers, a previous tier no longer
    # configured, and a customer without a tier tonight
    rows = [(None, "Gold", 10.0), (None, "Gold", 30.0), ("Gold", "Gold", 20.0), ("Gold", "Platinum", 100.0),
            ("Iron", "Gold", None), ("Retired", "Iron", 5.0), ("Gold", None, 35.0)]
    value = pa.table({
        "previous_tier": pa.array([r[0] for r in rows], pa.string()),
        "tier": pa.array([r[1] for r in rows], pa.string()),
        "revenue_12m": pa.array([r[2] for r in rows], pa.float64()),
        "clv": pa.array([50.0, None, -3.0, 900.0, 0.0, 7.0, 1.0], pa.float64()),
    })
    sections = dict(_value_sections(value, TIERS))

    pyramid = re.findall(r"(\w+): (\d+) customers, ([\d.]+)% of revenue", sections["Customer pyramid"])
    assert pyramid == [("Platinum", "1", "50.0"), ("Gold", "4", "30.0"), ("Iron", "1", "2.5")]

    (title,) = [t for t in sections if t.startswith("Tier migration")]
    assert title.endswith("— 4 customers changed tier")  # Gold→Platinum, Iron→Gold, Retired→Iron, Gold→none
    # rows: the previous tiers seen (Platinum was nobody's), "(new)" last; columns: tonight's tiers
    assert _cells(sections[title]) == [["Gold", "1", "1", "0"], ["Iron", "0", "1", "0"],
                                       ["(new)", "0", "2", "0"]]

    (clv,) = [t for t in sections if t.startswith("CLV distribution")]
    assert clv == "CLV distribution — 4 customers with a positive CLV, median 28"
