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
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd
from fastapi import FastAPI, Path, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from riskstream.settings import Settings
from serving.compiled import CompiledScorer, NotCompilable, compile_champion
from serving.online import OnlineStore
from serving.rawfeatures import build_rows, lookback_for, observation_date
from serving.registry import Champion, champion_version, load_champion
from serving.schema import (
    MAX_APPLICATIONS,
    MAX_BODY_BYTES,
    PROTECTED_FACTS,
    AccountScore,
    Health,
    ModelInfo,
    ScoreResponse,
    application_model,
    categories,
    feature_kinds,
    raw_application_model,
    raw_request_model,
    request_model,
    score_request_model,
)
from serving.scoring import explain, reason_details, single_threaded

logger = logging.getLogger(__name__)

DEFAULT_TTL = 30.0
DEFAULT_MAX_IN_FLIGHT = 256  # per worker; above it a request gets 503 + Retry-After at once
INLINE_MAX = 32  # up to this many applications are scored on the event loop (sub-millisecond)
MAX_ACCOUNT_ID = 64  # the event contract's limit on account_id


@dataclass(frozen=True)
class Loaded:
    """One champion with the request model and compiled scorer built for it (swapped whole)."""

    champion: Champion
    request_model: type[BaseModel]  # either form, as validated
    kinds: dict[str, str]
    scorer: CompiledScorer | None = None  # None: the batch job's DataFrame path
    published: tuple[type[BaseModel], ...] = ()  # the two forms, as /openapi.json shows them
    allowed: dict[str, list[str] | None] | None = None  # closed categorical values


def prepare(champion: Champion) -> Loaded:
    single_threaded(champion.pipeline)
    kinds = feature_kinds(champion.pipeline, champion.input_schema)
    allowed = categories(champion.pipeline)
    app_model = application_model(kinds, allowed)
    raw_model = raw_application_model(kinds, allowed)
    try:
        scorer: CompiledScorer | None = compile_champion(champion)
    except NotCompilable as exc:
        logger.warning("champion %s is served by the DataFrame path: %s", champion, exc)
        scorer = None
    return Loaded(
        champion,
        score_request_model(app_model, raw_model),
        kinds,
        scorer,
        published=(request_model(app_model), raw_request_model(raw_model)),
        allowed=allowed,
    )


class ChampionHolder:
    """Holds the current champion and follows the registry alias on a TTL."""

    def __init__(
        self,
        settings: Settings,
        ttl: float = DEFAULT_TTL,
        loader: Callable[[Settings], Champion] = load_champion,
        version_of: Callable[[Settings], str | None] = champion_version,
        online: OnlineStore | None = None,
    ) -> None:
        self.settings = settings
        self.online = online
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
        """Off the request path: requests only read ``self.current`` (one attribute read)."""
        self._sync_online()
        while not self._stop.wait(self.ttl):
            self.refresh()
            self._sync_online()

    def _sync_online(self) -> None:
        if self.online is not None:
            try:
                self.online.sync()
            except Exception as exc:  # keep the old replica; get_item still answers
                logger.warning("online replica refresh failed: %s", exc)

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


def score_compiled(loaded: Loaded, rows: list[dict[str, Any]], ids: list[str | None]) -> bytes:
    """The lean path: validated rows -> compiled scorer -> JSON bytes."""
    assert loaded.scorer is not None
    champion = loaded.champion
    return orjson.dumps(
        {
            "model_name": champion.name,
            "model_version": champion.version,
            "results": loaded.scorer.score(rows, ids),
        }
    )


