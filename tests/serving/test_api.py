"""The scoring API in its own uvicorn process, against the session's real MLflow server."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from benchmarks.fixtures import (
    CATEGORICAL,
    NUMERIC,
    features_frame,
    fit_pipeline,
    register_champion,
)
from serving.batch import run_batch
from serving.online import META_KEY, latest_per_account, online_table, read_offline
from serving.schema import MAX_APPLICATIONS, MAX_BODY_BYTES
from serving.scoring import ScoringConfig
from serving.storage import read_scores
from serving.tasks import score as score_step
from tests.serving.conftest import OBS_DATE, ServingWorld, application

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(api_url: str) -> httpx.Client:
    with httpx.Client(base_url=api_url, timeout=30) as c:
        yield c


def test_health_and_model(client: httpx.Client, world: ServingWorld) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok"
    model = client.get("/model").json()
    assert model["name"] == world.settings.registered_model_name
    assert model["version"] == world.version
    assert model["model_type"] == "xgb"
    assert model["threshold"] == 0.3
    assert model["metrics"] == {"roc_auc": 0.81, "ks": 0.45}
    assert set(model["features"]) == set(NUMERIC + CATEGORICAL)
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_batch_and_api_agree_on_the_same_records(client: httpx.Client, world: ServingWorld) -> None:
    day = dt.date(2026, 2, 3)
    # the API explains XGBoost with exact TreeSHAP: the batch job's exact option is the reference
    run_batch(world.settings, day, config=ScoringConfig(exact_contributions=True))
    batch = read_scores(world.settings, day).to_pandas().set_index("account_id")
    frame = features_frame(300, OBS_DATE, seed=2)
    rows = [application(r) for r in frame.head(50).to_dict("records")]
    response = client.post("/score", json={"applications": rows})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == world.version
    assert len(body["results"]) == 50
    for result in body["results"]:
        expected = batch.loc[result["application_id"]]
        assert result["pd"] == pytest.approx(expected["pd"], rel=1e-9, abs=1e-12)
        assert result["score"] == expected["score"]
        assert result["risk_tier"] == expected["risk_tier"]
        assert result["decision"] == expected["decision"]
        names = [r["name"] for r in result["reasons"]]
        batch_names = [expected[f"reason_{i}"] for i in (1, 2, 3) if expected[f"reason_{i}"]]
        assert names == batch_names
        contributions = [r["contribution"] for r in result["reasons"]]
        assert contributions == sorted(contributions, reverse=True)
        assert all(c > 0 for c in contributions)
    # one application alone scores the same as inside a batch
    single = client.post("/score", json={"applications": rows[:1]}).json()["results"][0]
    assert single["pd"] == body["results"][0]["pd"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda a: a.pop("age"), "age"),
        (lambda a: a.update(age="forty"), "age"),
        (lambda a: a.update(age=7), "age"),
        (lambda a: a.update(credit_limit=-5.0), "credit_limit"),
        (lambda a: a.update(repayment_status_m1=12), "repayment_status_m1"),
        (lambda a: a.update(education="x" * 500), "education"),
        (lambda a: a.update(education=3), "education"),
        (lambda a: a.update(bill_amt_m1=None), "bill_amt_m1"),
        (lambda a: a.update(surprise=1), "surprise"),
    ],
)
def test_bad_fields_get_422_naming_the_field(client: httpx.Client, mutate: Any, field: str) -> None:
    app = application(features_frame(1, OBS_DATE, seed=5).to_dict("records")[0])
    mutate(app)
    response = client.post("/score", json={"applications": [app]})
    assert response.status_code == 422, response.text
    locs = [e["loc"] for e in response.json()["detail"]]
    assert ["body", "applications", 0, field] in locs


def test_payload_caps(client: httpx.Client) -> None:
    app = application(features_frame(1, OBS_DATE, seed=5).to_dict("records")[0])
    too_many = client.post("/score", json={"applications": [app] * (MAX_APPLICATIONS + 1)})
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["loc"] == ["body", "applications"]
    huge = client.post(
        "/score",
        content=b'{"applications": [' + b" " * (MAX_BODY_BYTES + 10) + b"]}",
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413
    assert client.post("/score", json={"applications": []}).status_code == 422
    assert client.post("/score", content=b"{not json").status_code == 422
    assert client.post("/score", json=[1, 2]).status_code == 422


def raw_application(row: dict[str, Any]) -> dict[str, Any]:
    """The raw facts whose features are ``row`` (features_frame's columns) at 2026-01-01:
    three month-end statements, a payment in each month, no purchase."""
    ends = {1: "2025-12-31", 2: "2025-11-30", 3: "2025-10-31"}

    def plain(value: Any) -> Any:
        return value.item() if isinstance(value, np.generic) else value

    return {
        "application_id": str(row["account_id"]),
        "opened_on": "2023-05-17",
        "credit_limit": plain(row["credit_limit"]),
        "age": plain(row["age"]),
        "education": row["education"],
        "marital_status": row["marital_status"],
        "statements": [
            {
                "statement_date": ends[k],
                "balance": plain(row[f"bill_amt_m{k}"]),
                "minimum_due": 0.0,
                "repayment_status": plain(row[f"repayment_status_m{k}"]),
            }
            for k in (3, 2, 1)
        ],
        "payments": [
            {"date": ends[k][:8] + "20", "amount": plain(row[f"pay_amt_m{k}"])} for k in (3, 2, 1)
        ],
    }


def test_raw_and_precomputed_forms_agree(client: httpx.Client) -> None:
    frame = features_frame(40, OBS_DATE, seed=7).to_dict("records")
    raw = client.post("/score", json={"raw_applications": [raw_application(r) for r in frame]})
    pre = client.post("/score", json={"applications": [application(r) for r in frame]})
    assert raw.status_code == 200, raw.text
    assert pre.status_code == 200, pre.text
    for got, want in zip(raw.json()["results"], pre.json()["results"], strict=True):
        assert got["application_id"] == want["application_id"]
        assert got["obs_date"] == "2026-01-01"  # the default: the month after the last statement
        assert got["pd"] == pytest.approx(want["pd"], rel=1e-9, abs=1e-12)
        assert (got["score"], got["decision"]) == (want["score"], want["decision"])
        assert [r["feature"] for r in got["reasons"]] == [r["feature"] for r in want["reasons"]]
    # the features a raw answer reports are a valid precomputed application with the same score
    reported = [
        dict(r["features"], application_id=r["application_id"]) for r in raw.json()["results"]
    ]
    again = client.post("/score", json={"applications": reported})
    assert again.status_code == 200, again.text
    assert [r["pd"] for r in again.json()["results"]] == [r["pd"] for r in raw.json()["results"]]


@pytest.mark.parametrize(
    ("mutate", "loc", "words"),
    [
        (lambda a: a.update(sex="F"), ["sex"], "protected attribute"),
        (lambda a: a.pop("opened_on"), ["opened_on"], "Field required"),
        (lambda a: a.update(opened_on="2026-03-01"), ["opened_on"], "not before"),
        (lambda a: a.update(obs_date="01/02/2026"), ["obs_date"], "date"),
        (lambda a: a.update(education="x" * 500), ["education"], "64 characters"),
        (lambda a: a["statements"][0].update(balance="lots"), ["statements", 0, "balance"], ""),
        (
            lambda a: a["statements"][1].update(repayment_status=12),
            ["statements", 1, "repayment_status"],
            "9",
        ),
        (lambda a: a["payments"][0].update(amount=-1), ["payments", 0, "amount"], "0"),
        (
            lambda a: a.update(
                purchases=[{"date": "2025-12-01", "amount": 5.0, "merchant_category": "x"}]
            ),
            ["purchases", 0, "merchant_category"],
            "grocery",
        ),
        (lambda a: a["payments"][0].pop("date"), ["payments", 0, "date"], "Field required"),
    ],
)
def test_bad_raw_fields_get_422_naming_the_field(
    client: httpx.Client, mutate: Any, loc: list[Any], words: str
) -> None:
    app = raw_application(features_frame(1, OBS_DATE, seed=5).to_dict("records")[0])
    mutate(app)
    response = client.post("/score", json={"raw_applications": [app]})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    named = [e for e in detail if e["loc"] == ["body", "raw_applications", 0, *loc]]
    assert named, detail
    assert words in named[0]["msg"]


def test_one_form_per_request(client: httpx.Client) -> None:
    row = features_frame(1, OBS_DATE, seed=5).to_dict("records")[0]
    both = {"applications": [application(row)], "raw_applications": [raw_application(row)]}
    response = client.post("/score", json=both)
    assert response.status_code == 422
    assert "exactly one" in response.json()["detail"][0]["msg"]


def _valid_value(spec: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "enum" in spec:
        return st.sampled_from(spec["enum"])
    if "const" in spec:
        return st.just(spec["const"])
    if spec.get("type") == "integer":
        return st.integers(int(spec.get("minimum", -(10**6))), int(spec.get("maximum", 10**6)))
    if spec.get("type") == "number":
        return st.floats(spec.get("minimum", -1e6), spec.get("maximum", 1e6), allow_nan=False)
    return st.text(min_size=1, max_size=10)


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 3.0, 30.0, -2.0, 1e9, 18.0]),  # integral floats: JSON integers too
    st.text(max_size=50),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _finite(value: Any) -> bool:
    """JSON has no NaN or Infinity: a body holding one is invalid whatever the schema says."""
    if isinstance(value, float):
        return bool(np.isfinite(value))
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


def _validator(spec: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A JSON Schema validator for one schema of the published document (its $refs resolved
    against the document, as OpenAPI 3.1 defines them); ``format: date`` is checked."""
    resource = Resource.from_contents(spec, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource("urn:openapi", resource)
    if "$ref" in schema:
        schema = {"$ref": "urn:openapi" + schema["$ref"]}
    return Draft202012Validator(
        schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def _schema_of(spec: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    return spec["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]


def _one(spec: dict[str, Any]) -> dict[str, Any]:
    """A field's non-null branch (``X | None`` is published as anyOf [X, null])."""
    branches = [b for b in spec.get("anyOf", [spec]) if b.get("type") != "null"]
    return branches[0]


DAYS_BEFORE = st.dates(dt.date(2015, 1, 1), dt.date(2023, 12, 31)).map(dt.date.isoformat)
DAYS_AFTER = st.dates(dt.date(2024, 1, 1), dt.date(2025, 12, 31)).map(dt.date.isoformat)


def _valid_event(spec: dict[str, Any], schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    fields = {}
    for name, prop in schema["properties"].items():
        one = _one(prop)
        if name in schema.get("required", []) or name == "repayment_status":
            fields[name] = DAYS_AFTER if one.get("format") == "date" else _valid_value(one)
    return st.fixed_dictionaries(fields)


def _raw_strategy(spec: dict[str, Any], raw_schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Valid raw applications: the account opened before every dated event, so the default
    observation date (the month after the last statement) always follows the opening."""
    props = raw_schema["properties"]
    fields: dict[str, Any] = {"opened_on": DAYS_BEFORE}
    for name in ("credit_limit", "income", "age", "education", "marital_status"):
        if name in props:
            fields[name] = _valid_value(_one(props[name]))
    for name in ("statements", "payments", "purchases"):
        item = _schema_of(spec, props[name]["items"])
        fields[name] = st.lists(_valid_event(spec, item), max_size=8)
    return st.fixed_dictionaries(fields)


def test_fuzz_over_the_openapi_schema_never_gives_5xx(client: httpx.Client) -> None:
    """Every published operation, fuzzed from the published schema: the API accepts a body
    exactly when the schema does (200 or 404 for an unknown account), never 5xx."""
    spec = client.get("/openapi.json").json()
    operations = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    assert operations == {
        ("/health", "get"),
        ("/model", "get"),
        ("/score", "post"),
        ("/accounts/{account_id}/score", "get"),
    }
    ref = spec["paths"]["/score"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    request_validator = _validator(spec, ref)
    feature_form, raw_form = (_schema_of(spec, f) for f in _schema_of(spec, ref)["oneOf"])
    app_schema = _schema_of(spec, feature_form["properties"]["applications"]["items"])
    raw_schema = _schema_of(spec, raw_form["properties"]["raw_applications"]["items"])
    props = {k: v for k, v in app_schema["properties"].items() if k in app_schema["required"]}
    assert set(props) == set(NUMERIC + CATEGORICAL)
    param = spec["paths"]["/accounts/{account_id}/score"]["get"]["parameters"][0]
    id_validator = _validator(spec, param["schema"])
    valid = st.fixed_dictionaries({k: _valid_value(v) for k, v in props.items()})
    mutation = st.sampled_from(["none", "drop", "junk", "above", "below", "extra", "body"])
    seen: dict[tuple[str, int], int] = {}

    def note(path: str, response: httpx.Response) -> None:
        key = (path, response.status_code)
        seen[key] = seen.get(key, 0) + 1
        assert response.status_code < 500, (path, response.text)

    @settings(
        max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(valid, mutation, st.sampled_from(sorted(props)), JUNK)
    def check_score(app: dict[str, Any], how: str, field: str, junk: Any) -> None:
        app = dict(app)
        target: Any = {"applications": [app]}
        if how == "drop":
            app.pop(field)
        elif how == "junk":
            app[field] = junk
        elif how in ("above", "below"):
            bound = props[field].get("maximum" if how == "above" else "minimum")
            if bound is None:
                app[field] = 10**30 if how == "above" else -(10**30)
            else:
                app[field] = bound + 1 if how == "above" else bound - 1
        elif how == "extra":
            app["not_a_feature"] = junk
        elif how == "body":
            target = junk
        body = json.dumps(target, allow_nan=True).encode()
        response = client.post("/score", content=body, headers={"content-type": "application/json"})
        note("/score", response)
        accepted_by_schema = _finite(target) and request_validator.is_valid(target)
        if accepted_by_schema:
            assert response.status_code == 200, (target, response.text)
            result = response.json()["results"][0]
            assert 0 <= result["pd"] <= 1 and 300 <= result["score"] <= 850
        else:
            assert response.status_code == 422, (target, response.text)

    raw_fields = sorted(raw_schema["properties"])
    raw_mutation = st.sampled_from(
        ["none", "drop", "junk", "extra", "protected", "event_junk", "event_drop", "both"]
    )

    @settings(
        max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(_raw_strategy(spec, raw_schema), raw_mutation, st.sampled_from(raw_fields), JUNK)
    def check_raw(app: dict[str, Any], how: str, field: str, junk: Any) -> None:
        app = dict(app)
        target: Any = {"raw_applications": [app]}
        events = [k for k in ("statements", "payments", "purchases") if app[k]]
        if how == "drop":
            app.pop(field, None)
        elif how == "junk":
            app[field] = junk
        elif how == "extra":
            app["not_a_fact"] = junk
        elif how == "protected":
            app["sex"] = "F"  # not an input of this champion: refused by name
        elif how in ("event_junk", "event_drop") and events:
            first = dict(app[events[0]][0])
            key = sorted(first)[len(field) % len(first)]
            if how == "event_junk":
                first[key] = junk
            else:
                first.pop(key)
            app[events[0]] = [first, *app[events[0]][1:]]
        elif how == "both":
            target["applications"] = []
        body = json.dumps(target, allow_nan=True).encode()
        response = client.post("/score", content=body, headers={"content-type": "application/json"})
        note("/score raw", response)
        if _finite(target) and request_validator.is_valid(target):
            assert response.status_code == 200, (target, response.text)
            result = response.json()["results"][0]
            assert 0 <= result["pd"] <= 1 and 300 <= result["score"] <= 850
        else:
            assert response.status_code == 422, (target, response.text)
            if how == "protected":
                assert "protected attribute" in response.text

    @settings(
        max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(st.one_of(st.text(max_size=40), st.text(min_size=129, max_size=200)))
    def check_account(account_id: str) -> None:
        response = client.get(f"/accounts/{quote(account_id, safe='')}/score")
        note("/accounts", response)
        if account_id in ("", ".", "..") or "/" in account_id:
            assert response.status_code == 404  # another path altogether: no such route
        elif id_validator.is_valid(account_id):
            assert response.status_code == 404 and repr(account_id) in response.json()["detail"]
        else:
            assert response.status_code == 422

    check_score()
    check_raw()
    check_account()
    for path in ("/health", "/model", "/openapi.json", "/docs"):
        note(path, client.get(path))
        assert seen[(path, 200)] == 1
    assert seen.get(("/score", 200), 0) > 0 and seen.get(("/score", 422), 0) > 0
    assert seen.get(("/score raw", 200), 0) > 0 and seen.get(("/score raw", 422), 0) > 0
    assert seen.get(("/accounts", 404), 0) > 0 and seen.get(("/accounts", 422), 0) > 0


def test_online_features_equal_the_offline_table_and_score_by_id(
    client: httpx.Client, world: ServingWorld
) -> None:
    from riskstream.clients import make_client

    settings_ = world.settings
    day = dt.date(2026, 2, 4)
    report = score_step(settings_, day)  # the pipeline's score step materializes the table
    offline = latest_per_account(read_offline(settings_)).set_index("account_id")
    assert report["online"]["accounts"] == len(offline) > 0
    dynamodb = make_client(settings_, "dynamodb")
    items: dict[str, dict[str, Any]] = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=online_table(settings_)):
        for item in page["Items"]:
            items[item["account_id"]["S"]] = item
    assert set(items) - {META_KEY} == set(offline.index)
    for account_id, row in offline.iterrows():
        online = json.loads(items[str(account_id)]["features"]["S"])
        assert items[str(account_id)]["obs_date"]["S"] == str(row["obs_date"])[:10]
        assert set(online) == set(row.index) - {"obs_date", "label"}
        for name, value in online.items():
            expected = row[name]
            if isinstance(expected, float) and np.isnan(expected):
                assert value is None, (account_id, name)
            else:
                assert value == (expected.item() if isinstance(expected, np.generic) else expected)
    # GET /accounts/{id}/score equals the batch job's row for that account
    batch = read_scores(settings_, day).to_pandas().set_index("account_id")
    for account_id in list(offline.index[:20]):
        response = client.get(f"/accounts/{account_id}/score")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["account_id"] == account_id
        assert body["pd"] == pytest.approx(batch.loc[account_id, "pd"], rel=1e-9, abs=1e-12)
        assert body["score"] == batch.loc[account_id, "score"]
        assert body["decision"] == batch.loc[account_id, "decision"]
    missing = client.get("/accounts/no-such-account-42/score")
    assert missing.status_code == 404
    assert "no-such-account-42" in missing.json()["detail"]


def test_new_champion_is_picked_up_without_restart(
    client: httpx.Client, world: ServingWorld
) -> None:
    settings_ = world.settings
    lr = fit_pipeline("lr", world.train)
    new_version = register_champion(settings_, lr, world.train, "lr", threshold=0.4)
    try:
        deadline = time.monotonic() + 60
        model = client.get("/model").json()
        while model["version"] != new_version and time.monotonic() < deadline:
            time.sleep(0.5)
            model = client.get("/model").json()
        assert model["version"] == new_version
        assert model["model_type"] == "lr"
        app = application(features_frame(1, OBS_DATE, seed=9).to_dict("records")[0])
        result = client.post("/score", json={"applications": [app]}).json()
        assert result["model_version"] == new_version
        frame = features_frame(1, OBS_DATE, seed=9)
        expected = lr.predict_proba(frame[lr.feature_names_in_])[:, 1][0]
        assert result["results"][0]["pd"] == pytest.approx(expected, rel=1e-9)
    finally:
        from mlflow import MlflowClient

        MlflowClient(settings_.mlflow_tracking_uri).set_registered_model_alias(
            settings_.registered_model_name, "champion", world.version
        )
