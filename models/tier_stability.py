"""Tier stability: a customer's tier changes only for a clear or a lasting reason.

Share-based tiers move every night for customers near a boundary: one order more or less swaps two
neighbours, and sales ops sees an account promoted on Monday and demoted on Tuesday. The rule here is
hysteresis: the customer keeps its previous tier unless its measure is beyond the boundary of the
tier the ranking now puts it in by a configured margin (relative to the boundary), or the ranking
has put it on the same other side for a configured number of consecutive runs. New customers take
their ranked tier at once. A customer sitting exactly on a boundary can still move when chance puts
it on the other side for N runs in a row; raise the margin or N to trade responsiveness for calm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StableTiers:
    tier: np.ndarray  # the tier shown and published
    changed: np.ndarray  # bool: differs from the previous run's tier (new customers: False)
    reason: np.ndarray  # why the tier is what it is, for the account manager
    pending_tier: np.ndarray  # the ranked tier while it disagrees with the shown one, else None
    pending_runs: np.ndarray  # consecutive runs the ranking has disagreed (0 when it agrees)


def tier_floors(measure: np.ndarray, ranked_tier: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """The lowest measure in each tier this run: the boundary a customer must clear to be in it."""
    floors = {}
    for name in names:
        inside = measure[ranked_tier == name]
        floors[name] = float(inside.min()) if len(inside) else np.inf
    return floors


def stabilise(measure, ranked_tier, previous_tier, previous_pending_tier, previous_pending_runs,
              names: Sequence[str], *, margin: float, runs: int) -> StableTiers:
    """Apply the hysteresis rule per customer (arrays aligned by customer; None = no previous run).

    `names` lists tiers best first. A promotion needs measure >= floor(new tier) + margin * |floor|;
    a demotion needs measure < floor(held tier) - margin * |floor|. Otherwise the customer keeps its
    tier until the ranking has placed it in the same other tier for `runs` runs in a row.
    """
    measure = np.nan_to_num(np.asarray(measure, dtype=float), nan=-np.inf)
    ranked = np.asarray(ranked_tier, dtype=object)
    held = np.asarray(previous_tier, dtype=object)
    prev_pending = np.asarray(previous_pending_tier, dtype=object)
    prev_runs = np.nan_to_num(np.asarray(previous_pending_runs, dtype=float), nan=0).astype(int)
    order = {name: i for i, name in enumerate(names)}
    floors = tier_floors(measure, ranked, names)
    r_new = np.array([order.get(t, -1) for t in ranked], dtype=int)  # a lookup per customer, no logic
    r_held = np.array([order.get(t, -1) if t is not None else -1 for t in held], dtype=int)
    floor_by_rank = np.array([floors[name] for name in names] + [np.inf])
    new_floor, held_floor = floor_by_rank[r_new], floor_by_rank[r_held]

    is_new = r_held < 0
    same = ~is_new & (r_new == r_held)
    up = ~is_new & (r_new < r_held)
    down = ~is_new & (r_new > r_held)
    with np.errstate(invalid="ignore"):  # an empty tier has an infinite floor: nobody clears it
        clear_up = up & (measure >= new_floor + margin * np.abs(new_floor))
        clear_down = down & (measure < held_floor - margin * np.abs(held_floor))
    streak = np.where(prev_pending == ranked, prev_runs + 1, 1)
    lasting = (up | down) & ~(clear_up | clear_down) & (streak >= runs)
    move = is_new | clear_up | clear_down | lasting
    tier = np.where(move | same, ranked, held)
    reason = np.select(
        [is_new, same, clear_up, clear_down, lasting],
        ["new in the ranking", "", f"above the tier boundary by more than {margin:.0%}",
         f"below the tier boundary by more than {margin:.0%}",
         f"ranked in this tier for {runs} runs in a row"],
        default="held: near the tier boundary",
    ).astype(object)
    waiting = ~move & ~same
    changed = ~is_new & (tier != held)
    return StableTiers(tier, changed, reason, np.where(waiting, ranked, None),
                       np.where(waiting, streak, 0).astype(np.int64))
