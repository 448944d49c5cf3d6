"""Where a night's steps spend their time: each DuckDB statement over a threshold, replayed on a state.

`incremental_pg.py` says how long each step of a night takes; this says which statements inside a
step do. It makes a warehouse state once, on PostgreSQL sources as that benchmark does, and keeps it:

* `--night changes`: the full night of D1, one day of changes (≈1% of the rows, `simulate_day`)
  and `kam extract` of D2 — the state a night with changes starts its stage from;
* `--night quiet`: the same, then the D2 night run whole, and `kam extract` of D3 with no source
  changes — the state a night with no changes starts its stage from.

Then, as often as asked (`--repeat`), each step of `--steps` (in order; by default stage, validate,
build, mine) runs in this process on a fresh hard-link copy of the state, printing the statements
that took more than `--over` seconds, and the step's wall and CPU seconds. The steps run as
`kam run` runs them (pipelines.nightly.run_step, Great Expectations and scikit-learn imported
first); PostgreSQL is stopped by then, so publish is not among the steps it replays.

    uv run python benchmarks/step_profile.py --customers 1000000 --night changes --steps stage
    uv run python benchmarks/step_profile.py --state /tmp/kam-profile-changes-1000000 --steps build --over 0.5

The state stays in `--state` (default `/tmp/kam-profile-<night>-<customers>`); a later call with
that directory replays on it without making it again. Statements are timed where they are
executed through a DuckDB connection (`Session.con.execute`, `Warehouse` writes); statements on
cursors (the exports' workers) are not listed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.incremental_pg import D1, D2, run_measured, settle  # noqa: E402
from pipelines import duck  # noqa: E402
from pipelines.demo.changes import simulate_day  # noqa: E402
from tests.postgres_server import start_postgres  # noqa: E402

D3 = D2 + timedelta(days=1)  # a Friday: no maintenance night
READY = ".profile-state-ready"  # written last: a state without it was not finished


def make_state(state: Path, customers: int, night: str) -> None:
    """The warehouse and workspace a night's stage starts from (see the module's docstring)."""
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    (state / "kam.yaml").write_text((REPO / "kam.yaml").read_text())
    kam = [sys.executable, "-m", "pipelines.cli"]
    with start_postgres() as pg, open(state / "state.log", "w") as log:
        urls = {s: pg.create_database(f"kam_{s}") for s in ("crm", "erp", "scm")}
        env = {**os.environ, "COLUMNS": "120", **{f"KAM_{s.upper()}_URL": u for s, u in urls.items()}}

        def run(*args: str) -> None:
            seconds, _ = run_measured([*kam, *args], state, env, log)
            print(f"  state: kam {' '.join(args)}: {seconds:.1f} s", flush=True)

        run("demo-data", "--customers", str(customers), "--as-of", D1.isoformat())
        for system in urls:
            settle(pg.libpq(f"kam_{system}"))
        run("run", "--as-of", D1.isoformat())
        print(f"  state: changes for {D2}: {simulate_day(urls, D2, share=0.01, seed=1)}", flush=True)
        if night == "quiet":
            run("run", "--as-of", D2.isoformat())
        run("extract", "--as-of", (D3 if night == "quiet" else D2).isoformat())
    (state / READY).write_text(night)


class _TimedConnection:
    """A DuckDB connection that prints each statement it executes taking more than `over` seconds."""

    def __init__(self, con, over: float):
        self._con, self._over = con, over

    def __getattr__(self, name):
        return getattr(self._con, name)

    def execute(self, sql, *args, **kwargs):
        started = time.perf_counter()
        result = self._con.execute(sql, *args, **kwargs)
        seconds = time.perf_counter() - started
        if seconds > self._over:
            statement = re.sub(r"\s+", " ", str(sql)).strip()[:140]
            print(f"    {seconds:6.2f} s  {statement}", flush=True)
        return result


def replay(state: Path, steps: list[str], as_of: date, over: float) -> dict[str, tuple[float, float]]:
    """Run `steps` in turn on a fresh hard-link copy of `state`; returns (wall, CPU) seconds per step.
    Delta files are never rewritten in place, so the copy's writes leave the state as it was; the
    one file written in place (the BI DuckDB file) is copied whole."""
    work = state.with_name(state.name + ".replay")
    shutil.rmtree(work, ignore_errors=True)
    subprocess.run(["cp", "-al", str(state), str(work)], check=True)
    bi = work / "warehouse" / "kam_bi.duckdb"
    if bi.exists():
        bi.unlink()
        shutil.copy(state / "warehouse" / "kam_bi.duckdb", bi)
    import great_expectations  # noqa: F401  (imported first, as `kam run` does before its steps)
    import sklearn  # noqa: F401

    from pipelines.config import load_config
    from pipelines.nightly import run_step

    settings = load_config(work / "kam.yaml")
    connect = duck.connect
    duck.connect = lambda *a, **k: _TimedConnection(connect(*a, **k), over)
    seconds = {}
    try:
        for step in steps:
            print(f"  {step} {as_of}:", flush=True)
            wall, cpu = time.perf_counter(), time.process_time()
            run_step(step, as_of, settings)
            seconds[step] = (time.perf_counter() - wall, time.process_time() - cpu)
            print(f"  {step}: {seconds[step][0]:.2f} s, {seconds[step][1]:.2f} CPU s", flush=True)
    finally:
        duck.connect = connect
        shutil.rmtree(work, ignore_errors=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--night", choices=["changes", "quiet"], default="changes")
    parser.add_argument("--state", type=Path, help="the state's directory (made when not ready)")
    parser.add_argument("--steps", nargs="+", default=["stage", "validate", "build", "mine"],
                        choices=["stage", "validate", "build", "mine", "check"])
    parser.add_argument("--over", type=float, default=0.25, help="list statements slower than this (s)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    state = args.state or Path(f"/tmp/kam-profile-{args.night}-{args.customers}")
    if not (state / READY).exists():
        print(f"making the state in {state} ({args.customers:,} customers, night with {args.night})",
              flush=True)
        make_state(state, args.customers, args.night)
    night = (state / READY).read_text()
    as_of = D3 if night == "quiet" else D2
    print(f"replaying {' '.join(args.steps)} for {as_of} on {state} (night with {night})", flush=True)
    runs = [replay(state, args.steps, as_of, args.over) for _ in range(args.repeat)]
    for step in args.steps:
        print(f"{step:9s} " + " / ".join(f"{r[step][0]:.2f} s ({r[step][1]:.2f} CPU s)" for r in runs))


if __name__ == "__main__":
    main()
