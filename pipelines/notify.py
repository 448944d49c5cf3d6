"""Failure and gap notices: one clear summary in the log, and to a webhook or e-mail when configured.

Channels (each optional; an Airflow connection of the same name in lower case works too):
  KAM_ALERT_WEBHOOK_URL   POST of JSON {"text": ..., "subject": ..., "kind": ...} (Slack/Teams/Mattermost
                          incoming webhooks accept the `text` field)
  KAM_ALERT_EMAIL         comma-separated recipients, sent through KAM_SMTP_HOST (default localhost)
                          and KAM_SMTP_PORT (default 25), from KAM_ALERT_FROM (default kam@localhost)
A channel that fails is logged and never masks the failure being reported. Standard library only:
these run inside Airflow callbacks.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import urllib.request
from email.message import EmailMessage
from typing import Any

from pipelines.airflow_conn import resolve

log = logging.getLogger("kam.notify")

WEBHOOK_ENV = "KAM_ALERT_WEBHOOK_URL"
EMAIL_ENV = "KAM_ALERT_EMAIL"

# What a failure message means and what to do (docs/runbook.md has the long form).
HINTS = (
    ("SourceUnavailable", "a source database could not be reached: check it is up and the URL/credentials "
                          "(env or Airflow connection); the task retries with backoff"),
    ("SchemaDrift", "a mapped source column is missing or changed type: fix the source or the mapping in "
                    "kam.yaml, then clear the extract task"),
    ("ConfigError", "kam.yaml is invalid or a url_env variable is unset: fix it, then clear the task"),
    ("AirflowTaskTimeout", "the task ran past its execution_timeout: look for a slow source or an "
                           "oversized night, raise the timeout or the memory limit, then clear it"),
    ("publish to", "the CRM write failed and was rolled back: check the CRM, then clear publish"),
    ("not found under", "a warehouse table is missing: run (clear) the step that builds it first"),
)


def hint(text: str) -> str:
    for needle, advice in HINTS:
        if needle in text:
            return advice
    return "read the task log above the traceback; fix the cause and clear the task (it is idempotent)"


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def failure_summary(context: dict[str, Any]) -> str:
    """A few lines saying what failed, for which date, why, and what to do next."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    dag_id = _get(ti, "dag_id") or _get(dag_run, "dag_id") or "?"
    run_id = _get(ti, "run_id") or _get(dag_run, "run_id") or context.get("run_id") or "?"
    logical = context.get("logical_date") or _get(dag_run, "logical_date")
    as_of = logical.date().isoformat() if hasattr(logical, "date") else str(logical or "?")
    exc = context.get("exception")
    reason = f"{type(exc).__name__}: {exc}" if exc is not None else str(context.get("reason") or "")
    reason = reason.strip()[:1500]
    lines = [f"KAM {dag_id} failed for as-of {as_of} (run {run_id})"]
    if ti is not None:
        task = _get(ti, "task_id")
        index = _get(ti, "map_index")
        mapped = f" [map {index}]" if index not in (None, -1) else ""
        lines.append(f"task: {task}{mapped}, try {_get(ti, 'try_number')}")
    if reason:
        lines.append(f"reason: {reason}")
    lines.append(f"what to do: {hint(reason)}")
    lines.append(f"rerun: airflow tasks clear {dag_id} -s {as_of} -e {as_of} --only-failed --yes "
                 f"(or `kam <step> --as-of {as_of}`)")
    return "\n".join(lines)


def send(subject: str, text: str, kind: str = "failure") -> list[str]:
    """Log the notice and post it to every configured channel; returns the channels that took it."""
    (log.error if kind == "failure" else log.warning)("%s\n%s", subject, text)
    sent = []
    webhook = resolve(WEBHOOK_ENV)
    if webhook:
        body = json.dumps({"text": f"{subject}\n{text}", "subject": subject, "kind": kind}).encode()
        request = urllib.request.Request(webhook, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
            sent.append("webhook")
        except OSError as exc:
            log.warning("alert webhook failed: %s", type(exc).__name__)  # the URL may hold a token
    recipients = resolve(EMAIL_ENV)
    if recipients:
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = os.environ.get("KAM_ALERT_FROM", "kam@localhost")
        message["To"] = recipients
        message.set_content(text)
        try:
            with smtplib.SMTP(os.environ.get("KAM_SMTP_HOST", "localhost"),
                              int(os.environ.get("KAM_SMTP_PORT", "25")), timeout=10) as smtp:
                smtp.send_message(message)
            sent.append("email")
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("alert e-mail failed: %s", exc)
    return sent


def on_failure(context: dict[str, Any]) -> list[str]:
    """Airflow failure callback (task or DAG run): summary to the log and the configured channels."""
    summary = failure_summary(context)
    return send(summary.splitlines()[0], summary)
