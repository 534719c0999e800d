"""The warm Spark session as a managed background service (``python -m etl.session_server``).

Started by ``riskstream spark up`` and by ``riskstream run``; stopped by ``riskstream stop``.
The child process rebuilds the same :class:`Settings` from the environment passed here
(:meth:`Settings.to_env`), so it reads and writes the same buckets as the tasks it serves.
"""

from __future__ import annotations

import sys
from urllib.parse import urlparse

from etl.session_protocol import HEALTH_PATH
from infra.services import ManagedService, ServiceSpec
from riskstream.settings import REPO_ROOT, Settings


class SessionConfigError(ValueError):
    """The session URL in the settings cannot be served locally; the message names it."""


def session_address(settings: Settings) -> tuple[str, int]:
    """(host, port) of ``settings.spark_session_url``: a loopback http URL with a port."""
    parsed = urlparse(settings.spark_session_url)
    host = "127.0.0.1" if parsed.hostname == "localhost" else parsed.hostname
    if parsed.scheme != "http" or host != "127.0.0.1" or not parsed.port:
        raise SessionConfigError(
            f"RISKSTREAM_SPARK_SESSION_URL={settings.spark_session_url!r} must be "
            "http://127.0.0.1:<port> (the session serves on the loopback interface only)"
        )
    return host, parsed.port


def session_service(settings: Settings, warm_up: bool = True) -> ManagedService:
    """The warm Spark session on ``settings.spark_session_url`` (default port 8998); it warms
    itself up after start unless ``warm_up`` is false (:mod:`etl.warmup`)."""
    host, port = session_address(settings)
    spec = ServiceSpec(
        name="spark",
        argv=[
            sys.executable,
            "-m",
            "etl.session_server",
            *([] if warm_up else ["--no-warm-up"]),
        ],
        host=host,
        port=port,
        health_path=HEALTH_PATH,
        env=settings.to_env(),
        cwd=REPO_ROOT,
        start_timeout=120,
    )
    return ManagedService(spec, settings.state_dir)
