"""The warm Spark session as a managed background service (``python -m etl.session_server``).

Started by ``riskstream spark up`` and by ``riskstream run``; stopped by ``riskstream stop``.
The child process rebuilds the same :class:`Settings` from the environment passed here
(:meth:`Settings.to_env`), so it reads and writes the same buckets as the tasks it serves.
"""

from __future__ import annotations

import sys

from etl.session_protocol import HEALTH_PATH
from infra.services import ManagedService, ServiceSpec, loopback_address
from riskstream.settings import REPO_ROOT, Settings


def session_address(settings: Settings) -> tuple[str, int]:
    """(host, port) of ``settings.spark_session_url`` (:class:`AddressError` unless loopback)."""
    return loopback_address(settings.spark_session_url, "RISKSTREAM_SPARK_SESSION_URL")


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
