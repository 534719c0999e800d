"""Run an ETL job on the warm Spark session when one serves these settings (client side).

:func:`submit` sends a job to the session server (:mod:`etl.session_server`) and re-emits the log
records the job wrote, so the caller's log (an Airflow task's, say) reads as if the job ran
there. It answers ``None`` when no session serves these settings (none started, a stale token,
other settings), and the caller runs the job in its own process: the session is an
optimisation, never a requirement.
"""

from __future__ import annotations

import http.client
import json
import logging
import urllib.error
import urllib.request
from typing import Any

from etl.session_protocol import (
    FINGERPRINT_HEADER,
    TOKEN_HEADER,
    job_path,
    settings_fingerprint,
    token_file,
)
from riskstream.settings import Settings

logger = logging.getLogger(__name__)

JOB_TIMEOUT = 6 * 3600.0  # a job may wait for another DAG run's job to finish first


class SessionJobError(RuntimeError):
    """A job sent to the warm Spark session failed there, or the session stopped answering."""


def submit(settings: Settings, job: str, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The run report of ``job`` run on the warm session, or None when no session serves these
    settings. Raises :class:`SessionJobError` when the job fails there."""
    try:
        token = token_file(settings).read_text().strip()
    except OSError:
        return None  # no session was started with this state directory
    url = settings.spark_session_url.rstrip("/") + job_path(job)
    request = urllib.request.Request(
        url,
        data=json.dumps(kwargs, default=str).encode(),
        headers={
            "Content-Type": "application/json",
            TOKEN_HEADER: token,
            FINGERPRINT_HEADER: settings_fingerprint(settings),
        },
        method="POST",
    )
    logger.info("running %s on the warm Spark session at %s", job, settings.spark_session_url)
    try:
        with urllib.request.urlopen(request, timeout=JOB_TIMEOUT) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = _json(exc.read())
        _replay(body.get("logs"))
        if exc.code in (401, 409, 503):
            logger.warning(
                "not using the Spark session at %s (%s); running %s in this process",
                settings.spark_session_url,
                body.get("error"),
                job,
            )
            return None
        raise SessionJobError(
            f"{job} failed on the warm Spark session: {body.get('error') or exc}"
        ) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ConnectionRefusedError):
            logger.info("no Spark session answers at %s; running %s here", url, job)
            return None
        raise SessionJobError(f"{job}: the Spark session at {url} did not answer: {exc}") from None
    except (http.client.HTTPException, ConnectionError, TimeoutError) as exc:
        raise SessionJobError(
            f"{job}: the Spark session at {settings.spark_session_url} stopped answering during "
            f"the job ({exc}); its log is `riskstream spark status`; nothing was committed "
            "after the last step the job logged, and a retry runs it again"
        ) from None
    _replay(body.get("logs"))
    report = body["report"]
    if isinstance(report, dict):
        report["spark_session"] = body.get("session")
    return report


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data or b"{}")
    except ValueError:
        return {"error": data[:500].decode("utf-8", "replace")}
    return value if isinstance(value, dict) else {"error": str(value)}


def _replay(records: Any) -> None:
    for level, name, message in records or []:
        logging.getLogger(str(name)).log(int(level), "%s", message)
