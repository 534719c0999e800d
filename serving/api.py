"""The real-time scoring API (FastAPI): ``POST /score``, ``GET /accounts/{id}/score``,
``GET /health``, ``GET /model``, ``/docs``.

The champion is loaded by alias from the MLflow registry at start-up and compiled into an array
scorer (:mod:`serving.compiled`; the batch job's DataFrame path when it cannot be compiled). A
background thread checks the alias and the online feature table's marker every ``ttl`` seconds:
a new version is loaded, compiled and swapped in without a restart, and requests only ever read
the current one. Requests are validated against a schema built from the champion's own features
(see :mod:`serving.schema`), which is also the schema ``/openapi.json`` publishes. An in-flight
limit per worker answers 503 with ``Retry-After`` when overloaded.

Run it with ``riskstream api up`` (uvicorn on 127.0.0.1:8000, one worker per core, see
:mod:`serving.processes`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from riskstream.settings import Settings
from serving.leanpath import LeanRoutes
from serving.online import OnlineStore
from serving.routes import openapi_for, router
from serving.schema import (
    MAX_APPLICATIONS,
    PROTECTED_FACTS,
)
from serving.service import DEFAULT_TTL, ChampionHolder

logger = logging.getLogger(__name__)

DEFAULT_MAX_IN_FLIGHT = 256  # per worker; above it a request gets 503 + Retry-After at once

ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


class InFlightLimit:
    """ASGI middleware: at most ``limit`` requests in flight per worker; the next one gets
    503 with ``Retry-After`` at once instead of queueing into a client timeout."""

    def __init__(self, app: ASGIApp, limit: int, retry_after: int = 1, exempt=("/health",)):
        self.app = app
        self.limit = limit
        self.retry_after = retry_after
        self.exempt = tuple(exempt)
        self.in_flight = 0
        self.rejected = 0

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            self.rejected += 1
            body = orjson.dumps(
                {"detail": f"overloaded: {self.in_flight} requests in flight (limit {self.limit})"}
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"retry-after", str(self.retry_after).encode()),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


def create_app(
    settings: Settings,
    ttl: float = DEFAULT_TTL,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    online: OnlineStore | None = None,
) -> FastAPI:
    """The API for ``settings``: the routes (serving.routes) over a champion and an online
    replica followed with a check every ``ttl`` seconds in a background thread."""
    store = online if online is not None else OnlineStore(settings)
    holder = ChampionHolder(settings, ttl, online=store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(holder.start)
        yield
        holder.stop()

    app = FastAPI(
        title="riskstream scoring API",
        version="1",
        description="Probability of default, 300-850 score, risk tier, decision and reason codes "
        f"from the registry's champion. Up to {MAX_APPLICATIONS} applications per request; "
        "existing accounts by id from the online feature table.",
        lifespan=lifespan,
    )
    app.state.holder = holder
    app.state.online = store
    app.state.protected = {*PROTECTED_FACTS, *settings.protected_attributes}
    limiter_box: list[InFlightLimit] = []

    def limiter(inner: ASGIApp, limit: int) -> InFlightLimit:
        made = InFlightLimit(inner, limit)
        limiter_box.append(made)
        return made

    # inside the limit: the scoring routes without FastAPI's routing (serving.leanpath)
    app.add_middleware(
        LeanRoutes,  # type: ignore[arg-type]
        holder=holder,
        store=store,
        protected=app.state.protected,
    )
    app.add_middleware(limiter, limit=max_in_flight)  # type: ignore[arg-type]
    app.state.limiter = limiter_box
    app.include_router(router)
    app.state.openapi_key = None
    app.openapi = openapi_for(app)  # type: ignore[method-assign]
    return app


def one_blas_thread() -> None:
    """Numeric libraries on one thread in this worker: the API runs one worker per core, and a
    BLAS pool per worker (two threads each for numpy's and scipy's OpenBLAS here) spins after
    every small product, taking the core another worker or the client needs (docs/serving.md,
    "Where the time goes")."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def app_from_env() -> FastAPI:
    """uvicorn factory (``serving.api:app_from_env``): the entry point that reads settings."""
    from riskstream.logs import configure_logging

    configure_logging(os.environ.get("RISKSTREAM_LOG_LEVEL"))
    one_blas_thread()
    ttl = float(os.environ.get("RISKSTREAM_CHAMPION_TTL", DEFAULT_TTL))
    limit = int(os.environ.get("RISKSTREAM_API_MAX_IN_FLIGHT", DEFAULT_MAX_IN_FLIGHT))
    return create_app(Settings.from_env(), ttl=ttl, max_in_flight=limit)
