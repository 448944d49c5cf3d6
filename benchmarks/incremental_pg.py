"""Benchmark extraction and nightly runs on PostgreSQL sources: full night, incremental night, COPY.

For each size a throwaway PostgreSQL server (the one the tests use) is started, the demo is
loaded into it and vacuumed (frozen and analysed, as a live database is). Then, in the same run and
on the same server:

1. the server's own floor: `COPY sales_order_lines TO STDOUT` read by psycopg (= 1.0);
2. KAM's extraction of that table (DuckDB's postgres scanner → Parquet → Delta commit);
3. a full night `kam run` (every step, then the exports and the run report) as its own process:
   wall time, CPU seconds (KAM's processes, not the database server's), peak RSS;
4. one day of changes (≈1% of order lines updated, 0.5% new orders, 1% of several master tables);
5. the incremental night `kam run` for the next day: wall time, CPU seconds, peak RSS;
   (peak RSS of the largest process of the run, and the process tree's summed RSS and PSS sampled
   twice a second: `kam run` forks each step); with `--incremental-nights 2` or 3, as many
   days in turn, each with its own day of changes (the ratio is the median night's: a single
   night's share moved by 4-5 points between runs of the same code);
6. with `--quiet-night`, one more weekday night after them with no source changes at all (the
   floor of a night: the steps' work that does not follow the changes);
7. with `--sunday`, the next Sunday: a day of changes, the weekly key reconciliation of every
   table (deletions) and the weekly maintenance, which folds each raw table's week into a new
   base batch; then the Monday after it, a day of changes, the first night on that base
   (`--no-consolidation`: the same nights with `warehouse.consolidate: false`);
8. seconds per step of every night from the run ledger, and validation's share of them.

    uv run python benchmarks/incremental_pg.py --sizes 10000 100000 1000000
    uv run python benchmarks/incremental_pg.py --sizes 1000000 --sunday   # and the weekly night
    uv run python benchmarks/incremental_pg.py --sizes 1000000 --incremental-nights 3
    uv run python benchmarks/incremental_pg.py --sizes 1000000 --incremental-nights 2 --quiet-night
    uv run python benchmarks/incremental_pg.py --sizes 1000000 --extract-only   # 1. and 2. only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipelines.config import load_config  # noqa: E402
from pipelines.demo.changes import simulate_day  # noqa: E402
from pipelines.extract import Plan, land, planned_reads  # noqa: E402
from pipelines.source_scan import SourceConnections  # noqa: E402
from pipelines.warehouse import Warehouse  # noqa: E402
from tests.postgres_server import find_bindir, start_postgres  # noqa: E402

OUT = REPO / "benchmarks" / "out"
D1, D2 = date(2026, 11, 18), date(2026, 11, 19)  # a Wednesday and a Thursday: no maintenance night
MAX_INCREMENTAL_NIGHTS = 3  # Thursday to Saturday: the Sunday is a maintenance night
D3 = date(2026, 11, 22)  # the Sunday after: the weekly key reconciliation and maintenance (`--sunday`)
D4 = D3 + timedelta(days=1)  # and the Monday after it
TABLE = "sales_order_lines"


class TreeMemory:
    """Samples a process and all its descendants twice a second: the peak of their summed RSS
    and of their summed PSS (a page shared by a forked step and its parent counts once in PSS,
    twice in RSS). `kam run` forks each step, so the largest single process (wait4's ru_maxrss)
    alone could hide the parent's memory held beside the step's."""

    def __init__(self, pid: int):
        self.pid, self.rss, self.pss = pid, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            tree = _descendants(self.pid)
            rss = pss = 0
            for pid in tree:
                kib = _smaps_rollup(pid)
                rss, pss = rss + kib.get("Rss", 0), pss + kib.get("Pss", 0)
            self.rss, self.pss = max(self.rss, rss * 1024), max(self.pss, pss * 1024)

    def stop(self) -> tuple[float, float]:
        """Peak summed RSS and PSS, MiB."""
        self._stop.set()
        self._thread.join()
        return self.rss / 2**20, self.pss / 2**20


def _descendants(root: int) -> list[int]:
    """`root` and every process below it, from /proc (Linux)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])  # after "pid (comm) state"
            parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def _smaps_rollup(pid: int) -> dict[str, int]:
    """The process's memory totals in KiB (Rss, Pss, ...); empty if it has gone."""
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    except OSError:
        return {}
    return {k.rstrip(":"): int(v) for k, v, *_ in (line.split() for line in lines)}


