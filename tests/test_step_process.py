"""`kam run` as a script runs every step in a child process of its own (pipelines/step_process.py).

Tested with real processes: a step's child killed by a signal fails the run with a message that
names the step and the signal, the ledger shows the step unfinished, every table still reads, and
the next run completes with each step's peak memory reported from its own process.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from pipelines.ledger import runs
from pipelines.warehouse import Warehouse
from tests.conftest import DEMO_AS_OF

KAM = [sys.executable, "-c", "from pipelines.cli import main; main()"]
STEPS = ["extract", "stage", "validate", "build", "mine", "check", "publish", "maintain"]


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _env(root: Path) -> dict:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", "KAM_CONFIG": str(root / "kam.yaml")}


def _run_until(root: Path, marker: str, act: Callable[[int], None]) -> tuple[int, str]:
    """`kam run` as a script; `act(pid)` once, when a line with `marker` is printed. Returns the
    exit code and the output."""
    proc = subprocess.Popen([*KAM, "run", "--as-of", DEMO_AS_OF], cwd=root, env=_env(root),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen, acted = [], False
    for line in proc.stdout:
        seen.append(line.rstrip())
        if not acted and marker in line:
            acted = True
            act(proc.pid)
    proc.wait(timeout=120)
    return proc.returncode, "\n".join(seen)


def test_a_killed_step_process_fails_the_run_by_name_and_the_next_run_completes(demo_workspace):
    root = demo_workspace.root

    def kill_the_step(pid: int) -> None:
        deadline = time.monotonic() + 10
        while not (children := _children(pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        [killed] = children  # exactly one step runs at a time, in its own process
        assert killed != pid
        os.kill(killed, signal.SIGKILL)

    code, output = _run_until(root, "stage: started", kill_the_step)
    assert code == 1, output
    assert "step 'stage' died without a result (signal 9, SIGKILL" in output, output
    assert "extract done in" in output and "stage done in" not in output

    warehouse = Warehouse(demo_workspace.warehouse)
    status = {r["step"]: r["status"] for r in runs(warehouse)}
    assert status == {"extract": "success", "stage": "unfinished"}
    for table in warehouse.tables():  # every table reads at its last committed version
        warehouse.read(table)

    done = subprocess.run([*KAM, "run", "--as-of", DEMO_AS_OF], cwd=root, env=_env(root),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    peaks = dict(re.findall(r"✓ (\w+) done in [\d.]+ s, peak memory ([\d,]+) MiB", done.stdout))
    assert list(peaks) == STEPS, done.stdout
    assert all(int(mib.replace(",", "")) > 50 for mib in peaks.values()), peaks
    latest = runs(warehouse, limit=1)
    assert {r["step"] for r in latest} == set(STEPS)
    assert {r["status"] for r in latest} == {"success"}
    assert {r["as_of"] for r in latest} == {date.fromisoformat(DEMO_AS_OF)}
    exports = root / "exports"
    night = exports / DEMO_AS_OF
    assert (night / "all_accounts.csv").stat().st_size > 0
    assert len(list((night / "by_owner").glob("*.xlsx"))) > 5
    assert [p.name for p in exports.iterdir()] == [DEMO_AS_OF]  # no partial folder left behind
    delivered = {p.relative_to(night): p.read_bytes() for p in night.rglob("*.csv")}

    # The exports render in a child of their own beside the publish step; when publish dies, the
    # night delivers no files: the folder of the last complete run stays as it was.
    beside: list[int] = []

    def kill_publish(pid: int) -> None:
        beside.extend(sorted(_children(pid), key=lambda child: (_started(child), child)))
        assert len(beside) == 2, beside  # the exports' child, then the publish step's
        os.kill(beside[1], signal.SIGKILL)

    code, output = _run_until(root, "publish: started", kill_publish)
    assert code == 1 and "step 'publish' died without a result" in output, output
    assert not Path(f"/proc/{beside[0]}").exists()  # the exports' child: stopped and reaped by the run
    assert [p.name for p in exports.iterdir()] == [DEMO_AS_OF]
    assert {p.relative_to(night): p.read_bytes() for p in night.rglob("*.csv")} == delivered


def _started(pid: int) -> int:
    """A process's start time in clock ticks since boot (/proc/<pid>/stat, field 22)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def test_the_later_steps_imports_run_beside_the_first_child_and_are_done_before_the_next_fork(monkeypatch):
    """`kam run` imports Great Expectations while extract's child runs, not before it: `Preload`
    imports nothing the first step does not need before the first fork, imports the later steps'
    modules in a thread once started, and `wait()` returns only when that import is done."""
    from pipelines import step_process

    module = "tests.fixtures_slow_import"
    sys.modules.pop(module, None)
    monkeypatch.setattr(step_process, "_LAZY_IMPORTS", {"validate": [module]})
    preloading = step_process.Preload(["extract", "stage", "validate"])
    preloading.wait()  # before the first fork: extract needs nothing slow
    assert module not in sys.modules
    preloading.start()
    preloading.wait()  # before stage's fork: the import is over
    assert getattr(sys.modules.get(module), "DONE", False)
    assert not any(t.name == "kam-preload" and t.is_alive() for t in threading.enumerate())

    sys.modules.pop(module, None)  # a first step that needs the module imports it before its own fork
    first = step_process.Preload(["validate", "check"])
    first.wait()
    assert module in sys.modules
    sys.modules.pop(module, None)
