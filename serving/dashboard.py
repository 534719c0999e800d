"""The analyst dashboard: Plotly charts served offline over views computed by DuckDB on the server.

Routes (all on 127.0.0.1):

- ``GET /`` the portfolio page, ``GET /account?id=...`` one account's page (see
  :mod:`serving.dashboard_page`); ``GET /static/plotly.min.js`` the plotly.js bundled with the
  plotly package (no CDN, nothing downloaded at run time);
- ``GET /api/meta`` the portfolio, its score dates, tiers and the views not computed yet;
- ``GET /api/views/{view}`` one view's aggregate rows (see :mod:`serving.views`) as JSON,
  ``/api/views/{view}.csv`` as CSV; filters ``tier`` (repeatable), ``date``, ``from``, ``to``,
  ``from_run`` (the migration from a replaced run of ``from``), ``id``;
- ``POST /api/sql`` ``{"query": "select ...", "max_rows": 100}``: read-only SQL on the warm
  connection (:mod:`serving.warehouse`), refused unless the caller is on the loopback interface;
- ``GET /api/models`` and ``GET /models/{version}/card``: registered versions, fairness reports
  and model cards (see :mod:`serving.modelview`); the champion's card is shown inline;
- ``GET /api/live`` the live scorer's lag per shard, events per second, champion and latest risk
  events (``{"running": false}`` when none answers); ``GET /api/live/account?id=...`` an
  account's live score from the online table (``{"live": null}`` when it has none);
- ``GET /api/summary`` the older one-shot summary of the last two partitions
  (:mod:`serving.portfolio`); ``GET /health`` answers the service manager.

Every response carries ``Server-Timing: app;dur=<ms>``, the server's own time, which the
benchmark reads. Run it with ``riskstream dashboard up`` (127.0.0.1:8050).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from riskstream.settings import Settings
from serving import modelview, portfolio, storage, views
from serving.dashboard_page import ACCOUNT_PAGE, MAIN_PAGE
from serving.live_status import read_status
from serving.online import OnlineStore
from serving.scoring import TIER_NAMES
from serving.sql import SqlError
from serving.warehouse import ReadOnlyError, Warehouse, to_csv

logger = logging.getLogger(__name__)

# the service binds 127.0.0.1; this check also holds if someone binds it wider
# ("testclient" is the peer name of an in-process test client)
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost", "testclient"})
MAX_SQL_ROWS = 10_000
CSV_SUFFIX = ".csv"  # GET /api/views/<view>.csv downloads the view as CSV


def load_summary(settings: Settings, lgd: float = 1.0) -> dict[str, Any] | None:
    """The older one-shot figures from S3, or None when no scoring run exists yet."""
    dates = storage.score_partitions(settings)
    if not dates:
        return None
    latest = storage.read_scores(settings, dates[-1]).to_pandas()
    previous = storage.read_scores(settings, dates[-2]).to_pandas() if len(dates) > 1 else None
    summary = portfolio.summary(
        latest,
        previous,
        storage.read_monitoring(settings),
        score_date=dates[-1].isoformat(),
        previous_date=dates[-2].isoformat() if len(dates) > 1 else None,
        lgd=lgd,
    )
    summary["portfolio"] = settings.portfolio  # every figure is this portfolio's only
    return summary


class NoScores(LookupError):
    """No scores table for the portfolio yet."""


@functools.lru_cache(maxsize=1)
def plotly_js() -> bytes:
    """plotly.js as shipped inside the installed plotly package."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().encode("utf-8")


def _replaced_runs(house: Warehouse) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for day, stamp, version, accounts in house.run(views.replaced_runs):
        out.setdefault(day, []).append(
            {"replaced_at": stamp, "model_version": version, "accounts": accounts}
        )
    return out


def _params(request: Request) -> dict[str, Any]:
    q = request.query_params
    tiers = [t for t in q.getlist("tier") if t]
    return {
        "tiers": tiers or None,
        "date": q.get("date") or None,
        "from": q.get("from") or None,
        "from_run": q.get("from_run") or None,
        "to": q.get("to") or None,
        "id": q.get("id") or None,
        "month": q.get("month") or None,
        "utilisation": q.get("utilisation") or None,
        "mob": q.get("mob") or None,
    }


