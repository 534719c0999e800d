"""The real-time scoring API (FastAPI): ``POST /score``, ``GET /health``, ``GET /model``, ``/docs``.

The champion is loaded by alias from the MLflow registry at start-up, and a background thread
checks the alias every ``ttl`` seconds: when it points at a new version, that version is loaded
and swapped in without a restart. Requests are validated against a schema built from the
champion's own features (see :mod:`serving.schema`) and scored by :func:`serving.scoring.explain`,
the same code path as the batch job.

Run it with ``riskstream api up`` (uvicorn on 127.0.0.1:8000, see :mod:`serving.processes`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from riskstream.settings import Settings
from serving.registry import Champion, champion_version, load_champion
from serving.schema import (
    MAX_APPLICATIONS,
    MAX_BODY_BYTES,
    ScoreResponse,
    application_model,
    categories,
    feature_kinds,
    request_model,
)
from serving.scoring import explain, reason_details, single_threaded

logger = logging.getLogger(__name__)

DEFAULT_TTL = 30.0


@dataclass(frozen=True)
class Loaded:
    """One champion with the request model built for it (swapped as a whole)."""

    champion: Champion
    request_model: type[BaseModel]
    kinds: dict[str, str]


def prepare(champion: Champion) -> Loaded:
    single_threaded(champion.pipeline)
    kinds = feature_kinds(champion.pipeline, champion.input_schema)
    app_model = application_model(kinds, categories(champion.pipeline))
    return Loaded(champion, request_model(app_model), kinds)


class ChampionHolder:
    """Holds the current champion and follows the registry alias on a TTL."""

    def __init__(
        self,
        settings: Settings,
        ttl: float = DEFAULT_TTL,
        loader: Callable[[Settings], Champion] = load_champion,
        version_of: Callable[[Settings], str | None] = champion_version,
    ) -> None:
        self.settings = settings
        self.ttl = ttl
        self._loader = loader
        self._version_of = version_of
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.current: Loaded | None = None
        self.checked_at: float | None = None
        self.last_error: str | None = None

    def refresh(self) -> bool:
        """Load the champion if the alias moved (or nothing is loaded); True if it changed."""
        with self._lock:
            try:
                version = self._version_of(self.settings)
                self.checked_at = time.time()
                have = self.current.champion.version if self.current else None
                if version is None or version == have:
                    self.last_error = None if version else "no champion in the registry yet"
                    return False
                loaded = prepare(self._loader(self.settings))
            except Exception as exc:  # keep serving the old champion; report on /health
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.warning("champion check failed: %s", self.last_error)
                return False
            self.current = loaded
            self.last_error = None
            logger.info("now serving %s", loaded.champion)
            return True

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="champion-ttl", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.ttl):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def score_records(loaded: Loaded, frame: pd.DataFrame, ids: list[str | None]) -> dict[str, Any]:
    """Score validated applications with the batch job's code path."""
    champion = loaded.champion
    result = explain(champion.pipeline, frame, champion.config())
    results = [
        {
            "application_id": ids[i],
            "pd": float(result.pd[i]),
            "score": int(result.score[i]),
            "risk_tier": str(result.risk_tier[i]),
            "decision": str(result.decision[i]),
            "reasons": reason_details(result.source_contribs, result.source_names, i),
        }
        for i in range(len(frame))
    ]
    return {"model_name": champion.name, "model_version": champion.version, "results": results}


def to_frame(
    loaded: Loaded, applications: list[BaseModel]
) -> tuple[pd.DataFrame, list[str | None]]:
    rows = [a.model_dump() for a in applications]
    ids = [r.pop("application_id", None) for r in rows]
    frame = pd.DataFrame(rows, columns=list(loaded.kinds))
    for name, kind in loaded.kinds.items():
        if kind == "int":
            frame[name] = frame[name].astype("int64")
        elif kind == "float":
            frame[name] = frame[name].astype("float64")
    return frame, ids


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": message, **extra})


def create_app(settings: Settings, ttl: float = DEFAULT_TTL) -> FastAPI:
    """The API for ``settings``; the champion is followed with a check every ``ttl`` seconds."""
    holder = ChampionHolder(settings, ttl)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(holder.start)
        yield
        holder.stop()

    app = FastAPI(
        title="riskstream scoring API",
        version="1",
        description="Probability of default, 300-850 score, risk tier, decision and reason codes "
        f"from the registry's champion. Up to {MAX_APPLICATIONS} applications per request.",
        lifespan=lifespan,
    )
    app.state.holder = holder

    @app.get("/health")
    def health() -> dict[str, Any]:
        current = holder.current
        return {
            "status": "ok" if current else "no-model",
            "model_version": current.champion.version if current else None,
            "checked_at": holder.checked_at,
            "error": holder.last_error,
        }

    @app.get("/model")
    def model() -> JSONResponse:
        current = holder.current
        if current is None:
            return _error(503, f"no champion loaded: {holder.last_error or 'not checked yet'}")
        return JSONResponse(current.champion.describe())

    @app.post(
        "/score",
        response_model=ScoreResponse,
        responses={
            413: {"description": f"body larger than {MAX_BODY_BYTES} bytes"},
            422: {"description": "invalid application; `detail[].loc` names the field"},
            503: {"description": "no champion in the registry yet"},
        },
    )
    async def score(request: Request) -> Any:
        """Score one or many applications: ``{"applications": [{...features...}, ...]}``."""
        current = holder.current
        if current is None:
            return _error(503, f"no champion loaded: {holder.last_error or 'not checked yet'}")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _error(413, f"body of {declared} bytes exceeds the {MAX_BODY_BYTES} byte cap")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return _error(413, f"body exceeds the {MAX_BODY_BYTES} byte cap")
            chunks.append(chunk)
        try:
            payload = current.request_model.model_validate_json(b"".join(chunks))
        except ValidationError as exc:
            errors = [
                {
                    "loc": ["body", *err["loc"]],
                    "msg": err["msg"],
                    "type": err["type"],
                }
                for err in exc.errors(include_url=False, include_input=False)[:50]
            ]
            return JSONResponse(status_code=422, content={"detail": errors})
        frame, ids = to_frame(current, payload.applications)  # type: ignore[attr-defined]
        return await run_in_threadpool(score_records, current, frame, ids)

    def openapi() -> dict[str, Any]:
        current = holder.current
        key = current.champion.version if current else None
        if app.openapi_schema and app.state.openapi_key == key:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        if current is not None:
            req = current.request_model.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(req.pop("$defs", {}))
            components["ScoreRequest"] = req
            schema["paths"]["/score"]["post"]["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ScoreRequest"}}
                },
            }
        app.openapi_schema = schema
        app.state.openapi_key = key
        return schema

    app.state.openapi_key = None
    app.openapi = openapi  # type: ignore[method-assign]
    return app


def app_from_env() -> FastAPI:
    """uvicorn factory (``serving.api:app_from_env``): the entry point that reads settings."""
    import os

    from riskstream.logs import configure_logging

    configure_logging(os.environ.get("RISKSTREAM_LOG_LEVEL"))
    ttl = float(os.environ.get("RISKSTREAM_CHAMPION_TTL", DEFAULT_TTL))
    return create_app(Settings.from_env(), ttl=ttl)
