"""Run one nightly step in a child process of its own, as an Airflow worker runs each task.

Why: a step's memory goes back to the operating system only when its process ends. DuckDB, Arrow
and delta-rs keep freed memory in their allocators, so one process running every step of a
1M-customer night peaked above what any step needs alone (7.0 GB against 5.3 GB for the largest
step). A child per step also keeps a native crash in one step from leaving the next in a damaged
process, and gives each step's own peak memory (from the kernel's rusage of the child).

The child is forked from the `kam` script, which has imported the code but has not opened a
warehouse, a DuckDB database or delta-rs's runtime: those are created fresh in every child (a
forked Tokio runtime does not work, so this is only for a process that has not used one; library
callers and tests run the steps in-process through `pipelines.nightly.run_step`). The child dies
with its parent (`PR_SET_PDEATHSIG`), so killing `kam run` stops the step it is running, exactly
as killing a single process would.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import signal
import threading
import traceback
from collections.abc import Callable
from datetime import date

from pipelines.config import Settings
from pipelines.results import StepResult

_PR_SET_PDEATHSIG = 1


class StepDied(RuntimeError):
    """The step's process ended without reporting a result: killed by a signal (often the kernel's
    out-of-memory killer) or crashed in native code. The ledger shows the step unfinished."""


def _die_with_parent(parent: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the child may outlive a killed parent
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _portable(exc: BaseException) -> BaseException:
    """The exception itself when it survives pickling, else a RuntimeError with its text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - any unpicklable exception is reported by its text
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _child(write_fd: int, parent: int, step: str, as_of: date, settings: Settings, run_id: str,
           options: dict) -> None:
    from pipelines.nightly import run_step

    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C reaches the whole process group
    with os.fdopen(write_fd, "wb") as out:
        def send(kind: str, *payload) -> None:
            pickle.dump((kind, payload), out)
            out.flush()

        try:
            result = run_step(step, as_of, settings, run_id=run_id,
                              on_table=lambda name, rows: send("table", name, rows),
                              on_start=lambda name: send("start", name), **options)
            send("result", result)
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
            send("error", _portable(exc), traceback.format_exc())


# Imported lazily by the steps that need them, and slow to import (Great Expectations takes several
# seconds): imported once in the parent, so the children share them instead of each importing them
# again.
_LAZY_IMPORTS = {"validate": ["great_expectations"], "check": ["great_expectations"]}
# Every step reads the warehouse through Arrow datasets, and pyarrow.dataset imports pandas (0.8 s):
# imported before the first fork, so the children share it, not when `kam` starts (`kam --help`).
_EVERY_STEP = ["pyarrow.dataset"]


def _lazy_modules(steps: list[str]) -> list[str]:
    """The steps' own modules (pipelines/nightly.py imports them when a step runs) and their slow
    libraries, in the steps' order."""
    from pipelines.nightly import step_module

    modules = _EVERY_STEP + [m for step in steps for m in [step_module(step), *_LAZY_IMPORTS.get(step, [])]]
    return list(dict.fromkeys(modules))


def _import_all(modules: list[str]) -> None:
    for module in modules:
        try:
            __import__(module)
        except ImportError:  # an optional extra that is not installed: the step says so itself
            pass


class Preload:
    """The slow imports of a run's steps, done in the parent while its first step's child runs.

    Importing Great Expectations before the first fork held back every `kam run` by ~4.7 s at the
    start; while the extract child runs, the parent only waits on it. A fork must not happen while
    another thread imports (the child would inherit a held import lock), so `wait()` is called before
    every fork after the first, and `start()` only once the first child exists. Modules the first
    step needs itself are imported before it, as before."""

    def __init__(self, steps: list[str]):
        self._first = _lazy_modules(steps[:1])
        self._later = [m for m in _lazy_modules(steps[1:]) if m not in self._first]
        self._thread: threading.Thread | None = None
        self._forked = False

    def wait(self) -> None:
        """Call before a fork: nothing is importing when it returns."""
        if not self._forked:
            _import_all(self._first)
            self._forked = True  # the caller forks next
            return
        if self._thread is None:  # the first child never reported: import here, before the next fork
            _import_all(self._later)
            self._later = []
            return
        self._thread.join()

    def start(self) -> None:
        """Call once the first step's child exists: import the later steps' modules beside it."""
        if self._thread is None and self._later:
            self._thread = threading.Thread(target=_import_all, args=(self._later,), name="kam-preload",
                                            daemon=True)
            self._thread.start()


