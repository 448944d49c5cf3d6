"""Airflow for real: API server, scheduler and DAG processor on loopback (LocalExecutor), kam_nightly
triggered through the REST API, the Asset-triggered kam_mining run checked, and the DAG's page
loaded in headless Chromium (Debian's package, `make chromium`) with a screenshot.

Kept lean: a small demo (300 customers), fast scheduler and DAG-processor intervals, tight timeouts.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.airflow_env import DAGS, REPO
from tests.browser import headless

pytestmark = pytest.mark.airflow

AS_OF = "2026-11-22"
RUN_TIMEOUT = 420  # seconds for kam_nightly on the small demo, all task processes included


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Airflow:
    """Airflow components as child processes sharing one AIRFLOW_HOME (SQLite metadata)."""

    def __init__(self, home: Path, config: Path):
        self.home, self.port = home, _free_port()
        self.password = secrets.token_urlsafe(12)
        (home / "passwords.json").write_text(json.dumps({"kam": self.password}))
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "KAM_"))},
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "kam:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "KAM_CONFIG": str(config),
            "KAM_NIGHTLY_SCHEDULE": "none",  # only the REST-triggered run: no cron run on unpause
        }
        self.procs: list[subprocess.Popen] = []

    def cli(self, *args: str, timeout: int = 180) -> str:
        out = subprocess.run([sys.executable, "-m", "airflow", *args], env=self.env, capture_output=True,
                             text=True, timeout=timeout)
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stdout

    def start(self, *component: str) -> None:
        log = open(self.home / f"{component[0]}.log", "w")  # noqa: SIM115 (closed with the process)
        self.procs.append(subprocess.Popen([sys.executable, "-m", "airflow", *component], env=self.env,
                                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.read_text()[-3000:]}" for p in self.home.glob("*.log"))

    # --- REST API v2, authenticated with a JWT from the simple auth manager ---

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=30) as response:
            return json.loads(response.read() or b"{}")

    def token(self) -> str:
        return self.request("POST", "/auth/token", {"username": "kam", "password": self.password})[
            "access_token"]


def _wait(what: str, check, timeout: float, airflow: Airflow, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in airflow.procs:
            assert proc.poll() is None, f"an Airflow process died while waiting for {what}:\n{airflow.logs()}"
        try:
            value = check()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            value = None
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{airflow.logs()}")


class CookieProxy(ThreadingHTTPServer):
    """Loopback proxy that adds the login cookie to every request the browser makes, as the simple
    auth manager's login page would have set it (headless Chromium has no way to log in)."""

    def __init__(self, target: str, token: str):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "cookie")}
                headers["Cookie"] = f"_token={proxy.token}"
                req = urllib.request.Request(proxy.target + self.path, headers=headers)
                try:
                    with urllib.request.urlopen(req, timeout=30) as response:
                        status, body, head = response.status, response.read(), response.headers
                except urllib.error.HTTPError as exc:
                    status, body, head = exc.code, exc.read(), exc.headers
                self.send_response(status)
                for key, value in head.items():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.target, self.token = target, token


@pytest.fixture()
def small_demo(tmp_path):
    from pipelines.demo import generate_demo, write_demo

    (tmp_path / "demo").mkdir()
    systems = generate_demo(customers=300, as_of=date.fromisoformat(AS_OF), seed=11, dirty_share=0.01)
    write_demo(systems, urls={s: f"sqlite:///{tmp_path / 'demo' / s}.db" for s in ("crm", "erp", "scm")})
    shutil.copy(REPO / "kam.yaml", tmp_path / "kam.yaml")
    return tmp_path


def test_scheduler_runs_kam_nightly_triggered_over_rest_then_mining_and_the_ui_shows_it(small_demo, tmp_path):
    home = tmp_path / "airflow-home"
    home.mkdir()
    airflow = Airflow(home, small_demo / "kam.yaml")
    airflow.cli("db", "migrate", timeout=300)
    (home / "pools.json").write_text(subprocess.run(
        [sys.executable, "-m", "pipelines.dag_support", "pools"], env=airflow.env, check=True,
        capture_output=True, text=True).stdout)
    airflow.cli("pools", "import", str(home / "pools.json"))
    try:
        airflow.start("api-server", "--port", str(airflow.port), "--host", "127.0.0.1")
        airflow.start("dag-processor")
        airflow.start("scheduler")
        _wait("the API server", lambda: airflow.request("GET", "/api/v2/monitor/health"), 120, airflow)
        token = airflow.token()
        for dag_id in ("kam_nightly", "kam_mining"):
            dag = _wait(f"{dag_id} parsed", lambda d=dag_id: airflow.request(
                "GET", f"/api/v2/dags/{d}", token=token), 120, airflow)
            assert dag["is_paused"] is False, dag_id

        run = airflow.request("POST", "/api/v2/dags/kam_nightly/dagRuns",
                              {"logical_date": f"{AS_OF}T00:00:00Z", "conf": {}}, token=token)
        run_id = run["dag_run_id"]

        def finished():
            state = airflow.request("GET", f"/api/v2/dags/kam_nightly/dagRuns/{run_id}", token=token)["state"]
            return state if state in ("success", "failed") else None

        assert _wait("kam_nightly to finish", finished, RUN_TIMEOUT, airflow, every=3) == "success", \
            airflow.logs()
        tis = airflow.request("GET", f"/api/v2/dags/kam_nightly/dagRuns/{run_id}/taskInstances?limit=100",
                              token=token)["task_instances"]
        mapped = [t for t in tis if t["task_id"].startswith("extract_")]
        assert len(mapped) == 13 and {t["state"] for t in tis} == {"success"}

        def mining_run():
            runs = airflow.request("GET", "/api/v2/dags/kam_mining/dagRuns", token=token)["dag_runs"]
            done = [r for r in runs
                    if r["run_type"] == "asset_triggered" and r["state"] in ("success", "failed")]
            return done[0] if done else None

        mining = _wait("the Asset-triggered kam_mining run", mining_run, 180, airflow, every=2)
        assert mining["state"] == "success", airflow.logs()
        events = airflow.request("GET", "/api/v2/assets/events?limit=100", token=token)["asset_events"]
        value_events = [e for e in events if e["uri"] == "kam://warehouse/marts/customer_value"
                        and e["source_run_id"] == run_id]
        assert value_events and value_events[0]["extra"]["as_of"] == AS_OF

        proxy = CookieProxy(airflow.url, token)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        try:
            page = f"http://127.0.0.1:{proxy.server_port}/dags/kam_nightly"
            browser = headless(tmp_path / "chromium", "--window-size=1400,1000",
                               "--virtual-time-budget=20000")
            screenshot = tmp_path / "kam_nightly.png"
            subprocess.run([*browser, f"--screenshot={screenshot}", page], check=True, capture_output=True,
                           timeout=120)
            dom = subprocess.run([*browser, "--dump-dom", page], check=True, capture_output=True, text=True,
                                 timeout=120).stdout
        finally:
            proxy.shutdown()
        assert screenshot.stat().st_size > 20_000  # a rendered page, not a blank one
        assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "kam_nightly" in dom and 'type="password"' not in dom  # the DAG page, not the login form
        keep = os.environ.get("KAM_SCREENSHOT_DIR")
        if keep:
            shutil.copy(screenshot, Path(keep) / "kam_nightly.png")
    finally:
        airflow.stop()
