"""Benchmark data validation: the `validate` and `check` steps' share of the nightly run.

Generates the demo at the given size, then runs every nightly step as its own `kam` process (what
a user or an Airflow worker runs) and prints each step's wall time and peak memory, the time of
validation (`validate` after staging, `check` before publish) and its share of the night, and the
split of `validate` into its SQL part (every row, every row-level rule, quarantine, stop rules)
and its Great Expectations part (suites on at most `quality.gx_rows` rows per table, Data Docs).

    uv run python benchmarks/validation.py --customers 100000
    uv run python benchmarks/validation.py --customers 1000000 --keep
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nightly import AS_OF, OUT, REPO, run_measured  # noqa: E402

STEPS = ["extract", "stage", "validate", "build", "mine", "check", "publish"]


def bench(customers: int, keep: bool) -> dict:
    work = OUT / f"validation-{customers}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copy(REPO / "kam.yaml", work / "kam.yaml")
    kam = [sys.executable, "-m", "pipelines.cli"]
    figures = {}
    with open(work / "log.txt", "w") as log:
        seconds, rss = run_measured([*kam, "demo-data", "--config", str(work / "kam.yaml"),
                                     "--customers", str(customers), "--as-of", AS_OF], work, log)
        print(f"  {customers:>9,} customers  demo-data  {seconds:8.1f} s  {rss:8.0f} MiB", flush=True)
        for step in STEPS:
            seconds, rss = run_measured([*kam, step, "--config", str(work / "kam.yaml"), "--as-of", AS_OF],
                                        work, log)
            figures[step] = {"seconds": round(seconds, 2), "peak_rss_mib": round(rss)}
            print(f"  {customers:>9,} customers  {step:<10} {seconds:8.1f} s  {rss:8.0f} MiB", flush=True)
    reports = sorted((work / "warehouse" / "quality").glob("*/validate.json"),
                     key=lambda p: p.stat().st_mtime)
    report = json.loads(reports[-1].read_text())
    lines = report["entities"]["order_line"]
    nightly = sum(f["seconds"] for f in figures.values())
    validation = figures["validate"]["seconds"] + figures["check"]["seconds"]
    result = {
        "customers": customers, "steps": figures, "nightly_seconds": round(nightly, 1),
        "validation_seconds": round(validation, 1), "validation_share": round(validation / nightly, 4),
        "validate_sql_seconds": report["sql_seconds"], "validate_gx_seconds": report["gx_seconds"],
        "validate_in_process_seconds": report["seconds"],
        "order_lines_in": lines["rows_in"], "order_lines_quarantined": lines["quarantined"],
    }
    if not keep:
        shutil.rmtree(work)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000])
    parser.add_argument("--keep", action="store_true", help="keep the generated data and warehouse")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"KAM validation benchmark on {os.cpu_count()} cores")
    results = [bench(n, args.keep) for n in args.customers]
    print("\ncustomers  order lines  nightly (7 steps)  validate  check  validation share  "
          "validate: SQL / GX (in process)")
    for r in results:
        print(f"{r['customers']:>9,}  {r['order_lines_in']:>11,}  {r['nightly_seconds']:>15.1f}s  "
              f"{r['steps']['validate']['seconds']:>7.1f}s  {r['steps']['check']['seconds']:>4.1f}s  "
              f"{r['validation_share']:>15.1%}  "
              f"{r['validate_sql_seconds']:.1f}s / {r['validate_gx_seconds']:.1f}s "
              f"({r['validate_in_process_seconds']:.1f}s)")
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (OUT / f"validation-{stamp}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
