"""The warm Spark session: one long-lived SparkSession that runs the ETL jobs it is sent.

Entry/IO module: ``python -m etl.session_server`` (started by ``riskstream spark up`` and by
``riskstream run``; :mod:`etl.session_process`) builds the session once, from the settings in
its environment, and serves on 127.0.0.1 (the pattern of AWS Glue interactive sessions and
Apache Livy):

- ``GET /health``: the session's Spark version, application id, jobs served, and the settings
  fingerprint it was started with;
- ``POST /jobs/<name>`` with a JSON object of keyword arguments: runs one job of
  :data:`etl.session_jobs.SESSION_JOBS` on the warm session and answers its run report with the log
  records the job wrote (the caller re-emits them, so an Airflow task log reads as if the job
  ran in the task). A job that raises answers 500 with the error's type and message.

Jobs run one at a time (a lock), each with the caches cleared after it. Right after start the
session warms itself up (:func:`etl.warmup.warm_up`: both jobs over a small built-in portfolio in
a scratch folder, about 10-25 s) under the same lock, so a job sent meanwhile waits for it and
then runs on a warm JVM; ``--no-warm-up`` skips it. Every request carries the
token the server wrote to ``<state_dir>/run/spark-session.token`` (mode 0600) at start; the
caller's settings fingerprint must equal the server's, otherwise the caller runs the job in its
own process (:func:`etl.session.submit`).

Why: a cold JVM runs a job two to three times slower than a warm one (class loading and JIT
compilation of Spark's SQL engine and of the generated code), and a DAG run has three Spark
jobs (docs/etl.md "One warm Spark session").
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

from etl.session_protocol import (
    FINGERPRINT_HEADER,
    HEALTH_PATH,
    JOBS_PATH,
    TOKEN_HEADER,
    JobAnswer,
    JobError,
    LogRecord,
    settings_fingerprint,
    token_file,
)
from riskstream.settings import Settings

logger = logging.getLogger(__name__)

CAPTURED = ("etl", "riskstream")  # the loggers whose records go back to the caller


def write_token(settings: Settings) -> str:
    """A fresh random token, readable by this user only."""
    path = token_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(token)
    return token


class _Capture(logging.Handler):
    """Collects the records of one job (jobs run one at a time, so all of them are its own)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(CAPTURED):
            self.records.append([record.levelno, record.name, record.getMessage()])


