"""The scoring API and the analyst dashboard as managed background services (uvicorn, 127.0.0.1).

The child process rebuilds the same :class:`Settings` from the environment passed here
(:meth:`Settings.to_env`), so a service started from a test or the CLI talks to the same cloud,
registry and prefix as its parent.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from infra.services import ManagedService, module_service
from riskstream.settings import Settings


class ServiceConfigError(ValueError):
    """A service URL in the settings cannot be served locally; the message names it."""


def host_port(url: str, variable: str) -> tuple[str, int]:
    parsed = urlparse(url)
    if parsed.scheme != "http" or not parsed.hostname or not parsed.port:
        raise ServiceConfigError(
            f"{variable}={url!r} must be an http URL with a port, e.g. http://127.0.0.1:8000"
        )
    host = "127.0.0.1" if parsed.hostname == "localhost" else parsed.hostname
    return host, parsed.port


def _uvicorn_service(
    name: str,
    factory: str,
    url: str,
    variable: str,
    settings: Settings,
    extra_env: dict[str, str] | None = None,
    workers: int = 1,
) -> ManagedService:
    host, port = host_port(url, variable)
    argv = ["uvicorn", "--factory", factory, "--host", host, "--port", str(port)]
    argv += ["--workers", str(workers), "--no-access-log"]
    return module_service(settings, name, argv, (host, port), 90, extra_env=extra_env)


def api_workers(settings: Settings) -> int:
    """One uvicorn worker per core unless the settings say (``RISKSTREAM_API_WORKERS``): scoring
    is CPU-bound and each worker is one Python process with its own GIL."""
    return settings.api_workers or max(os.cpu_count() or 1, 1)


def api_service(
    settings: Settings, ttl: float | None = None, workers: int | None = None
) -> ManagedService:
    """The scoring API on ``settings.api_url`` (default http://127.0.0.1:8000), one worker per
    core unless ``workers`` says otherwise."""
    # one BLAS/OpenMP thread per worker (serving.api.one_blas_thread): the workers are the
    # parallelism, and idle pool threads spin on the cores the other workers need
    extra = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    if ttl is not None:
        extra["RISKSTREAM_CHAMPION_TTL"] = str(ttl)
    return _uvicorn_service(
        "api",
        "serving.api:app_from_env",
        settings.api_url,
        "RISKSTREAM_API_URL",
        settings,
        extra,
        workers=workers or api_workers(settings),
    )


def dashboard_service(settings: Settings) -> ManagedService:
    """The analyst dashboard on ``settings.dashboard_url`` (default http://127.0.0.1:8050)."""
    return _uvicorn_service(
        "dashboard",
        "serving.dashboard:app_from_env",
        settings.dashboard_url,
        "RISKSTREAM_DASHBOARD_URL",
        settings,
    )


def live_service(settings: Settings) -> ManagedService:
    """The live scorer (``python -m serving.live``): its status at ``settings.live_url``
    (default http://127.0.0.1:8070, loopback only)."""
    address = host_port(settings.live_url, "RISKSTREAM_LIVE_URL")
    return module_service(settings, "live", ["serving.live"], address, 90)
