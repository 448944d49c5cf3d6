"""The answer key: which customer was given which pattern, for testing the jobs that look for them.

One row per ERP customer. It exists only in memory and in the Parquet file `write_truth` writes;
it must never reach the source databases, or the pipeline could "find" patterns by reading them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.demo import vocab
from pipelines.demo.customers import Parties
from pipelines.demo.population import Population
from pipelines.demo.schema import to_arrow
from pipelines.demo.timeline import Timeline

LINE_NAMES = [line[0] for line in vocab.PRODUCT_LINES]
PAIR_NAMES = [f"{a}>{b}" for a, b, _ in vocab.AFFINITY_PAIRS]
PREFERRED_SHARE = 0.05  # a line the customer buys from on purpose, not by the 1% leak


def _lists(mask: np.ndarray, names: list[str]) -> pa.ListArray:
    """Per row, the names whose column in the boolean matrix is set."""
    counts = mask.sum(axis=1)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    values = pa.array(names, pa.string()).take(pa.array(np.nonzero(mask)[1]))
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def build_truth(pop: Population, parties: Parties, timeline: Timeline,
                churn_rule: tuple[np.ndarray, np.ndarray]) -> pa.Table:
    """`churn_rule` is (part_a, part_b) of the planted churn rule per customer (churn.py)."""
    churned = pop.is_churned & (pop.stop < timeline.n_days)
    return pa.table({
        "customer_no": parties.customer_no,
        "crm_account_id": parties.account_id,
        "consignee_code": parties.consignee_code,
        "erp_link": parties.erp_link,
        "created_on": to_arrow(timeline.dates(pop.created)),
        "value_weight": pop.weight,
        "value_rank": pop.value_rank,
        "is_declining": pop.is_declining,
        "is_late_payer": pop.is_late_payer,
        "is_complainer": pop.is_complainer,
        "is_costly_small": pop.is_costly_small,
        "is_growing": pop.is_growing,
        "is_churned": churned,
        "stopped_ordering_on": to_arrow(timeline.dates(pop.stop), mask=~churned),
        "decline_drop": pop.decline_drop,
        "growth_per_year": np.where(pop.is_growing, pop.trend_slope, 0.0),
        "mean_days_late": pop.days_late,
        "is_lost": churn_rule[0] | churn_rule[1],  # the ERP status LOST: the planted churn label
        "churn_recency_cases": churn_rule[0],  # no order for > 20 weeks AND >= 5 cases in 12m
        "churn_delay_on_time": churn_rule[1],  # payment delay > 25 days AND on-time rate < 0.85
        "is_service_churner": pop.is_service_churner,
        "is_poorly_served": pop.is_poorly_served,
        "affinity_pairs": _lists(pop.affinity_fired, PAIR_NAMES),
        "preferred_lines": _lists(pop.line_share >= PREFERRED_SHARE, LINE_NAMES),
    })


def write_truth(systems, path: str | Path) -> Path:
    """Write `systems.truth` to a Parquet file (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(systems.truth, path)
    return path