def compute_view(
    warehouse: Warehouse, name: str, p: dict[str, Any], lgd: float = 1.0
) -> tuple[list[str], list[tuple[Any, ...]], dict[str, Any]]:
    """One view's columns and rows for the filters ``p``; also the filters as applied (the
    defaults filled in: the latest date, the previous one for a migration's ``from``)."""
    if name not in VIEWS:
        raise KeyError(name)
    if name == "drift":
        columns, rows = views.drift(warehouse.reports(), p["date"])
        return columns, rows, {"date": p["date"]}
    if not warehouse.has("scores"):
        raise NoScores("no scores yet: run `riskstream score` first")
    dates: list[str] = warehouse.run(views.score_dates)
    if not dates:
        raise NoScores("no scores yet: run `riskstream score` first")
    day = p["date"] or dates[-1]
    seg = views.Segment.of(p.get("utilisation"), p.get("mob"))
    scope = {"tiers": p["tiers"], "utilisation": p.get("utilisation"), "mob": p.get("mob")}
    applied: dict[str, Any] = {**scope, "date": day}
    if name == "overview":
        result = warehouse.run(views.overview, p["tiers"], p["from"], p["to"], lgd, seg)
        applied = {**scope, "from": p["from"], "to": p["to"]}
    elif name == "distribution":
        scale = warehouse.settings.score_scale
        result = warehouse.run(views.distribution, day, p["tiers"], scale, seg)
        _, spread = warehouse.run(views.score_range, day, p["tiers"], seg)
        applied["scale"] = [scale.min_score, scale.max_score]
        applied["score_range"] = list(spread[0][:3]) if spread and spread[0][3] else None
    elif name == "migration":
        to = p["to"] or day
        earlier = [d for d in dates if d < to]
        start = p["from"] or (earlier[-1] if earlier else to)
        runs = [r[1] for r in warehouse.run(views.replaced_runs) if r[0] == start]
        from_run = p.get("from_run")
        if from_run is None and start == to and runs:
            from_run = runs[0]  # one date against itself: its latest replaced run
        if from_run is not None and from_run not in runs:
            kept = ", ".join(runs) or "none (a rerun of the date keeps the run it replaces)"
            raise ValueError(f"no replaced run {from_run!r} of {start}; kept runs: {kept}")
        result = warehouse.run(views.migration, start, to, p["tiers"], seg, from_run)
        applied = {**scope, "from": start, "to": to, "from_run": from_run}
    elif name == "segments":
        result = warehouse.run(views.segments, day, p["tiers"], seg)
    elif name == "roll_rates":
        result = warehouse.run(views.roll_rates, day, p["tiers"], seg)
    elif name == "vintage":
        result = warehouse.run(views.vintage, p["tiers"], seg)
        applied = scope
    elif name == "delinquency":
        result = warehouse.run(views.delinquency, p["tiers"], seg)
        applied = scope
    elif name == "accounts":
        result = warehouse.run(views.accounts, day, p["tiers"], views.HIGH_RISK_ROWS, seg)
    elif name in ("spend", "spend_jumps"):
        tables, portfolio = list(warehouse.tables), warehouse.settings.portfolio
        if name == "spend":
            result = warehouse.run(views.spend, tables, portfolio, p["tiers"])
        else:
            result = warehouse.run(views.spend_jumps, tables, portfolio, p["month"], p["tiers"])
        applied = {"tiers": p["tiers"], "month": p["month"]}
    else:  # account, events
        if not p["id"]:
            raise ValueError(f"the {name} view needs id=<account_id>")
        if name == "events":
            result = warehouse.run(
                views.account_events, p["id"], list(warehouse.tables), warehouse.settings.portfolio
            )
        else:
            result = warehouse.run(views.account, p["id"])
        applied = {"id": p["id"]}
    return result[0], result[1], applied


VIEWS = (
    "overview",
    "distribution",
    "migration",
    "segments",
    "delinquency",
    "roll_rates",
    "vintage",
    "accounts",
    "spend",
    "spend_jumps",
    "account",
    "events",
    "drift",
)


