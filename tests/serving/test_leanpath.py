"""The hot routes' lean path (serving.leanpath) answers exactly as the FastAPI routes do, and
the shortcuts of the compiled scorer equal the slower paths they replace. No server: the real
app over httpx's ASGI transport, with a small champion fitted here."""

from __future__ import annotations

import asyncio
import datetime as dt
from datetime import date, timedelta
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from benchmarks.fixtures import CATEGORICAL, NUMERIC, features_frame, fit_pipeline
from riskstream.settings import Settings
from serving.api import create_app
from serving.leanpath import account_id_of
from serving.online import OnlineStore
from serving.rawfeatures import build_rows
from serving.registry import Champion
from serving.routes import router
from serving.schema import MAX_BODY_BYTES
from serving.service import prepare
from tests.serving.conftest import application

pytestmark = pytest.mark.unit

OBS = dt.date(2025, 12, 31)
FRAME = features_frame(300, OBS, seed=11)
SCHEMA = [{"name": n, "type": "double"} for n in NUMERIC] + [
    {"name": n, "type": "string"} for n in CATEGORICAL
]


class _Store(OnlineStore):
    """The online table as an in-memory replica only (no cloud in a unit test)."""

    def __init__(self, rows: dict[str, dict[str, Any]]) -> None:
        super().__init__(Settings(), client=object())
        self.replica = rows
        self.live_checked_at = float("inf")  # no live scorer: never asked

    def sync(self) -> bool:
        return False

    def fetch(self, account_id: str) -> dict[str, Any] | None:
        return None  # the replica holds every account


ROWS = FRAME.to_dict("records")
ONLINE = {str(r["account_id"]): {**application(r), "obs_date": OBS.isoformat()} for r in ROWS[:20]}


def _apps(kind: str = "lr", max_in_flight: int = 256) -> tuple[FastAPI, FastAPI]:
    """The API (lean path in front) and the same routes with FastAPI alone, one champion."""
    pipeline = fit_pipeline(kind, FRAME)
    loaded = prepare(Champion("t", "1", None, pipeline, {"threshold": "0.3"}, None, SCHEMA))
    app = create_app(Settings(), ttl=3600, max_in_flight=max_in_flight, online=_Store(ONLINE))
    app.state.holder.current = loaded
    plain = FastAPI()
    plain.include_router(router)
    plain.state.holder = app.state.holder
    plain.state.online = app.state.online
    plain.state.protected = app.state.protected
    return app, plain


def _call(app: FastAPI, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(call())


GOOD = application(ROWS[0])
BODIES: list[tuple[str, dict[str, Any]]] = [
    ("one", {"json": {"applications": [GOOD]}}),
    ("many", {"json": {"applications": [application(r) for r in ROWS[:40]]}}),
    ("bad type", {"json": {"applications": [dict(GOOD, age="forty")]}}),
    ("out of bounds", {"json": {"applications": [dict(GOOD, credit_limit=-5.0)]}}),
    ("unknown field", {"json": {"applications": [dict(GOOD, surprise=1)]}}),
    ("protected", {"json": {"applications": [dict(GOOD, sex="F")]}}),
    ("missing", {"json": {"applications": [{k: v for k, v in GOOD.items() if k != "age"}]}}),
    ("empty", {"json": {"applications": []}}),
    ("both forms", {"json": {"applications": [GOOD], "raw_applications": []}}),
    ("not json", {"content": b"{not json"}),
    ("a list", {"json": [1, 2]}),
    ("too big", {"content": b'{"applications": [' + b" " * (MAX_BODY_BYTES + 10) + b"]}"}),
]


@pytest.mark.parametrize(("name", "request_kwargs"), BODIES, ids=[b[0] for b in BODIES])
def test_lean_score_answers_as_the_fastapi_route(name: str, request_kwargs: dict) -> None:
    app, plain = _APPS
    lean = _call(app, "POST", "/score", **request_kwargs)
    full = _call(plain, "POST", "/score", **request_kwargs)
    assert (lean.status_code, lean.json()) == (full.status_code, full.json()), name
    assert lean.headers["content-type"] == full.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda a: a.pop("age"), "age", "Field required"),
        (lambda a: a.update(age="forty"), "age", "number"),
        (lambda a: a.update(age=7), "age", "greater than or equal to 18"),
        (lambda a: a.update(credit_limit=-5.0), "credit_limit", "greater than or equal to 0"),
        (lambda a: a.update(repayment_status_m1=12), "repayment_status_m1", "less than or equal"),
        (lambda a: a.update(education="x" * 500), "education", "at most 64 characters"),
        (lambda a: a.update(bill_amt_m1=None), "bill_amt_m1", "number"),
        (lambda a: a.update(surprise=1), "surprise", "Extra inputs are not permitted"),
        (lambda a: a.update(sex="F"), "sex", "protected attribute"),
    ],
)
def test_bad_input_gets_a_422_naming_the_field(mutate: Any, field: str, words: str) -> None:
    app, _ = _APPS
    bad = dict(GOOD)
    mutate(bad)
    response = _call(app, "POST", "/score", json={"applications": [bad]})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    named = [e for e in detail if e["loc"] == ["body", "applications", 0, field]]
    assert named, detail
    assert words in named[0]["msg"]