class SessionServer:
    """The session, its lock and its counters; :meth:`handler` serves them over HTTP."""

    def __init__(self, settings: Settings) -> None:
        from etl.spark import build_spark

        self.settings = settings
        self.fingerprint = settings_fingerprint(settings)
        self.token = write_token(settings)
        started = time.perf_counter()
        self.spark = build_spark(settings, "riskstream-session", long_lived=True)
        self.start_seconds = time.perf_counter() - started
        self.lock = threading.Lock()
        self.jobs_served = 0
        self.warmup: dict[str, Any] = {"state": "off"}

    def start_warm_up(self) -> threading.Thread:
        """Warm the session up in the background, holding the job lock while it runs."""
        self.lock.acquire()  # taken here, so no job can slip in before the thread starts
        self.warmup = {"state": "running"}
        thread = threading.Thread(target=self._warm_up, name="warm-up", daemon=True)
        thread.start()
        return thread

    def _warm_up(self) -> None:
        from etl.warmup import warm_up

        try:
            self.warmup = {"state": "done", **warm_up(self.spark, self.settings)}
        except Exception as exc:  # a failed warm-up costs speed, not correctness
            logger.warning("warm-up failed (the jobs will run on a cold session): %s", exc)
            self.warmup = {"state": "failed", "error": f"{type(exc).__name__}: {exc}"}
        finally:
            self.spark.catalog.clearCache()
            self.lock.release()

    def alive(self) -> bool:
        """Whether the session's JVM still answers (a crashed JVM takes the session with it)."""
        try:
            return not self.spark.sparkContext._jsc.sc().isStopped()  # type: ignore[union-attr]
        except Exception:  # py4j: the gateway is gone
            return False

    def health(self) -> tuple[int, dict[str, Any]]:
        if not self.alive():
            return HTTPStatus.SERVICE_UNAVAILABLE, {
                "status": "down",
                "error": "the session's JVM is gone; `riskstream spark down` then `up`",
            }
        return HTTPStatus.OK, {
            "status": "ok",
            "spark": self.spark.version,
            "app_id": self.spark.sparkContext.applicationId,
            "master": self.settings.spark_master,
            "jobs_served": self.jobs_served,
            "busy": self.lock.locked(),
            "start_seconds": round(self.start_seconds, 2),
            "warm_up": self.warmup,
            "settings": self.fingerprint,
        }

    def run_job(self, name: str, kwargs: dict[str, Any]) -> tuple[int, JobAnswer | JobError]:
        from etl.session_jobs import SESSION_JOBS

        job = SESSION_JOBS.get(name)
        if job is None:
            known = ", ".join(sorted(SESSION_JOBS))
            return HTTPStatus.NOT_FOUND, {"error": f"no job {name!r}; the session runs {known}"}
        import inspect

        try:
            inspect.signature(job).bind(self.spark, self.settings, **kwargs)
        except TypeError as exc:
            return HTTPStatus.BAD_REQUEST, {"error": f"{name}: {exc}"}
        capture = _Capture()
        root = logging.getLogger()
        with self.lock:
            if not self.alive():
                return HTTPStatus.SERVICE_UNAVAILABLE, {
                    "error": "the session's JVM is gone; `riskstream spark down` then `up`"
                }
            root.addHandler(capture)
            started = time.perf_counter()
            try:
                report = job(self.spark, self.settings, **kwargs)
            except Exception as exc:  # the job's own error goes back to the caller, whole
                logger.exception("job %s failed", name)
                return HTTPStatus.INTERNAL_SERVER_ERROR, {
                    "error": f"{type(exc).__name__}: {exc}",
                    "type": type(exc).__name__,
                    "traceback": traceback.format_exc(limit=20),
                    "logs": capture.records,
                }
            finally:
                root.removeHandler(capture)
                self.spark.catalog.clearCache()
                self.jobs_served += 1
            seconds = time.perf_counter() - started
        logger.info(
            "job %s done in %.1f s (job %d of this session)", name, seconds, self.jobs_served
        )
        session = {"app_id": self.spark.sparkContext.applicationId, "job": self.jobs_served}
        answer: JobAnswer = {"report": report, "logs": capture.records, "session": session}
        return HTTPStatus.OK, answer

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("%s " + format, self.address_string(), *args)

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body, default=str).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if urlparse(self.path).path == HEALTH_PATH:
                    self._answer(*server.health())
                else:
                    self._answer(HTTPStatus.NOT_FOUND, {"error": f"GET {HEALTH_PATH} only"})

            def do_POST(self) -> None:
                path = urlparse(self.path).path
                if not path.startswith(JOBS_PATH):
                    self._answer(HTTPStatus.NOT_FOUND, {"error": f"POST {JOBS_PATH}<name>"})
                    return
                if not secrets.compare_digest(self.headers.get(TOKEN_HEADER, ""), server.token):
                    self._answer(
                        HTTPStatus.UNAUTHORIZED,
                        {"error": f"missing or wrong {TOKEN_HEADER}; it is in the state dir"},
                    )
                    return
                theirs = self.headers.get(FINGERPRINT_HEADER, "")
                if theirs != server.fingerprint:
                    self._answer(
                        HTTPStatus.CONFLICT,
                        {
                            "error": "the session was started with other settings "
                            f"({server.fingerprint}, yours {theirs or 'none'})"
                        },
                    )
                    return
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                    kwargs = json.loads(self.rfile.read(length) or b"{}")
                    if not isinstance(kwargs, dict):
                        raise ValueError("the body must be a JSON object of keyword arguments")
                except ValueError as exc:
                    self._answer(HTTPStatus.BAD_REQUEST, {"error": f"bad request body: {exc}"})
                    return
                status, body = server.run_job(path[len(JOBS_PATH) :], kwargs)
                self._answer(status, body)

        return Handler


def serve(settings: Settings, host: str, port: int, warm_up: bool = True) -> None:
    """Build the session, warm it up in the background (unless told not to), serve until
    terminated."""
    import signal

    session = SessionServer(settings)
    if warm_up:
        session.start_warm_up()
    httpd = ThreadingHTTPServer((host, port), session.handler())
    httpd.daemon_threads = True

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    logger.info(
        "Spark session %s ready in %.1f s; serving jobs on http://%s:%d",
        session.spark.sparkContext.applicationId,
        session.start_seconds,
        host,
        port,
    )
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()
        session.spark.stop()
        token_file(settings).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from etl.session_process import session_address
    from riskstream.logs import configure_logging

    parser = argparse.ArgumentParser(description="the warm Spark session (settings from env)")
    parser.add_argument(
        "--no-warm-up", action="store_true", help="serve at once, without the warm-up run"
    )
    args = parser.parse_args(argv)
    configure_logging()
    settings = Settings.from_env()
    host, port = session_address(settings)
    serve(settings, host, port, warm_up=not args.no_warm_up)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