def create_app(
    settings: Settings,
    cache_seconds: float = 30.0,
    lgd: float = 1.0,
    warehouse: Warehouse | None = None,
    live_status: Callable[[], dict[str, Any] | None] | None = None,
    live_score: Callable[[str], dict[str, Any] | None] | None = None,
) -> FastAPI:
    """``live_status`` and ``live_score`` default to the running live scorer's status endpoint
    and the online table's live items; tests hand in their own."""
    app = FastAPI(title="riskstream dashboard", docs_url=None, redoc_url=None)
    lock = threading.Lock()
    cache: dict[str, Any] = {"at": 0.0, "value": None}
    house = warehouse or Warehouse(settings, check_seconds=min(cache_seconds, 2.0))
    app.state.warehouse = house

    @app.middleware("http")
    async def server_timing(request: Request, call_next: Callable[..., Any]) -> Response:
        start = time.perf_counter()
        response: Response = await call_next(request)
        response.headers["Server-Timing"] = f"app;dur={1000 * (time.perf_counter() - start):.2f}"
        return response

    def cached() -> dict[str, Any] | None:
        with lock:
            if cache["value"] is None or time.monotonic() - cache["at"] > cache_seconds:
                cache["value"] = load_summary(settings, lgd)
                cache["at"] = time.monotonic()
            return cache["value"]  # type: ignore[no-any-return]

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    read_live_status = live_status or functools.partial(read_status, settings)
    online: list[OnlineStore] = []  # made on first use (a boto3 client)

    def read_live_score(account_id: str) -> dict[str, Any] | None:
        if live_score is not None:
            return live_score(account_id)
        if not online:
            online.append(OnlineStore(settings))
        return online[0].fetch_live(account_id)

    @app.get("/api/live")
    async def api_live() -> dict[str, Any]:
        status = await run_in_threadpool(read_live_status)
        if status is None:
            return {"running": False, "detail": "no live scorer answers (riskstream live up)"}
        return {
            "running": True,
            "lag_ms": status.get("lag_ms", {}),
            "events_per_second": status.get("events_per_second"),
            "champion_version": (status.get("model") or {}).get("version"),
            "risk_events": status.get("risk_events"),
            "recent_changes": status.get("recent_changes", []),
        }

    @app.get("/api/live/account", response_model=None)
    async def api_live_account(request: Request) -> Response:
        account_id = request.query_params.get("id")
        if not account_id:
            return JSONResponse(status_code=400, content={"detail": "give id=<account_id>"})
        try:
            found = await run_in_threadpool(read_live_score, account_id)
        except Exception as exc:  # no online table yet, or the cloud is down
            return JSONResponse(
                status_code=502, content={"detail": f"cannot read the live state: {exc}"}
            )
        return JSONResponse({"live": found})

    @app.get("/static/plotly.min.js")
    async def plotly_bundle() -> Response:
        return Response(
            await run_in_threadpool(plotly_js),
            media_type="application/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @app.get("/api/summary")
    async def api_summary() -> JSONResponse:
        try:
            value = await run_in_threadpool(cached)
        except Exception as exc:  # show the analyst what is wrong instead of a blank page
            logger.exception("cannot read the scores")
            return JSONResponse(
                status_code=502, content={"detail": f"cannot read the scores: {exc}"}
            )
        if value is None:
            return JSONResponse(
                status_code=404,
                content={"detail": "no scores yet: run `riskstream score` first"},
            )
        return JSONResponse(value)

    def meta() -> dict[str, Any]:
        dates = house.run(views.score_dates) if house.has("scores") else []
        model: dict[str, Any] = {}
        if dates:
            cols, rows = house.run(views.account_model, dates[-1])
            model = dict(zip(cols, rows[0], strict=True)) if rows else {}
        return {
            "portfolio": settings.portfolio,
            "score_dates": dates,
            # score date -> the runs reruns replaced, latest first (the migration's from_run)
            "replaced_runs": _replaced_runs(house) if dates else {},
            "tiers": list(TIER_NAMES),
            "segments": {
                "utilisation": [b for b, _ in views.UTILISATION_BANDS] + [views.UNKNOWN],
                "mob": [b for b, _ in views.MOB_BANDS] + [views.UNKNOWN],
            },
            "model": model,
            "views": list(VIEWS),
            "not_computed": views.NOT_COMPUTED,
        }

    @app.get("/api/meta")
    async def api_meta() -> JSONResponse:
        try:
            return JSONResponse(await run_in_threadpool(meta))
        except Exception as exc:
            logger.exception("cannot read the portfolio")
            return JSONResponse(
                status_code=502, content={"detail": f"cannot read the portfolio: {exc}"}
            )

    @app.get("/api/views/{name}", response_model=None)
    async def api_view(name: str, request: Request) -> Response:
        as_csv = name.endswith(CSV_SUFFIX)
        name = name.removesuffix(CSV_SUFFIX)
        p = _params(request)
        try:
            columns, rows, applied = await run_in_threadpool(compute_view, house, name, p, lgd)
        except KeyError:
            return JSONResponse(
                status_code=404,
                content={"detail": f"no view {name!r}; views: {', '.join(VIEWS)}"},
            )
        except NoScores as exc:
            return JSONResponse(status_code=404, content={"detail": str(exc)})
        except (ValueError, SqlError) as exc:
            return JSONResponse(status_code=400, content={"detail": str(exc)})
        except Exception as exc:
            logger.exception("view %s failed", name)
            return JSONResponse(
                status_code=502, content={"detail": f"cannot compute {name}: {exc}"}
            )
        if as_csv:
            return Response(
                to_csv(columns, rows),
                media_type="text/csv; charset=utf-8",
                headers={
                    "Content-Disposition": f'attachment; filename="{settings.portfolio}-{name}.csv"'
                },
            )
        return JSONResponse(
            {
                "view": name,
                "portfolio": settings.portfolio,
                "filters": applied,
                "columns": columns,
                "rows": [list(r) for r in rows],
            }
        )

    @app.post("/api/sql")
    async def api_sql(request: Request) -> JSONResponse:
        host = request.client.host if request.client else ""
        if host not in LOOPBACK:
            return JSONResponse(
                status_code=403, content={"detail": f"SQL is served to loopback only, not {host}"}
            )
        try:
            body = await request.json()
            query = str(body["query"])
            max_rows = min(int(body.get("max_rows") or MAX_SQL_ROWS), MAX_SQL_ROWS)
        except (ValueError, KeyError, TypeError):
            return JSONResponse(
                status_code=400,
                content={"detail": 'send JSON {"query": "select ...", "max_rows": 100}'},
            )
        start = time.perf_counter()
        try:
            columns, rows = await run_in_threadpool(house.query, query, max_rows + 1)
        except ReadOnlyError as exc:
            return JSONResponse(status_code=400, content={"detail": str(exc)})
        except SqlError as exc:
            return JSONResponse(status_code=400, content={"detail": str(exc)})
        except Exception as exc:
            logger.exception("SQL failed")
            return JSONResponse(status_code=502, content={"detail": f"SQL failed: {exc}"})
        return JSONResponse(
            {
                "columns": columns,
                "rows": [[views.plain(v) for v in r] for r in rows[:max_rows]],
                "truncated": len(rows) > max_rows,
                # the client checks it asked the dashboard of its own portfolio and catalog
                "portfolio": settings.portfolio,
                "database": settings.glue_database,
                "cloud": settings.endpoint_for("s3"),
                "ms": round(1000 * (time.perf_counter() - start), 3),
            }
        )

    models_cache: dict[str, Any] = {"at": 0.0, "value": None}

    def cached_models() -> list[dict[str, Any]]:
        with lock:
            fresh = time.monotonic() - models_cache["at"] <= cache_seconds
            if models_cache["value"] is None or not fresh:
                models_cache["value"] = modelview.registered_models(settings)
                models_cache["at"] = time.monotonic()
            return models_cache["value"]  # type: ignore[no-any-return]

    @app.get("/api/models")
    async def api_models() -> JSONResponse:
        try:
            value = await run_in_threadpool(cached_models)
        except Exception as exc:
            logger.exception("cannot read the model registry")
            return JSONResponse(
                status_code=502, content={"detail": f"cannot read the model registry: {exc}"}
            )
        return JSONResponse(value)

    @app.get("/models/{version}/card", response_class=PlainTextResponse)
    async def model_card(version: str) -> PlainTextResponse:
        try:
            text = await run_in_threadpool(modelview.model_card_text, settings, version)
        except modelview.ModelCardMissing as exc:
            return PlainTextResponse(str(exc), status_code=404)
        return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        try:
            section = modelview.models_html(await run_in_threadpool(cached_models))
        except Exception as exc:  # the portfolio figures still show when MLflow is down
            logger.warning("cannot read the model registry: %s", exc)
            section = modelview.models_html(None, error=str(exc))
        return MAIN_PAGE.replace("<!--MODELS-->", section)

    @app.get("/account", response_class=HTMLResponse)
    async def account_page() -> str:
        return ACCOUNT_PAGE

    return app


def app_from_env() -> FastAPI:
    """uvicorn factory (``serving.dashboard:app_from_env``): the entry point that reads settings."""
    import os

    from riskstream.logs import configure_logging

    configure_logging(os.environ.get("RISKSTREAM_LOG_LEVEL"))
    return create_app(Settings.from_env())