def test_lean_account_route_answers_as_the_fastapi_route() -> None:
    app, plain = _APPS
    known = next(iter(ONLINE))
    for path in (f"/accounts/{known}/score", "/accounts/nobody/score", "/accounts/x%2Fy/score"):
        lean, full = _call(app, "GET", path), _call(plain, "GET", path)
        assert (lean.status_code, lean.json()) == (full.status_code, full.json()), path
    answer = _call(app, "GET", f"/accounts/{known}/score").json()
    assert answer["account_id"] == known and answer["source"] == "batch"
    assert "nobody" in _call(app, "GET", "/accounts/nobody/score").json()["detail"]
    too_long = _call(app, "GET", "/accounts/" + "a" * 65 + "/score")  # FastAPI's own 422
    assert too_long.status_code == 422
    assert too_long.json()["detail"][0]["loc"] == ["path", "account_id"]


def test_account_ids_the_lean_path_takes() -> None:
    assert account_id_of("/accounts/acct-1/score") == "acct-1"
    assert account_id_of("/accounts//score") is None
    assert account_id_of("/accounts/a/b/score") is None
    assert account_id_of("/accounts/" + "a" * 65 + "/score") is None
    assert account_id_of("/accounts/acct-1") is None


def test_the_in_flight_limit_covers_the_lean_routes() -> None:
    app, _ = _apps(max_in_flight=0)
    assert _call(app, "POST", "/score", json={"applications": [GOOD]}).status_code == 503
    assert _call(app, "GET", f"/accounts/{next(iter(ONLINE))}/score").status_code == 503
    assert _call(app, "GET", "/health").status_code == 200


def test_without_a_champion_both_routes_answer_503_before_reading_the_body() -> None:
    app = create_app(Settings(), ttl=3600, online=_Store(ONLINE))  # nothing loaded
    huge = b'{"applications": [' + b" " * (MAX_BODY_BYTES + 10) + b"]}"
    assert _call(app, "POST", "/score", content=huge).status_code == 503
    account = _call(app, "GET", f"/accounts/{next(iter(ONLINE))}/score")
    assert account.status_code == 503 and "no champion loaded" in account.json()["detail"]


def test_the_openapi_document_still_describes_the_lean_routes() -> None:
    app, _ = _APPS
    paths = _call(app, "GET", "/openapi.json").json()["paths"]
    assert "requestBody" in paths["/score"]["post"]
    assert "/accounts/{account_id}/score" in paths


@pytest.mark.parametrize("kind", ["rf", "xgb"])
def test_tree_probabilities_of_a_few_rows_equal_the_model(kind: str) -> None:
    """The forest's rates and XGBoost's float32 leaf sum (with its sigmoid), from the leaves the
    agreement matrix reaches, equal the estimator's own probability bit for bit."""
    from serving.compiled import compile_pipeline
    from serving.scoring import base_estimator, split_pipeline

    pipeline = fit_pipeline(kind, FRAME)
    scorer = compile_pipeline(pipeline)
    pre, model = split_pipeline(pipeline)
    frame = features_frame(200, OBS, seed=12)
    xt = np.asarray(pre.transform(frame[NUMERIC + CATEGORICAL]), dtype=np.float64)
    xt[::7, 3] = np.nan  # missing values take each split's default side
    want = np.asarray(base_estimator(model).predict_proba(xt)[:, 1])
    if kind == "xgb":
        assert scorer.model.proba.__name__ == "predict"  # the leaf sum passed its probe
        want = want.astype(np.float32)
    few = np.concatenate([scorer.model.proba(xt[i : i + 3]) for i in range(0, len(xt), 3)])
    many = scorer.model.proba(xt)  # a batch: the estimator's own path
    if kind == "rf":
        from modelkinds.parts.forest import Forest

        want = Forest.of(base_estimator(model)).proba(xt)  # scikit-learn's order of sums
    assert np.array_equal(few, want)
    assert np.array_equal(many, want)


def test_one_application_alone_gets_the_same_features_as_in_a_batch() -> None:
    """One application's features are computed on float64 scalars, a batch's on arrays: the
    same values bit for bit, nulls in the same places."""
    rng = np.random.default_rng(0)
    ends = [date(2025, m, 1) - timedelta(days=1) for m in range(2, 13)] + [date(2025, 12, 31)]
    apps = []
    for _ in range(150):
        limit = float(rng.choice([0.0, 1000.0, 50000.0]))
        statements = [
            {
                "statement_date": end,
                "balance": float(rng.choice([0.0, -50.0, round(limit * rng.uniform(0, 1.2), 2)])),
                "minimum_due": float(rng.choice([0.0, 25.0, 100.0])),
                "repayment_status": None if rng.random() < 0.1 else int(rng.integers(-2, 4)),
                "credit_limit": None if rng.random() < 0.5 else float(rng.choice([0.0, 3e3])),
            }
            for end in ends[: int(rng.integers(0, 13))]
        ]
        payments = [
            {
                "date": end - timedelta(days=int(rng.integers(0, 20))),
                "amount": float(rng.uniform(0, 2e3)),
            }
            for end in ends
            if rng.random() < 0.7
        ]
        purchases = [
            {"date": end - timedelta(days=3), "amount": 40.0, "merchant_category": "grocery"}
            for end in ends
            if rng.random() < 0.3
        ]
        apps.append(
            {
                "opened_on": date(2020, 1, 5),
                "credit_limit": None if rng.random() < 0.3 else limit,
                "statements": statements,
                "payments": payments,
                "purchases": purchases,
                "obs_date": None if rng.random() < 0.5 else date(2026, 1, 1),
            }
        )
    batch = build_rows([dict(a) for a in apps], 12)
    for app, together in zip(apps, batch, strict=True):
        (alone,) = build_rows([dict(app)], 12)
        assert alone.keys() == together.keys()
        for name, value in alone.items():
            assert type(value) is type(together[name]), name
            assert value == together[name] or (value is None and together[name] is None), name


_APPS = _apps()
