"""Benchmark the CLV models against `lifetimes` on simulated customers, in the same run.

Draws N customers (default 1M) from known BG/NBD and Gamma-Gamma parameters, then fits both models
and scores every customer (probability alive, expected purchases over 52 weeks, expected spend,
12-month CLV) twice: with KAM's models in this process, and with `lifetimes` 0.11.3 in a separate
process running in its own virtual environment (it needs numpy<2, pandas<2 and scipy<1.13, so it can
never share KAM's environment; it is not a KAM dependency). Each side reports its own process CPU
time; the script prints both, the ratio, how far apart the fitted parameters and scores are, and
whether each fit recovers the true parameters within 3 standard errors.

    uv run --no-sync python benchmarks/clv.py                  # 1M customers
    uv run --no-sync python benchmarks/clv.py --customers 100000
    uv run --no-sync python benchmarks/clv.py --no-lifetimes   # KAM only

The lifetimes environment is created at --lifetimes-venv (default /tmp/lifetimes-venv) when missing,
with `python3.11 -m venv` and `pip install` of the pinned versions in LIFETIMES_PINS. On a 2-core
machine shared with others, run it under the shared lock: `flock /tmp/kam-heavy.lock ...`.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from models.clv import BetaGeoModel, GammaGammaModel, customer_lifetime_value  # noqa: E402
from models.clv.simulate import simulate_bgnbd, simulate_spend  # noqa: E402

OUT = REPO / "benchmarks" / "out"
TRUE_BGNBD = {"r": 0.24259, "alpha": 4.41353, "a": 0.79289, "b": 2.42575}  # CDNOW's fit
TRUE_SPEND = {"p": 6.2488, "q": 3.7446, "v": 15.4477}
LIFETIMES_PINS = ["lifetimes==0.11.3", "numpy<2", "pandas<2", "scipy<1.13", "autograd", "dill",
                  "setuptools<81"]  # lifetimes imports pkg_resources, gone from setuptools 81
HORIZON_WEEKS = 52.0
CLV_MONTHS = 12
MONTH_WEEKS = 4.345  # lifetimes steps its CLV in months of 4.345 weeks (freq="W"); same here
DISCOUNT = 0.01

# Runs inside the lifetimes environment: fit and score with lifetimes' defaults, report CPU times.
LIFETIMES_SCRIPT = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
data = np.load(sys.argv[1])
x, t_x, T, m = data["frequency"], data["recency"], data["T"], data["monetary"]
cpu = {}
t0 = time.process_time()
bg = BetaGeoFitter().fit(x, t_x, T)
cpu["fit_bgnbd"] = time.process_time() - t0
repeat = x > 0
t0 = time.process_time()
gg = GammaGammaFitter().fit(x[repeat], m[repeat])
cpu["fit_gamma_gamma"] = time.process_time() - t0
t0 = time.process_time()
alive = bg.conditional_probability_alive(x, t_x, T)
expected = bg.conditional_expected_number_of_purchases_up_to_time(float(sys.argv[3]), x, t_x, T)
spend = np.asarray(gg.conditional_expected_average_profit(pd.Series(x), pd.Series(m)))
clv = np.asarray(gg.customer_lifetime_value(
    bg, pd.Series(x), pd.Series(t_x), pd.Series(T), pd.Series(m),
    time=int(sys.argv[4]), discount_rate=float(sys.argv[5]), freq="W"))
cpu["score"] = time.process_time() - t0
np.savez(sys.argv[2], alive=alive, expected=expected, spend=spend, clv=clv)
import lifetimes, scipy
params = {k: float(v) for k, v in {**dict(bg.params_), **dict(gg.params_)}.items()}
print(json.dumps({"cpu": cpu, "params": params, "versions": {
    "lifetimes": lifetimes.__version__, "numpy": np.__version__, "pandas": pd.__version__,
    "scipy": scipy.__version__}}))
"""


def ensure_lifetimes_venv(venv: Path, python: str) -> Path:
    """The lifetimes interpreter, creating its environment first if it does not exist."""
    exe = venv / "bin" / "python"
    if exe.exists():
        return exe
    print(f"creating {venv} for lifetimes: {python} -m venv {venv}; pip install {' '.join(LIFETIMES_PINS)}",
          flush=True)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(exe), "-m", "pip", "install", "-q", *LIFETIMES_PINS], check=True)
    return exe


def kam_side(x, t_x, T, m) -> tuple[dict, dict, dict]:
    cpu: dict[str, float] = {}
    t0 = time.process_time()
    bg = BetaGeoModel().fit(x, t_x, T)
    cpu["fit_bgnbd"] = time.process_time() - t0
    t0 = time.process_time()
    gg = GammaGammaModel().fit(x, m)
    cpu["fit_gamma_gamma"] = time.process_time() - t0
    t0 = time.process_time()
    scores = {
        "alive": bg.conditional_probability_alive(x, t_x, T),
        "expected": bg.conditional_expected_number_of_purchases_up_to_time(HORIZON_WEEKS, x, t_x, T),
        "spend": gg.conditional_expected_average_profit(x, m),
        "clv": customer_lifetime_value(bg, gg, x, t_x, T, m, periods=CLV_MONTHS, period_length=MONTH_WEEKS,
                                       discount_rate=DISCOUNT),
    }
    cpu["score"] = time.process_time() - t0
    params = {**bg.params_, **gg.params_}
    errors = {**bg.standard_errors_, **gg.standard_errors_}
    return cpu, params, {"scores": scores, "se": errors}


