"""Replay the weekly night of a kept 1M run in process: the Sunday's stage and consolidation, timed.

The nights of `incremental_pg.py --sunday --keep` leave a warehouse with every raw batch (raw is
append-only) and a copy of it after the full night. `--prepare` builds, from those, the state after
Saturday's stage (Thursday to Saturday staged again), once; every other call copies that state
and runs the Sunday (and, with `--nights`, the nights after it) on the copy, so two checkouts are
compared on the same input. The code measured is the checkout Python imports: run it as
`PYTHONPATH=<checkout> python benchmarks/replay_sunday.py ...`, each alone under the heavy lock.

    python benchmarks/replay_sunday.py --kept benchmarks/out/pg-1000000 --state /tmp/sat --prepare
    python benchmarks/replay_sunday.py --state /tmp/sat --work /tmp/sun            # stage, consolidate
    python benchmarks/replay_sunday.py --state /tmp/sat --work /tmp/sun --no-consolidation \\
        --nights 2026-11-22 2026-11-23 --steps stage
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import time
from datetime import date
from pathlib import Path

import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake

import pipelines
from pipelines.batches import BATCH_TABLE
from pipelines.config import load_config
from pipelines.consolidate import consolidate
from pipelines.nightly import step_function
from pipelines.warehouse import Warehouse

WEEK = ["2026-11-19", "2026-11-20", "2026-11-21"]  # incremental_pg.py's Thursday to Saturday


def prepare(kept: Path, state: Path) -> None:
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    (state / "kam.yaml").write_text((kept / "kam.yaml").read_text())
    shutil.copytree(kept / "warehouse-after-full", state / "warehouse")
    for raw in (kept / "warehouse" / "raw").iterdir():  # every batch, and the registry naming them
        shutil.rmtree(state / "warehouse" / "raw" / raw.name, ignore_errors=True)
        shutil.copytree(raw, state / "warehouse" / "raw" / raw.name)
    shutil.rmtree(state / "warehouse" / "meta" / BATCH_TABLE, ignore_errors=True)
    shutil.copytree(kept / "warehouse" / "meta" / BATCH_TABLE, state / "warehouse" / "meta" / BATCH_TABLE)
    settings = load_config(state / "kam.yaml")
    for night in WEEK:
        started = time.perf_counter()
        step_function("stage")(settings, date.fromisoformat(night))
        print(f"{night} stage {time.perf_counter() - started:.2f} s", flush=True)


def replay(state: Path, work: Path, nights: list[date], steps: list[str], consolidation: bool) -> None:
    shutil.rmtree(work, ignore_errors=True)
    subprocess.run(["cp", "-a", str(state), str(work)], check=True)
    text = (work / "kam.yaml").read_text()
    flag = "  consolidate: true" if consolidation else "  consolidate: false"
    for setting in ("  consolidate: true", "  consolidate: false"):
        text = text.replace(setting, flag, 1)
    (work / "kam.yaml").write_text(text)
    settings = load_config(work / "kam.yaml")
    # Batches after the last night were not extracted yet then; consolidation skips a raw table
    # that has any.
    registry = settings.warehouse_path / "meta" / BATCH_TABLE
    batches = DeltaTable(str(registry)).to_pyarrow_table()
    write_deltalake(str(registry), batches.filter(pc.field("extract_date") <= nights[-1].isoformat()),
                    mode="overwrite")
    for night in nights:
        for step in steps:
            started = time.perf_counter()
            if step == "consolidate":
                folded, notes = consolidate(settings, night, Warehouse(settings.warehouse_path))
                said = f"{len(folded)} table(s) folded {notes or ''}"
            else:
                said = "; ".join(step_function(step)(settings, night).notes)
            print(f"{night} {step} {time.perf_counter() - started:.2f} s {said}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kept", type=Path, help="a kept run's folder (benchmarks/out/pg-N), for --prepare")
    parser.add_argument("--state", type=Path, required=True, help="the state after Saturday's stage")
    parser.add_argument("--prepare", action="store_true", help="build --state from --kept")
    parser.add_argument("--work", type=Path, help="where the replay's copy of the state goes")
    parser.add_argument("--nights", nargs="+", default=["2026-11-22"])
    parser.add_argument("--steps", nargs="+", default=["stage", "consolidate"])
    parser.add_argument("--no-consolidation", action="store_true", help="`warehouse.consolidate: false`")
    args = parser.parse_args()
    print(f"code: {Path(pipelines.__file__).parent.parent}", flush=True)
    if args.prepare:
        prepare(args.kept, args.state)
    else:
        replay(args.state, args.work, [date.fromisoformat(n) for n in args.nights], args.steps,
               consolidation=not args.no_consolidation)


if __name__ == "__main__":
    main()