class RawApplicationError(ValueError):
    """Raw applications that validate field by field but cannot be scored; ``errors`` are
    422 details in the request validator's shape."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} invalid raw applications")
        self.errors = errors


def _raw_error(i: int, field: str, msg: str) -> dict[str, Any]:
    return {"loc": ["body", "raw_applications", i, field], "msg": msg, "type": "value_error"}


def _check_feature(loaded: Loaded, name: str, value: Any) -> str | None:
    """Why a computed feature cannot go to the champion (only attributes can be off-type)."""
    kind = loaded.kinds[name]
    values = (loaded.allowed or {}).get(name)
    if value is None:
        return f"is required, one of {values}" if kind == "str" and values else None
    if kind == "str":
        if not isinstance(value, str) or (values and value not in values):
            return f"must be one of {values}" if values else "must be a string"
    elif isinstance(value, bool) or not isinstance(value, int | float):
        return f"must be a number (the champion's {name} is {kind})"
    return None


def score_raw(loaded: Loaded, applications: list[BaseModel]) -> bytes:
    """The raw form: facts -> the pipeline's features (:mod:`serving.rawfeatures`) -> the same
    scorer as the precomputed form. Runs in a worker thread (it costs more than the lean path)."""
    facts = [a.model_dump() for a in applications]
    errors: list[dict[str, Any]] = []
    for i, app in enumerate(facts):
        obs = observation_date(app)
        if app["opened_on"] >= obs:
            errors.append(
                _raw_error(
                    i,
                    "opened_on",
                    f"opened_on {app['opened_on']} is not before the observation date {obs}: "
                    "give an obs_date after the opening, or statements after it",
                )
            )
    if errors:
        raise RawApplicationError(errors)
    rows = build_rows(facts, lookback_for(list(loaded.kinds)))
    unknown = [n for n in loaded.kinds if n not in rows[0] and not n.startswith("attr_")]
    if unknown:  # an absent attribute is null, as in the pipeline; other features must exist
        raise RawApplicationError(
            [
                {
                    "loc": ["body", "raw_applications"],
                    "msg": f"champion v{loaded.champion.version} takes {unknown[:8]}, which the "
                    "pipeline's features job does not compute from raw facts: send "
                    "`applications` (precomputed features) instead",
                    "type": "value_error",
                }
            ]
        )
    for i, row in enumerate(rows):
        for name in loaded.kinds:
            problem = _check_feature(loaded, name, row.get(name))
            if problem is not None:
                key = name.removeprefix("attr_")
                errors.append(_raw_error(i, "attributes", f"attribute {key!r} {problem}"))
    if errors:
        raise RawApplicationError(errors)
    ids = [a["application_id"] for a in facts]
    inputs = [{name: row.get(name) for name in loaded.kinds} for row in rows]

    def unscorable(i: int) -> dict[str, Any]:
        missing = [name for name in loaded.kinds if rows[i].get(name) is None]
        return _raw_error(
            i,
            "statements",
            f"champion v{loaded.champion.version} cannot score missing values and "
            f"{missing[:8]} are null at {rows[i]['obs_date']}: send the statements, "
            "payments and account facts of the lookback months",
        )

    if loaded.scorer is not None:
        pd_values = loaded.scorer.pd(loaded.scorer.transform(inputs))
        bad = [i for i in range(len(rows)) if not np.isfinite(pd_values[i])]
        if bad:
            raise RawApplicationError([unscorable(i) for i in bad])
        results = loaded.scorer.score(inputs, ids)
    else:
        frame = pd.DataFrame(inputs, columns=list(loaded.kinds))
        try:
            results = score_records(loaded, frame, ids)["results"]
        except (ValueError, TypeError) as exc:  # e.g. a model that takes no missing value
            logger.info("raw applications not scorable: %s", exc)
            raise RawApplicationError([unscorable(i) for i in range(len(rows))]) from None
    for result, row, used in zip(results, rows, inputs, strict=True):
        result["obs_date"] = row["obs_date"].isoformat()
        result["features"] = {  # what was scored: a valid precomputed-form application
            name: int(v) if loaded.kinds[name] == "int" and v is not None else v
            for name, v in used.items()
        }
    if errors:
        raise RawApplicationError(errors)
    champion = loaded.champion
    return orjson.dumps(
        {"model_name": champion.name, "model_version": champion.version, "results": results}
    )


def _json(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = content if isinstance(content, bytes) else orjson.dumps(content)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _error(status: int, message: str, **extra: Any) -> Response:
    return _json({"detail": message, **extra}, status)


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
    """The API for ``settings``; the champion and the online replica are followed with a check
    every ``ttl`` seconds in a background thread."""
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
    limiter_box: list[InFlightLimit] = []

    def limiter(inner: ASGIApp, limit: int) -> InFlightLimit:
        made = InFlightLimit(inner, limit)
        limiter_box.append(made)
        return made

    app.add_middleware(limiter, limit=max_in_flight)  # type: ignore[arg-type]
    app.state.limiter = limiter_box
    overloaded = {503: {"description": "no champion yet, or overloaded (with Retry-After)"}}
    protected = {*PROTECTED_FACTS, *settings.protected_attributes}

    def _protected_msg(err: Any) -> str | None:
        loc = err["loc"]
        if err["type"] == "extra_forbidden" and loc and str(loc[-1]).lower() in protected:
            return (
                f"{loc[-1]} is a protected attribute and never an input of this champion: "
                "leave it out"
            )
        return None

    @app.get("/health", response_model=Health)
    async def health() -> Response:
        current = holder.current
        return _json(
            {
                "status": "ok" if current else "no-model",
                "model_version": current.champion.version if current else None,
                "checked_at": holder.checked_at,
                "error": holder.last_error,
                "online_accounts": len(store.replica),
            }
        )

    @app.get("/model", response_model=ModelInfo, responses=overloaded)
    async def model() -> Response:
        current = holder.current
        if current is None:
            return _error(503, f"no champion loaded: {holder.last_error or 'not checked yet'}")
        described = current.champion.describe()
        described["scorer"] = "compiled" if current.scorer else "dataframe"
        described["reason_method"] = current.scorer.reason_method if current.scorer else None
        return _json(described)

    @app.post(
        "/score",
        response_model=ScoreResponse,
        responses={
            413: {"description": f"body larger than {MAX_BODY_BYTES} bytes"},
            422: {"description": "invalid application; `detail[].loc` names the field"},
            **overloaded,
        },
    )
    async def score(request: Request) -> Any:
        """Score one or many applications, by their features ``{"applications": [{...}]}`` or
        by their raw facts ``{"raw_applications": [{"opened_on": ..., "statements": [...]}]}``
        (features computed with the pipeline's definitions)."""
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
                    "msg": _protected_msg(err) or err["msg"],
                    "type": err["type"],
                }
                for err in exc.errors(include_url=False, include_input=False)[:50]
            ]
            return _json({"detail": errors}, 422)
        raw = payload.raw_applications  # type: ignore[attr-defined]
        if raw is not None:
            try:
                return _json(await run_in_threadpool(score_raw, current, raw))
            except RawApplicationError as exc:
                return _json({"detail": exc.errors[:50]}, 422)
        applications = payload.applications  # type: ignore[attr-defined]
        if current.scorer is not None:
            rows = [a.__dict__ for a in applications]
            ids = [r.get("application_id") for r in rows]
            if len(rows) <= INLINE_MAX:  # sub-millisecond: cheaper than a thread hop
                return _json(score_compiled(current, rows, ids))
            return _json(await run_in_threadpool(score_compiled, current, rows, ids))
        frame, ids = to_frame(current, applications)
        return _json(await run_in_threadpool(score_records, current, frame, ids))

    @app.get(
        "/accounts/{account_id}/score",
        response_model=AccountScore,
        responses={404: {"description": "no such account in the online table"}, **overloaded},
    )
    async def account_score(
        account_id: str = Path(min_length=1, max_length=MAX_ACCOUNT_ID),
    ) -> Response:
        """Score an existing account from its latest features in the online table."""
        current = holder.current
        if current is None:
            return _error(503, f"no champion loaded: {holder.last_error or 'not checked yet'}")
        features = store.replica.get(account_id)
        if features is None:
            try:
                features = await run_in_threadpool(store.fetch, account_id)
            except Exception as exc:
                logger.warning("online table read failed for %r: %s", account_id, exc)
                return _error(503, f"the online feature table {store.table} cannot be read: {exc}")
        if features is None:
            return _error(
                404,
                f"account_id {account_id!r} is not in the online feature table {store.table}; "
                "is it materialized (the pipeline's score step, or riskstream score)?",
            )
        missing = [f for f in current.kinds if f not in features]
        if missing:
            return _error(
                503,
                f"the online features of {account_id!r} lack {missing[:5]} that champion "
                f"v{current.champion.version} needs; rerun the features and score steps",
            )
        if current.scorer is not None:
            result = current.scorer.score([features], [account_id])[0]
        else:
            frame = pd.DataFrame([features])
            result = score_records(current, frame, [account_id])["results"][0]
        result.pop("application_id", None)
        return _json(
            {
                "model_name": current.champion.name,
                "model_version": current.champion.version,
                "account_id": account_id,
                "obs_date": features.get("obs_date"),
                **result,
            }
        )

    def openapi() -> dict[str, Any]:
        current = holder.current
        key = current.champion.version if current else None
        if app.openapi_schema and app.state.openapi_key == key:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        if current is not None:
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            forms = []
            for model in current.published:
                req = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(req.pop("$defs", {}))
                components[model.__name__] = req
                forms.append({"$ref": f"#/components/schemas/{model.__name__}"})
            components["ScoreRequest"] = {
                "title": "ScoreRequest",
                "description": "precomputed features, or raw account facts",
                "oneOf": forms,
            }
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
    from riskstream.logs import configure_logging

    configure_logging(os.environ.get("RISKSTREAM_LOG_LEVEL"))
    ttl = float(os.environ.get("RISKSTREAM_CHAMPION_TTL", DEFAULT_TTL))
    limit = int(os.environ.get("RISKSTREAM_API_MAX_IN_FLIGHT", DEFAULT_MAX_IN_FLIGHT))
    return create_app(Settings.from_env(), ttl=ttl, max_in_flight=limit)
