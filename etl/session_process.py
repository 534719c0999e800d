"""The warm Spark session as a managed background service (``python -m etl.session_server``).

Started by ``riskstream spark up`` and by ``riskstream run``; stopped by ``riskstream stop``.
The child process rebuilds the same :class:`Settings` from the environment passed here
(:meth:`Settings.to_env`), so it reads and writes the same buckets as the tasks it serves.
"""

from __future__ import annotations

from etl.session_protocol import HEALTH_PATH
from infra.services import ManagedService, loopback_address, module_service
from riskstream.settings import Settings


def session_address(settings: Settings) -> tuple[str, int]:
    """(host, port) of ``settings.spark_session_url`` (:class:`AddressError` unless loopback)."""
    return loopback_address(settings.spark_session_url, "RISKSTREAM_SPARK_SESSION_URL")


def session_service(settings: Settings, warm_up: bool = True) -> ManagedService:
    """The warm Spark session on ``settings.spark_session_url`` (default port 8998); it warms
    itself up after start unless ``warm_up`` is false (:mod:`etl.warmup`)."""
    argv = ["etl.session_server", *([] if warm_up else ["--no-warm-up"])]
    return module_service(settings, "spark", argv, session_address(settings), 120, HEALTH_PATH)
