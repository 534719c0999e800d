"""The scoring service behind the API: the champion loaded, compiled and followed
(:class:`ChampionHolder`), and the scoring of precomputed and raw applications. No routes here
(serving.routes) and no app wiring (serving.api)."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pandas as pd
from fastapi.responses import Response
from pydantic import BaseModel

from riskstream.featuredefs import DEFAULT_LOOKBACK_MONTHS
from riskstream.settings import Settings
from serving.compiled import CompiledScorer, NotCompilable, compile_champion
from serving.online import OnlineStore
from serving.rawfeatures import build_rows, lookback_for, observation_date
from serving.registry import Champion, champion_version, load_champion
from serving.schema import (
    application_model,
    categories,
    feature_kinds,
    raw_application_model,
    raw_request_model,
    request_model,
    score_request_model,
)
from serving.scoring import explain, reason_details, reason_method, single_threaded

logger = logging.getLogger(__name__)


DEFAULT_TTL = 30.0
INLINE_MAX = 32  # up to this many applications are scored on the event loop (sub-millisecond)
# One raw application (its features on float64 scalars, then the same scorer) costs under a
# millisecond: on the event loop, as the precomputed form; more go to the thread pool.
RAW_INLINE_MAX = 1
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
    reason_method: str = ""  # how the reasons are computed, as every answer names it
    lookback: int = DEFAULT_LOOKBACK_MONTHS  # months of raw facts its features use (lookback_for)


def prepare(champion: Champion) -> Loaded:
    single_threaded(champion.pipeline)
    kinds = feature_kinds(champion.pipeline, champion.input_schema)
    allowed = categories(champion.pipeline)
    app_model = application_model(kinds, allowed)
    raw_model = raw_application_model(kinds, allowed)
    try:
        scorer: CompiledScorer | None = compile_champion(champion)
        method = scorer.reason_method
    except NotCompilable as exc:
        logger.warning("champion %s is served by the DataFrame path: %s", champion, exc)
        scorer = None
        method = reason_method(champion.pipeline)
    return Loaded(
        champion,
        score_request_model(app_model, raw_model),
        kinds,
        scorer,
        published=(request_model(app_model), raw_request_model(raw_model)),
        allowed=allowed,
        reason_method=method,
        lookback=lookback_for(list(kinds)),
    )


def settle_heap() -> None:
    """After a champion is loaded: collect what the previous one left, then freeze every
    object alive (the libraries, the model) out of the garbage collector's reach, so that its
    periodic full collections walk only what requests allocate, not the whole heap. Measured
    in the API's workers under 50 clients: without it a full collection (a few a minute) took
    0.3-1 s and stalled every request in flight (docs/serving.md, "Third profile")."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


@dataclass(eq=False)
class ChampionHolder:
    """Holds the current champion and follows the registry alias on a TTL."""

    settings: Settings
    ttl: float = DEFAULT_TTL
    loader: Callable[[Settings], Champion] = load_champion
    version_of: Callable[[Settings], str | None] = champion_version
    online: OnlineStore | None = None
    current: Loaded | None = field(default=None, init=False)
    checked_at: float | None = field(default=None, init=False)
    last_error: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> bool:
        """Load the champion if the alias moved (or nothing is loaded); True if it changed."""
        with self._lock:
            try:
                version = self.version_of(self.settings)
                self.checked_at = time.time()
                have = self.current.champion.version if self.current else None
                if version is None or version == have:
                    self.last_error = None if version else "no champion in the registry yet"
                    return False
                loaded = prepare(self.loader(self.settings))
            except Exception as exc:  # keep serving the old champion; report on /health
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.warning("champion check failed: %s", self.last_error)
                return False
            self.current = loaded
            self.last_error = None
            settle_heap()
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
    return {
        "model_name": champion.name,
        "model_version": champion.version,
        "reason_method": loaded.reason_method,
        "results": results,
    }


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
            "reason_method": loaded.reason_method,
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
    rows = build_rows(facts, loaded.lookback)
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
        for name, kind in loaded.kinds.items():
            value = row.get(name)
            if kind != "str" and (type(value) is float or type(value) is int):
                continue  # a number for a numeric input: nothing to check (the common case)
            problem = _check_feature(loaded, name, value)
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
        xt = loaded.scorer.transform(inputs)
        pd_values = loaded.scorer.pd(xt)
        bad = [i for i in range(len(rows)) if not np.isfinite(pd_values[i])]
        if bad:
            raise RawApplicationError([unscorable(i) for i in bad])
        results = loaded.scorer.score(inputs, ids, xt=xt, pd_values=pd_values)
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
        {
            "model_name": champion.name,
            "model_version": champion.version,
            "reason_method": loaded.reason_method,
            "results": results,
        }
    )


def _json(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = content if isinstance(content, bytes) else orjson.dumps(content)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _error(status: int, message: str, **extra: Any) -> Response:
    return _json({"detail": message, **extra}, status)