def within_3se(params: dict, se: dict) -> dict[str, float]:
    truth = {**TRUE_BGNBD, **TRUE_SPEND}
    return {k: abs(params[k] - truth[k]) / se[k] for k in truth}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2005)
    parser.add_argument("--lifetimes-venv", type=Path, default=Path("/tmp/lifetimes-venv"))
    parser.add_argument("--lifetimes-python", default=shutil.which("python3.11") or "python3",
                        help="interpreter that creates the lifetimes venv (lifetimes needs Python <= 3.11)")
    parser.add_argument("--no-lifetimes", action="store_true")
    args = parser.parse_args()

    n = args.customers
    rng = np.random.default_rng(args.seed)
    T = rng.uniform(1.0, 104.0, n)  # customers acquired over two years, observed in weeks
    x, t_x, T = simulate_bgnbd(n, T, **TRUE_BGNBD, seed=args.seed + 1)
    m = simulate_spend(x, **TRUE_SPEND, seed=args.seed + 2)
    print(f"{n:,} simulated customers, {int((x > 0).sum()):,} repeat buyers, "
          f"{int(x.sum()):,} repeat purchases")

    cpu, params, extra = kam_side(x, t_x, T, m)
    z = within_3se(params, extra["se"])
    report = {"customers": n, "machine": platform.machine(), "python": platform.python_version(),
              "truth": {**TRUE_BGNBD, **TRUE_SPEND},
              "kam": {"cpu": cpu, "params": params, "se": extra["se"], "z": z}}

    other = None
    if not args.no_lifetimes:
        exe = ensure_lifetimes_venv(args.lifetimes_venv, args.lifetimes_python)
        with tempfile.TemporaryDirectory() as tmp:
            data, out = Path(tmp) / "data.npz", Path(tmp) / "scores.npz"
            np.savez(data, frequency=x, recency=t_x, T=T, monetary=m)
            command = [str(exe), "-c", LIFETIMES_SCRIPT, str(data), str(out), str(HORIZON_WEEKS),
                       str(CLV_MONTHS), str(DISCOUNT)]
            proc = subprocess.run(command, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise SystemExit(f"lifetimes run failed:\n{proc.stderr[-3000:]}")
            other = json.loads(proc.stdout.strip().splitlines()[-1])
            scores = dict(np.load(out))
        diffs = {k: float(np.max(np.abs(extra["scores"][k] - v) / np.maximum(np.abs(v), 1e-9)))
                 for k, v in scores.items()}
        other["max_relative_score_difference"] = diffs
        other["param_relative_difference"] = {k: abs(params[k] - v) / abs(v)
                                              for k, v in other["params"].items()}
        report["lifetimes"] = other

    print(f"\n{'parameter':<8} {'truth':>10} {'KAM':>10} {'KAM se':>9} {'|z|':>5}"
          + (f" {'lifetimes':>10} {'rel.diff':>9}" if other else ""))
    for k, true in report["truth"].items():
        line = f"{k:<8} {true:>10.5f} {params[k]:>10.5f} {extra['se'][k]:>9.5f} {z[k]:>5.2f}"
        if other:
            line += f" {other['params'][k]:>10.5f} {other['param_relative_difference'][k]:>9.1e}"
        print(line)
    worst = max(z, key=z.get)
    print(f"KAM recovers every true parameter within 3 standard errors: {'yes' if z[worst] < 3 else 'NO'} "
          f"(largest |z| {z[worst]:.2f}, {worst})")
    print(f"\n{'CPU seconds':<18} {'KAM':>8}" + (f" {'lifetimes':>10} {'ratio':>7}" if other else ""))
    for stage in ("fit_bgnbd", "fit_gamma_gamma", "score"):
        line = f"{stage:<18} {cpu[stage]:>8.2f}"
        if other:
            line += f" {other['cpu'][stage]:>10.2f} {other['cpu'][stage] / cpu[stage]:>6.1f}x"
        print(line)
    fits = cpu["fit_bgnbd"] + cpu["fit_gamma_gamma"]
    if other:
        their_fits = other["cpu"]["fit_bgnbd"] + other["cpu"]["fit_gamma_gamma"]
        report["fit_ratio"] = their_fits / fits
        print(f"{'both fits':<18} {fits:>8.2f} {their_fits:>10.2f} {their_fits / fits:>6.1f}x")
        print("max relative score difference: "
              + ", ".join(f"{k} {v:.1e}" for k, v in other["max_relative_score_difference"].items()))
        print(f"lifetimes environment: {other['versions']}")
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"clv-{n}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"\nfigures kept in {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
