"""Fact tables kept in the warehouse and brought up to date from what staging re-checked, instead
of computed again from whole staged tables every night (`fct_customer_day`,
`fct_invoice_payment`).

Each fact's commit records the staged versions it was computed from and a fingerprint of its SQL
(`kam.built_from`, written atomically with the rows). A night updates the fact only when every
input is that version, or a merge of it whose re-checked keys are on record
(pipelines/stage_state.py: `merged_from`, `merged_to`, `kam_stage_changes`), and the inputs it
cannot follow by key are unchanged. Anything else (a full refresh, a replay of an earlier night,
validate removing rows, a changed transform) computes the fact whole, which is always correct: the
update is only an optimisation of it.
"""

from __future__ import annotations

import json

from pipelines import stage_state
from pipelines.warehouse import Warehouse

BUILT_FROM = "kam.built_from"


def update_plan(built: dict | None, recipe: str, versions: dict[str, int | None],
                states: dict[str, stage_state.StagedFrom], changes_version: int | None, *,
                merged: tuple[str, ...], fixed: tuple[str, ...] = ()) -> dict[str, bool] | None:
    """How tonight's fact can come from the kept one: per `merged` entity whether staging
    re-checked keys of it since (`True`: its keys in kam_stage_changes), or None when it must be
    computed whole. `fixed` entities must be the versions the fact was computed from.

    `built` is the fact's record ({"recipe", "versions"}), `recipe` tonight's fingerprint of its SQL,
    `versions` the staged tables' versions now (None: not staged), `states` staging's record,
    `changes_version` the current version of kam_stage_changes."""
    if built is None or built.get("recipe") != recipe:
        return None
    summed = built.get("versions", {})
    if any(e not in summed for e in (*merged, *fixed)) or any(summed[e] != versions[e] for e in fixed):
        return None
    plan = {}
    for entity in merged:
        if summed[entity] == versions[entity]:
            plan[entity] = False
            continue
        state = states.get(entity)
        if (state is None or state.merged_from is None or state.merged_from != summed[entity]
                or state.merged_to != versions[entity] or state.changes_version is None
                or state.changes_version != changes_version):
            return None
        plan[entity] = True
    return plan


def record(warehouse: Warehouse, fact: str) -> dict | None:
    """What the fact's rows were computed from ({"recipe", "versions"}), from its latest commit."""
    text = warehouse.commit_metadata(fact).get(BUILT_FROM)
    return json.loads(text) if text else None


def built_from(recipe: str, versions: dict[str, int | None]) -> dict[str, str]:
    """The commit metadata that records what a fact's rows were computed from."""
    return {BUILT_FROM: json.dumps({"recipe": recipe, "versions": versions}, sort_keys=True)}


def carry(warehouse: Warehouse, fact: str, built: dict | None, moved: dict[tuple[str, int], int]) -> None:
    """After maintenance: compaction and vacuum commit new versions of unchanged content, of the
    staged tables and of the fact alike. `built` is the record read before them, `moved` maps
    (table, version before) to the version after. The record follows the staged tables to their
    new versions in a commit of its own (no rows), so the night after still updates only what
    staging re-checked; a record that was already behind is left to lapse."""
    if built is None or not warehouse.exists(fact):
        return
    versions = {}
    for entity, version in built["versions"].items():
        versions[entity] = None if version is None else moved.get((f"stg_{entity}", version))
        if version is not None and versions[entity] is None:
            return
    carried = {**built, "versions": versions}
    if record(warehouse, fact) != carried:
        warehouse.annotate(fact, {BUILT_FROM: json.dumps(carried, sort_keys=True)})
