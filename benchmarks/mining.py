"""Benchmark the mining models against plain scikit-learn / mlxtend / pyfim / RIPPER baselines.

Every job runs in its own process on planted synthetic data (tests/planted_mining.py), so its
peak memory is its own and its quality is scored against the truth. Prints one table; JSON per
run under benchmarks/out/. Baselines are not KAM dependencies: run them through an overlay env,

    uv run --no-sync --with mlxtend==0.25.0 --with wittgenstein==0.3.5 --with pyfim==6.28 \\
        python benchmarks/mining.py                  # 100k and 1M customers
    uv run --no-sync python benchmarks/mining.py --sizes 100000 --no-baselines

A baseline whose package is missing is reported as "not installed", never silently dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "out"
MEMORY_CAP = 6 * 2**30  # a baseline that wants more fails with MemoryError instead of the machine
BASKETS = 200_000
MIN_SUPPORT = 0.001
RIPPER_ROWS = 10_000  # RIPPER needs minutes per 100k rows; it is timed at this size only


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _timed(fn):
    before = _rss_mib()
    started = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out, {"seconds": round(seconds, 3), "peak_extra_mib": round(max(peak - before, 0), 1)}


# ------------------------------------------------------------------------------------ jobs
def job_cluster(kind: str, n: int) -> dict:
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    from models.segments import SampledKMeans, inertia
    from tests.planted_mining import PLANTED_K, planted_segments

    X, truth = planted_segments(n, seed=1)
    if kind == "kam":
        model, figures = _timed(lambda: SampledKMeans(k_range=(2, 8), random_state=0).fit(X))
        labels, centers, k = model.labels_, model.cluster_centers_, model.k_choice_.k
    else:
        starts = 1 if kind == "sklearn_1" else 10
        model, figures = _timed(lambda: KMeans(PLANTED_K, n_init=starts, random_state=0).fit(X))
        labels, centers, k = model.labels_, model.cluster_centers_.astype(np.float64), PLANTED_K
    figures.update(k=k, inertia=inertia(X, labels, centers),
                   ari=round(adjusted_rand_score(truth, labels), 4))
    return figures


def job_rules(kind: str, n: int) -> dict:
    import numpy as np

    from models.rules import RuleInducer
    from tests.planted_mining import CHURN_FEATURES, planted_churn

    X, y, part_a, part_b = planted_churn(n, seed=1)
    if kind == "kam":
        model, figures = _timed(lambda: RuleInducer(max_rules=5, max_conditions=3).fit(X, y))
        masks = [r.mask(X) for r in model.rules_]
        conditions = [len(r.conditions) for r in model.rules_]
    else:
        import pandas as pd
        import wittgenstein as lw

        frame = pd.DataFrame(X, columns=CHURN_FEATURES)
        model = lw.RIPPER(random_state=0)
        _, figures = _timed(lambda: model.fit(frame, y, pos_class=True))
        binned = model.bin_transformer_.transform(frame)  # RIPPER rules speak in its own bins
        masks = [frame.index.isin(r.covers(binned).index) for r in model.ruleset_.rules]
        conditions = [len(r.conds) for r in model.ruleset_.rules]
    fired = np.logical_or.reduce(masks) if masks else np.zeros(len(y), bool)
    figures.update(
        rules=len(masks), max_conditions=max(conditions, default=0),
        precision=round(float(y[fired].mean()) if fired.any() else 0.0, 4),
        part_a_best_cover=round(max(((m & part_a).sum() / part_a.sum() for m in masks), default=0), 4),
        part_b_best_cover=round(max(((m & part_b).sum() / part_b.sum() for m in masks), default=0), 4),
    )
    return figures


def job_crosssell(kind: str, n: int) -> dict:
    import numpy as np

    from tests.planted_mining import LINES, planted_baskets

    baskets = planted_baskets(n, seed=1)
    if kind == "kam":
        from models.crosssell import association_rules

        rules, figures = _timed(lambda: association_rules(
            baskets, min_support=MIN_SUPPORT, min_confidence=0.0, min_lift=0.0, max_len=3))
        count = len(rules)
    elif kind == "pyfim":
        import fim

        tracts = [np.flatnonzero(row).tolist() for row in baskets]
        rules, figures = _timed(lambda: fim.fpgrowth(
            tracts, target="r", supp=MIN_SUPPORT * 100, conf=0.0001, zmax=3, report="scl", mode="o"))
        count = sum(1 for r in rules if len(r[1]))  # pyfim also reports "{} => item"
    else:  # mlxtend's documented path: one-hot DataFrame, apriori, association_rules
        import pandas as pd
        from mlxtend.frequent_patterns import apriori
        from mlxtend.frequent_patterns import association_rules as mlx_rules

        frame = pd.DataFrame(baskets, columns=LINES)

        def run():
            itemsets = apriori(frame, min_support=MIN_SUPPORT, use_colnames=True, max_len=3)
            return mlx_rules(itemsets, metric="confidence", min_threshold=0.0)

        rules, figures = _timed(run)
        count = len(rules)
    figures.update(rules=count)
    return figures


def job_mine(kind: str, n: int) -> dict:
    from benchmarks.mining_step import run_mine_step

    before = _rss_mib()
    figures = run_mine_step(n)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {**figures, "peak_extra_mib": round(max(peak - before, 0), 1)}


JOBS = {"cluster": job_cluster, "rules": job_rules, "crosssell": job_crosssell, "mine": job_mine}


# ------------------------------------------------------------------------------------ driver
def run_job(job: str, kind: str, n: int) -> dict:
    """Run one job in a fresh process (own peak memory, own imports); a failure is a result."""
    args = [sys.executable, __file__, "--job", job, "--kind", kind, "--n", str(n)]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        return {"error": "not installed" if "ModuleNotFoundError" in last else last[:80]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def plan(sizes: list[int], baselines: bool) -> list[tuple[str, str, int]]:
    runs = []
    for n in sizes:
        runs += [("cluster", "kam", n)]
        if baselines:
            runs += [("cluster", "sklearn_1", n), ("cluster", "sklearn_10", n)]
        runs += [("rules", "kam", n), ("mine", "kam", n)]
    runs += [("rules", "kam", RIPPER_ROWS)]
    if baselines:
        runs += [("rules", "ripper", RIPPER_ROWS)]
    runs += [("crosssell", "kam", BASKETS)]
    if baselines:
        runs += [("crosssell", "pyfim", BASKETS), ("crosssell", "mlxtend", BASKETS)]
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--no-baselines", dest="baselines", action="store_false")
    parser.add_argument("--job", choices=list(JOBS))
    parser.add_argument("--kind", default="kam")
    parser.add_argument("--n", type=int)
    args = parser.parse_args()
    if args.job:  # child process: one job, one JSON line
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
        print(json.dumps(JOBS[args.job](args.kind, args.n), default=float))
        return

    results = []
    print(f"{'job':<10} {'implementation':<12} {'rows':>10} {'seconds':>9} {'peak MiB':>9}  quality")
    for job, kind, n in plan(args.sizes, args.baselines):
        figures = run_job(job, kind, n)
        results.append({"job": job, "kind": kind, "n": n, **figures})
        quality = {k: v for k, v in figures.items() if k not in ("seconds", "peak_extra_mib")}
        seconds = f"{figures['seconds']:.2f}" if "seconds" in figures else "-"
        memory = f"{figures['peak_extra_mib']:.0f}" if "peak_extra_mib" in figures else "-"
        print(f"{job:<10} {kind:<12} {n:>10,} {seconds:>9} {memory:>9}  {quality}", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (OUT / f"mining-{stamp}.json").write_text(json.dumps(
        {"machine": platform.platform(), "cpus": os.cpu_count(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