def run_step_in_child(step: str, as_of: date, settings: Settings, *, run_id: str,
                      on_table: Callable[[str, int], None] | None = None,
                      on_start: Callable[[str], None] | None = None, **options) -> StepResult:
    """`run_step` in a forked child; its events reach the callbacks here, its result or its
    exception comes back, and `details['peak_rss_mib']` is the child's peak resident memory."""
    parent = os.getpid()
    pid, read_fd = _fork(lambda write_fd: _child(write_fd, parent, step, as_of, settings, run_id, options))
    outcome: tuple | None = None
    try:
        with os.fdopen(read_fd, "rb") as events:
            while True:
                try:
                    kind, payload = pickle.load(events)
                except EOFError:
                    break
                if kind == "table" and on_table:
                    on_table(*payload)
                elif kind == "start" and on_start:
                    on_start(*payload)
                elif kind in ("result", "error"):
                    outcome = (kind, payload)
    finally:
        _, status, usage = os.wait4(pid, 0)
    peak_mib = round(usage.ru_maxrss / 1024)
    if outcome is None:
        raise StepDied(f"step {step!r} died without a result ({_describe(status)}); "
                       f"its tables stay at their last committed version")
    kind, payload = outcome
    if kind == "error":
        _raise_from_child(payload, f"the {step} step's process (pid {pid})")
    result: StepResult = payload[0]
    result.details["peak_rss_mib"] = peak_mib
    return result


def _fork(body: Callable[[int], None]) -> tuple[int, int]:
    """Fork a child that runs `body(write_fd)` and leaves without the parent's teardown; returns
    the child's pid and the read end of its pipe."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(read_fd)
            body(write_fd)
        except BaseException:  # noqa: BLE001 - the report itself failed
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    return pid, read_fd


def _raise_from_child(payload: tuple, where: str):
    """Re-raise an exception a child reported, with its traceback as a note."""
    exc, child_traceback = payload
    exc.add_note(f"in {where}:\n{child_traceback}")
    raise exc


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        name = signal.Signals(number).name
        hint = ": killed, perhaps by the out-of-memory killer" if number == signal.SIGKILL else ""
        return f"signal {number}, {name}{hint}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


class Background:
    """A function run in a forked child beside the steps (the sales-ops exports render while
    publish waits on the CRM's database): `result()` waits for its return value or re-raises its
    exception; `cancel()` stops it. Same fork rules as a step: start it from a process that has not
    opened a DuckDB database or delta-rs's runtime."""

    def __init__(self, name: str, fn: Callable, *args):
        self.name = name
        parent = os.getpid()

        def body(write_fd: int) -> None:
            _die_with_parent(parent)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            with os.fdopen(write_fd, "wb") as out:
                try:
                    pickle.dump(("result", fn(*args)), out)
                except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
                    pickle.dump(("error", (_portable(exc), traceback.format_exc())), out)

        self.pid, self._read_fd = _fork(body)
        self._done = False

    def result(self):
        """The function's return value, once the child has ended."""
        outcome = None
        try:
            with os.fdopen(self._read_fd, "rb") as events:
                try:
                    outcome = pickle.load(events)
                except EOFError:
                    pass
        finally:
            _, status = os.waitpid(self.pid, 0)
            self._done = True
        if outcome is None:
            raise StepDied(f"{self.name} died without a result ({_describe(status)})")
        kind, payload = outcome
        if kind == "error":
            _raise_from_child(payload, f"the {self.name} process (pid {self.pid})")
        return payload

    def cancel(self) -> None:
        """Stop the child (if still running) and reap it."""
        if self._done:
            return
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)
        os.close(self._read_fd)
        self._done = True
