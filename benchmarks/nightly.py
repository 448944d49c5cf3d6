"""Benchmark the nightly job: demo data at several sizes, each step's wall time and peak memory.

Every step runs as its own `kam` process (exactly what a user or an Airflow worker runs), so the
peak resident memory measured for it is that step's alone. Results print as a table and are kept
as JSON under benchmarks/out/.

    uv run python benchmarks/nightly.py                      # 10k, 100k and 1M customers
    uv run python benchmarks/nightly.py --sizes 10000 100000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "out"
STEPS = ["demo-data", "extract", "stage", "build", "mine", "publish"]
AS_OF = "2026-11-22"


def run_measured(args: list[str], cwd: Path, log) -> tuple[float, float]:
    """Run a command; return (wall seconds, peak RSS in MiB) of that process tree's largest member."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "COLUMNS": "120"})
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed; see {log.name}")
    return seconds, usage.ru_maxrss / 1024


def bench(size: int, keep: bool) -> dict:
    work = OUT / f"nightly-{size}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copy(REPO / "kam.yaml", work / "kam.yaml")
    kam = [sys.executable, "-m", "pipelines.cli"]
    figures = {}
    with open(work / "log.txt", "w") as log:
        for step in STEPS:
            args = [*kam, step, "--config", str(work / "kam.yaml"), "--as-of", AS_OF]
            if step == "demo-data":
                args += ["--customers", str(size)]
            seconds, rss = run_measured(args, work, log)
            figures[step] = {"seconds": round(seconds, 2), "peak_rss_mib": round(rss)}
            print(f"  {size:>9,} customers  {step:<10} {seconds:8.1f} s  {rss:8.0f} MiB", flush=True)
    sizes = {p.name: sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) / 2**20
             for p in (work / "demo", work / "warehouse")}
    if not keep:
        shutil.rmtree(work)
    return {"customers": size, "steps": figures,
            "nightly_seconds": round(sum(f["seconds"] for s, f in figures.items() if s != "demo-data"), 1),
            "disk_mib": {k: round(v) for k, v in sizes.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--keep", action="store_true", help="keep the generated data and warehouse")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"KAM nightly benchmark on {os.cpu_count()} cores, Python {platform.python_version()}")
    results = [bench(size, args.keep) for size in args.sizes]
    print("\ncustomers   " + "  ".join(f"{s:>16}" for s in STEPS) + "   nightly total")
    for r in results:
        cells = [f"{r['steps'][s]['seconds']:>7.1f}s {r['steps'][s]['peak_rss_mib']:>5}M" for s in STEPS]
        row = "  ".join(f"{c:>16}" for c in cells)
        print(f"{r['customers']:>9,}   {row}   {r['nightly_seconds']:>8.1f}s")
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (OUT / f"nightly-{stamp}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
