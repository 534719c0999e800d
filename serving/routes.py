"""The API's routes: health, model, score, account score and the OpenAPI document. Each handler
reads the app's :class:`serving.service.ChampionHolder` and online store from ``app.state``
(set by :func:`serving.api.create_app`)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pandas as pd
from fastapi import APIRouter, FastAPI, Path, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from serving.online import LIVE_CHECK_SECONDS, OnlineStore
from serving.schema import (
    MAX_BODY_BYTES,
    AccountScore,
    Health,
    ModelInfo,
    ScoreResponse,
)
from serving.service import (
    INLINE_MAX,
    MAX_ACCOUNT_ID,
    RAW_INLINE_MAX,
    ChampionHolder,
    Loaded,
    RawApplicationError,
    _error,
    _json,
    score_compiled,
    score_raw,
    score_records,
    to_frame,
)

logger = logging.getLogger(__name__)


router = APIRouter()
OVERLOADED: dict[int | str, dict[str, Any]] = {
    503: {"description": "no champion loaded yet, or overloaded (with Retry-After)"}
}


def _holder(request: Request) -> ChampionHolder:
    holder: ChampionHolder = request.app.state.holder
    return holder


def _no_champion(holder: ChampionHolder) -> Response:
    return _error(503, f"no champion loaded: {holder.last_error or 'not checked yet'}")


def _protected_msg(err: Any, protected: set[str]) -> str | None:
    loc = err["loc"]
    if err["type"] == "extra_forbidden" and loc and str(loc[-1]).lower() in protected:
        return (
            f"{loc[-1]} is a protected attribute and never an input of this champion: leave it out"
        )
    return None


@router.get("/health", response_model=Health)
async def health(request: Request) -> Response:
    holder = _holder(request)
    current = holder.current
    return _json(
        {
            "status": "ok" if current else "no-model",
            "model_version": current.champion.version if current else None,
            "checked_at": holder.checked_at,
            "error": holder.last_error,
            "online_accounts": len(request.app.state.online.replica),
        }
    )


@router.get("/model", response_model=ModelInfo, responses=OVERLOADED)
async def model(request: Request) -> Response:
    holder = _holder(request)
    current = holder.current
    if current is None:
        return _no_champion(holder)
    described = current.champion.describe()
    described["scorer"] = "compiled" if current.scorer else "dataframe"
    described["reason_method"] = current.reason_method
    return _json(described)


async def read_body(declared: str | None, chunks: AsyncIterator[bytes]) -> bytes | Response:
    """The request body, or a 413 answer when it is larger than the cap (``declared``: the
    content-length header)."""
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return _error(413, f"body of {declared} bytes exceeds the {MAX_BODY_BYTES} byte cap")
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return _error(413, f"body exceeds the {MAX_BODY_BYTES} byte cap")
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


@router.post(
    "/score",
    response_model=ScoreResponse,
    responses={
        413: {"description": f"body larger than {MAX_BODY_BYTES} bytes"},
        422: {"description": "invalid application; `detail[].loc` names the field"},
        **OVERLOADED,
    },
)
async def score(request: Request) -> Any:
    """Score one or many applications, by their features ``{"applications": [{...}]}`` or
    by their raw facts ``{"raw_applications": [{"opened_on": ..., "statements": [...]}]}``
    (features computed with the pipeline's definitions)."""
    return await score_answer(
        _holder(request),
        request.app.state.protected,
        request.headers.get("content-length"),
        request.stream(),
    )


async def score_answer(
    holder: ChampionHolder,
    protected: set[str],
    declared: str | None,
    chunks: AsyncIterator[bytes],
) -> Response:
    """``POST /score``: the body read from ``chunks`` (``declared``: its content-length
    header), validated against the champion's request model (pydantic-core, from the bytes),
    then scored (serving.service)."""
    current = holder.current
    if current is None:
        return _no_champion(holder)
    body = await read_body(declared, chunks)
    if isinstance(body, Response):
        return body
    try:
        payload = current.request_model.model_validate_json(body)
    except ValidationError as exc:
        errors = [
            {
                "loc": ["body", *err["loc"]],
                "msg": _protected_msg(err, protected) or err["msg"],
                "type": err["type"],
            }
            for err in exc.errors(include_url=False, include_input=False)[:50]
        ]
        return _json({"detail": errors}, 422)
    raw = payload.raw_applications  # type: ignore[attr-defined]
    if raw is not None:
        try:
            if len(raw) <= RAW_INLINE_MAX:  # no thread hop, no GIL hand-over for one
                return _json(score_raw(current, raw))
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


@router.get(
    "/accounts/{account_id}/score",
    response_model=AccountScore,
    responses={404: {"description": "no such account in the online table"}, **OVERLOADED},
)
async def account_score(
    request: Request,
    account_id: str = Path(min_length=1, max_length=MAX_ACCOUNT_ID),
) -> Response:
    """Score an existing account: its live score (with ``as_of``, the event time of the latest
    event in it) while the live scorer runs, else from its materialized features."""
    return await account_answer(_holder(request), request.app.state.online, account_id)


async def account_answer(holder: ChampionHolder, store: OnlineStore, account_id: str) -> Response:
    """``GET /accounts/{account_id}/score`` for a valid id (1 to 64 characters)."""
    current = holder.current
    if current is None:
        return _no_champion(holder)
    live_checked = time.monotonic() - store.live_checked_at < LIVE_CHECK_SECONDS
    is_live = store.live if live_checked else await run_in_threadpool(store.live_now)
    if is_live:  # the live scorer's answer, as fresh as the last event applied
        try:
            live = await run_in_threadpool(store.fetch_live, account_id)
        except Exception as exc:  # fall back to the materialized features
            logger.warning("live item read failed for %r: %s", account_id, exc)
            live = None
        if live is not None:
            return _json({"account_id": account_id, "source": "live", **live})
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
    answer = _account_answer(current, account_id, features)
    return answer if isinstance(answer, Response) else _json(answer)


def _account_answer(
    current: Loaded, account_id: str, features: dict[str, Any]
) -> dict[str, Any] | Response:
    """The account's score from its online features, or a 503 naming the features it lacks."""
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
        result = score_records(current, pd.DataFrame([features]), [account_id])["results"][0]
    result.pop("application_id", None)
    return {
        "model_name": current.champion.name,
        "model_version": current.champion.version,
        "account_id": account_id,
        "obs_date": features.get("obs_date"),
        "reason_method": current.reason_method,
        **result,
        "source": "batch",
    }


def openapi_for(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """``app.openapi``: the schema with the current champion's request forms, rebuilt when the
    champion changes."""

    def openapi() -> dict[str, Any]:
        current = app.state.holder.current
        key = current.champion.version if current else None
        if app.openapi_schema and app.state.openapi_key == key:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        if current is not None:
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            forms = []
            for published in current.published:
                req = published.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(req.pop("$defs", {}))
                components[published.__name__] = req
                forms.append({"$ref": f"#/components/schemas/{published.__name__}"})
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

    return openapi