def run_measured(args: list[str], cwd: Path, env: dict, log, tree: dict | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of the largest process of the run (the process or one of
    its children); with `tree`, also the process tree's sampled peaks (`tree_rss_mib`, `tree_pss_mib`)
    and its CPU seconds (`cpu_seconds`: user + system of the process and every child it waited for,
    not the PostgreSQL server's). On a shared 2-core machine wall time moves with the machine's
    other load by more than a change of a few seconds (benchmarks/README.md); CPU seconds leave out
    the time KAM's processes spent waiting for a core."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env)
    sampler = TreeMemory(proc.pid) if tree is not None else None
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if sampler is not None:
        tree["tree_rss_mib"], tree["tree_pss_mib"] = (round(x) for x in sampler.stop())
        tree["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 1)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed; see {log.name}")
    return seconds, usage.ru_maxrss / 1024


def copy_floor(libpq: str) -> tuple[float, int]:
    """Seconds and rows for `COPY table TO STDOUT` read by psycopg and discarded."""
    import psycopg

    started = time.perf_counter()
    rows = 0
    with psycopg.connect(libpq) as con, con.cursor() as cur:
        with cur.copy(f"COPY {TABLE} TO STDOUT") as copy:
            for block in copy:
                rows += bytes(block).count(b"\n")
    return time.perf_counter() - started, rows


def settle(libpq: str) -> None:
    """VACUUM (FREEZE, ANALYZE) a freshly loaded database, the state a live one is in. Otherwise
    autovacuum starts on the 30M new rows during the measurements and takes one of the 2 cores from
    whichever reader runs then (one run at 1M: KAM 0.55 of psql's COPY, others 0.73-0.76)."""
    import psycopg

    with psycopg.connect(libpq, autocommit=True) as con:
        con.execute("VACUUM (FREEZE, ANALYZE)")


def psql_floor(libpq: str) -> float:
    """Seconds for `psql -c 'COPY table TO STDOUT' > /dev/null`: the C client, the hardest floor."""
    psql = find_bindir() / "psql"
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        subprocess.run([str(psql), libpq, "-c", f"COPY {TABLE} TO STDOUT"], stdout=sink, check=True)
    return time.perf_counter() - started


def kam_extract(settings, scratch: Path) -> tuple[float, int]:
    """Seconds and rows for KAM landing the table as one raw batch (parquet written + committed)."""
    [raw] = [r for r in planned_reads(settings) if r.table == TABLE]
    shutil.rmtree(scratch, ignore_errors=True)
    warehouse = Warehouse(scratch)
    started = time.perf_counter()
    with SourceConnections() as sources:
        scan = sources.scan(settings.source_url(raw.source), table=raw.table)
        batch = land(warehouse, scan, raw, D1, Plan("full"), None)
    return time.perf_counter() - started, batch.rows


def bench(size: int, keep: bool = False, extract_only: bool = False, sunday: bool = False,
          incremental_nights: int = 1, consolidation: bool = True, quiet_night: bool = False) -> dict:
    work = OUT / (f"pg-{size}-extract" if extract_only else f"pg-{size}")  # a kept warehouse stays
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    config = (REPO / "kam.yaml").read_text()
    if not consolidation:
        config = config.replace("  consolidate: true", "  consolidate: false", 1)
        assert "consolidate: false" in config
    (work / "kam.yaml").write_text(config)
    figures: dict = {"customers": size}
    kam = [sys.executable, "-m", "pipelines.cli"]
    with start_postgres() as pg, open(work / "log.txt", "w") as log:
        urls = {s: pg.create_database(f"kam_{s}") for s in ("crm", "erp", "scm")}
        env = {**os.environ, "COLUMNS": "120", **{f"KAM_{s.upper()}_URL": u for s, u in urls.items()}}
        os.environ.update({f"KAM_{s.upper()}_URL": u for s, u in urls.items()})
        seconds, _ = run_measured([*kam, "demo-data", "--customers", str(size), "--as-of", D1.isoformat()],
                                  work, env, log)
        figures["load_seconds"] = round(seconds, 1)
        started = time.perf_counter()
        for system in ("crm", "erp", "scm"):
            settle(pg.libpq(f"kam_{system}"))
        figures["vacuum_seconds"] = round(time.perf_counter() - started, 1)
        settings = load_config(work / "kam.yaml")
        libpq = pg.libpq("kam_erp")

        copies, psqls, extracts = [], [], []
        for _ in range(2):  # alternate, keep the best of each: all see the same cache state
            copies.append(copy_floor(libpq))
            psqls.append(psql_floor(libpq))
            extracts.append(kam_extract(settings, work / "scratch"))
        shutil.rmtree(work / "scratch", ignore_errors=True)
        copy_s, rows = min(copies)
        psql_s = min(psqls)
        kam_s, kam_rows = min(extracts)
        assert rows == kam_rows, (rows, kam_rows)
        figures["order_lines"] = rows
        figures["copy_rows_per_s"] = round(rows / copy_s)
        figures["psql_copy_rows_per_s"] = round(rows / psql_s)
        figures["kam_rows_per_s"] = round(rows / kam_s)
        figures["kam_vs_copy"] = round(copy_s / kam_s, 3)
        figures["kam_vs_psql_copy"] = round(psql_s / kam_s, 3)
        print(f"  {size:>9,}  {rows:,} order lines: COPY TO STDOUT via psycopg {rows / copy_s:,.0f} rows/s, "
              f"via psql {rows / psql_s:,.0f} rows/s; KAM {rows / kam_s:,.0f} rows/s = "
              f"{copy_s / kam_s:.2f} of psycopg's COPY, {psql_s / kam_s:.2f} of psql's", flush=True)
        if extract_only:
            return figures

        def night(day: date, name: str, label: str) -> float:
            """`kam run` for `day` as its own process: wall seconds and peaks into figures[name]."""
            tree: dict = {}
            seconds, rss = run_measured([*kam, "run", "--as-of", day.isoformat()], work, env, log, tree)
            figures[name] = {"seconds": round(seconds, 1), "peak_rss_mib": round(rss), **tree}
            print(f"  {size:>9,}  {label} {seconds:.1f} s ({tree['cpu_seconds']:.1f} CPU s), "
                  f"peak {rss:,.0f} MiB (largest process); process tree peak "
                  f"{tree['tree_rss_mib']:,} MiB RSS, {tree['tree_pss_mib']:,} MiB PSS", flush=True)
            return seconds

        full_s = night(D1, "full_night", "full night")
        if keep:  # the warehouse as the full night left it: replay the incremental night on a copy of it
            shutil.copytree(work / "warehouse", work / "warehouse-after-full")

        nights = []
        for k in range(incremental_nights):
            day = D2 + timedelta(days=k)
            started = time.perf_counter()
            figures["changes" if k == 0 else f"changes_{k + 1}"] = changes = simulate_day(
                urls, day, share=0.01, seed=1 + k * 10)
            if k == 0:
                figures["changes_seconds"] = round(time.perf_counter() - started, 1)
            print(f"  {size:>9,}  changes for {day}: {changes}", flush=True)
            name = "incremental_night" if k == 0 else f"incremental_night_{k + 1}"
            inc_s = night(day, name, f"incremental night {day}")
            cpu = figures[name]["cpu_seconds"] / figures["full_night"]["cpu_seconds"]
            nights.append((inc_s, cpu, name))
            print(f"  {size:>9,}  incremental night {day}: {inc_s / full_s:.1%} of the full night "
                  f"({cpu:.1%} of its CPU seconds)", flush=True)
        inc_s, cpu, name = sorted(nights)[len(nights) // 2]  # the median night (of 1 or 3; of 2 the slower)
        figures["incremental_vs_full"] = round(inc_s / full_s, 3)
        figures["incremental_vs_full_cpu"] = round(cpu, 3)
        figures["incremental_median"] = name
        if len(nights) > 1:
            print(f"  {size:>9,}  incremental nights: {', '.join(f'{s / full_s:.1%}' for s, _, _ in nights)} "
                  f"of the full night; reported: {inc_s / full_s:.1%} ({name})", flush=True)
        if quiet_night:  # no source changes at all: what a night costs whatever changed
            day = D2 + timedelta(days=incremental_nights)
            quiet_s = night(day, "quiet_night", f"quiet night {day} (no source changes)")
            figures["quiet_vs_full"] = round(quiet_s / full_s, 3)
            figures["quiet_vs_full_cpu"] = round(
                figures["quiet_night"]["cpu_seconds"] / figures["full_night"]["cpu_seconds"], 3)
            print(f"  {size:>9,}  quiet night {day}: {quiet_s / full_s:.1%} of the full night "
                  f"({figures['quiet_vs_full_cpu']:.1%} of its CPU seconds)", flush=True)
        if sunday:  # the weekly night: every table's keys reconciled, then compaction and vacuum
            simulate_day(urls, D3, share=0.01, seed=2)  # incremental nights' seeds: 1, 11, 21
            sunday_s = night(D3, "sunday_night", "Sunday night (key reconciliation, maintenance)")
            figures["sunday_vs_full"] = round(sunday_s / full_s, 3)
            print(f"  {size:>9,}  Sunday night: {sunday_s / full_s:.1%} of the full night", flush=True)
            simulate_day(urls, D4, share=0.01, seed=3)
            label = "on the consolidated base" if consolidation else "after the reconciliation, not folded"
            monday_s = night(D4, "monday_night", f"Monday night ({label})")
            figures["monday_vs_full"] = round(monday_s / full_s, 3)
            print(f"  {size:>9,}  Monday night: {monday_s / full_s:.1%} of the full night", flush=True)
        figures["step_seconds"] = step_seconds(settings)
        for night, steps in figures["step_seconds"].items():
            timing = ", ".join(f"{k} {v:.1f} s" for k, v in steps.items())
            print(f"  {size:>9,}  {night}: {timing}", flush=True)
            validation = steps.get("validate", 0.0) + steps.get("check", 0.0)
            total = sum(steps.values())
            print(f"  {size:>9,}  {night}: validation (validate + check) {validation:.1f} s = "
                  f"{validation / total:.1%} of the steps' {total:.1f} s", flush=True)
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return figures


def step_seconds(settings) -> dict[str, dict[str, float]]:
    """Seconds per step of each night, from the run ledger (in-process time, no start-up)."""
    from pipelines.ledger import runs

    nights: dict[str, dict[str, float]] = {}
    for row in sorted(runs(Warehouse(settings.warehouse_path)), key=lambda r: r["started_at"]):
        if row["status"] == "success":
            nights.setdefault(str(row["as_of"]), {})[row["step"]] = round(row["seconds"] or 0, 1)
    return nights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--keep", action="store_true",
                        help="keep each size's warehouse under benchmarks/out/pg-N, and a copy of it "
                             "after the full night (warehouse-after-full), to profile the steps")
    parser.add_argument("--sunday", action="store_true",
                        help="then the next Sunday: one day of changes, every table's keys reconciled "
                             "(deletions) and the weekly maintenance; and the Monday after it")
    parser.add_argument("--no-consolidation", action="store_true",
                        help="run with `warehouse.consolidate: false` (maintenance folds no raw batches)")
    parser.add_argument("--incremental-nights", type=int, default=1,
                        choices=range(1, MAX_INCREMENTAL_NIGHTS + 1), metavar="N",
                        help="incremental nights in turn, each after its own day of changes "
                             f"(1 to {MAX_INCREMENTAL_NIGHTS}); the ratio reported is the median night's")
    parser.add_argument("--quiet-night", action="store_true",
                        help="after the incremental nights (at most 2 with it), one more weekday night "
                             "with no source changes at all: the floor of a night, whatever changed")
    parser.add_argument("--extract-only", action="store_true",
                        help="measure the extraction against COPY and stop (no nights)")
    args = parser.parse_args()
    if args.quiet_night and args.incremental_nights >= MAX_INCREMENTAL_NIGHTS:
        parser.error(f"--quiet-night takes a weekday: at most {MAX_INCREMENTAL_NIGHTS - 1} "
                     "incremental nights before it")
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"KAM PostgreSQL extraction benchmark on {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    results = [bench(size, args.keep, args.extract_only, args.sunday, args.incremental_nights,
                     consolidation=not args.no_consolidation, quiet_night=args.quiet_night)
               for size in args.sizes]
    stamp = time.strftime("%Y%m%dT%H%M%S")
    if args.extract_only:
        (OUT / f"extract-pg-{stamp}.json").write_text(json.dumps(results, indent=2))
        return
    print("\n customers  order lines   COPY rows/s  psql COPY/s    KAM rows/s  KAM/psql"
          "   full night  incremental  inc/full  inc/full CPU")
    for r in results:
        inc = r[r["incremental_median"]]
        print(f"{r['customers']:>10,} {r['order_lines']:>12,} {r['copy_rows_per_s']:>13,} "
              f"{r['psql_copy_rows_per_s']:>12,} {r['kam_rows_per_s']:>13,} {r['kam_vs_psql_copy']:>9.2f} "
              f"{r['full_night']['seconds']:>7.1f}s/{r['full_night']['peak_rss_mib']:>5}M "
              f"{inc['seconds']:>6.1f}s/{inc['peak_rss_mib']:>5}M "
              f"{r['incremental_vs_full']:>8.1%} {r['incremental_vs_full_cpu']:>13.1%}")
    (OUT / f"incremental-pg-{stamp}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
