"""The whole pipeline DAG under `dag.test()` (real moto over HTTP, real Spark on a warm session, a
real MLflow: the same path as `riskstream run`), then portfolios side by side in the same stack.

The synthetic portfolio first (a few hundred accounts, three model kinds), once for the module:
every step succeeds, the first model of a fresh registry is promoted and every account is scored.
While it runs, the same portfolio with the same params runs as a Step Functions execution of the
ASL with the step worker, on a prefix of its own and with Spark inside the steps themselves (no
warm session): the steps that ran, the order the ASL's edges ask for, and the outputs (catalog
tables, feature rows, the registered champion, every account's score and decision) must be the
same on both orchestrators. The failure path is compared over the small machine
(test_sfn_parity.py).

Then two flat applicant tables of this test's own making, each through the same DAG (the path of
`riskstream run --source csv`).

Table A: an unnamed id column, missing incomes, a 12-month performance window, protected columns,
a column empty in every row and one row whose label is not 0/1; named after its file. Table B:
coded categoricals, a 24-month performance window, named by its mapping's ``portfolio``.

For each table: every labelled row of the file (and only those) reaches training, the portfolio
gets its own champion, every applicant is scored; the synthetic portfolio's champion and scores
are untouched by both runs.

One synthetic run serves every test (module fixtures).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import modelkinds
from infra.provision import provision
from infra.services import ManagedService
from pipeline import sfn
from pipeline.asl import ASL_PATH, load_workflow
from pipeline.outputs import outputs
from pipeline.sfn_worker import worker_service
from riskstream import names
from riskstream.clients import make_client
from riskstream.settings import Settings
from riskstream.storage import split_s3
from tests.conftest import running_on_a_free_port, up_on_a_free_port
from tests.dags.conftest import REPO, run_dag_test

pytestmark = pytest.mark.e2e

OBS_DATE = "2024-01-01"
# Small tables cannot measure calibration to the production cap, and a first model of a fresh
# registry is what this test is about: the gates are loose enough that it becomes champion.
LOOSE_GATES = {"max_ece": 0.3, "min_ks": 0.05, "max_trials": 2, "models": "lr"}


def applicants_a(rows: int = 500, seed: int = 3) -> pd.DataFrame:
    """Table A; its first column has no name (written from a DataFrame index)."""
    rng = np.random.default_rng(seed)
    debt = rng.uniform(0, 1.2, rows).round(4)
    late = rng.poisson(0.6, rows)
    score = -2.2 + 2.0 * debt + 0.8 * late
    bad = (rng.uniform(size=rows) < 1 / (1 + np.exp(-score))).astype(int)
    income = rng.lognormal(10.5, 0.5, rows).round(0)
    income[rng.uniform(size=rows) < 0.15] = np.nan  # missing incomes
    frame = pd.DataFrame(
        {
            "bad": bad.astype(object),
            "income": income,
            "debt_ratio": debt,
            "late_30d_count": late,
            "housing": rng.choice(["rent", "own", "mortgage"], rows),
            "age": rng.integers(21, 75, rows),
            "sex": rng.choice(["F", "M"], rows),
            "religion": rng.choice(["r1", "r2", "r3"], rows),
            "branch_note": [None] * rows,  # empty in every row
        },
        index=[f"H{i:05d}" for i in range(rows)],
    )
    frame.loc["H00007", "bad"] = 2  # one bad row: a label that is neither 0 nor 1
    return frame


def applicants_b(rows: int = 400, seed: int = 5) -> pd.DataFrame:
    """Table B: German-credit-style coded categoricals."""
    rng = np.random.default_rng(seed)
    status = rng.choice(["A11", "A12", "A13", "A14"], rows, p=[0.3, 0.3, 0.1, 0.3])
    duration = rng.integers(6, 60, rows)
    risk = -1.5 + 0.03 * duration + np.where(status == "A11", 1.0, 0.0)
    default = (rng.uniform(size=rows) < 1 / (1 + np.exp(-risk))).astype(int)
    return pd.DataFrame(
        {
            "loan_id": [f"G{i:04d}" for i in range(rows)],
            "default": default,
            "checking_status": status,
            "purpose_code": rng.choice(["A40", "A41", "A42", "A43"], rows),
            "duration_months": duration,
            "amount": rng.integers(500, 15000, rows),
        }
    )


@pytest.fixture(scope="module")
def stack(
    mlflow_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Settings]:
    """Settings of this module's own (provisioned), served by a warm Spark session as `riskstream
    run` starts one: the runs' Spark jobs go to one JVM instead of a cold one per run. Airflow's
    metadata database (``airflow_home``, when this worker has none yet) migrates while the
    session starts. Without the session's warm-up jobs (test_session.py runs them): on a busy
    test machine they ran a minute past the first job's arrival, which waited for them."""
    from etl.session_process import session_service

    prefix = f"pf{uuid.uuid4().hex[:8]}"
    state = tmp_path_factory.mktemp("stack") / "state"
    provision(mlflow_settings.with_overrides(prefix=prefix, state_dir=state))

    def start(port: int) -> tuple[Settings, ManagedService]:
        settings = mlflow_settings.with_overrides(
            prefix=prefix, state_dir=state, spark_session_url=f"http://127.0.0.1:{port}"
        )
        service = session_service(settings, warm_up=False)
        service.up()
        return settings, service

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="spark-session") as pool:
        starting = pool.submit(up_on_a_free_port, start)
        try:
            request.getfixturevalue("airflow_home")
        finally:
            settings, service = starting.result()
    try:
        yield settings
    finally:
        service.down()


# the synthetic portfolio: the shortest run with a 6-month lookback and a 6-month window
# (names.synthetic_windows), three model kinds, each search bounded by its trial count (not by
# time), so that both orchestrators train the same models
SYNTHETIC = {
    "source": names.SOURCE_SYNTHETIC,
    "accounts": 300,
    "months": 12,
    "seed": 11,
    "models": "lr,rf,xgb",
    "max_trials": 2,
    # ~100 test accounts cannot measure calibration to the production cap of 0.05
    "max_ece": 0.25,
}


def _on_step_functions(base: Settings, state: Path) -> tuple[Settings, sfn.Outcome]:
    """The ASL as a Step Functions execution with the step worker, on fresh provisioned settings
    derived from ``base`` (no warm session: Spark runs in the steps): its settings and outcome."""

    def configure(port: int) -> tuple[Settings, ManagedService]:
        settings = base.with_overrides(
            prefix=f"ps{uuid.uuid4().hex[:8]}",
            state_dir=state,
            sfn_worker_url=f"http://127.0.0.1:{port}",
        )
        provision(settings)
        return settings, worker_service(settings)

    with running_on_a_free_port(configure) as (settings, _):
        sfn.enable_execution(settings)
        execution = sfn.start(settings, sfn.deploy(settings), SYNTHETIC)
        return settings, sfn.wait(settings, execution, timeout=1800, poll=2.0)


@pytest.fixture(scope="module")
def both_runs(
    stack: Settings,
    mlflow_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> dict[str, Any]:
    """The synthetic portfolio on both orchestrators at once (they share nothing but the
    servers), once for this module: Airflow's result, and Step Functions' settings and outcome.
    (``airflow_home`` is asked for here, not as an argument, so that pytest, which sets up
    session fixtures first, leaves it to ``stack`` to migrate it while Spark starts.)"""
    state = tmp_path_factory.mktemp("sfn") / "state"
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="step-functions") as pool:
        on_sfn = pool.submit(_on_step_functions, mlflow_settings, state)
        try:
            home = request.getfixturevalue("airflow_home")
            airflow = _run(home, stack, SYNTHETIC, "pipeline-e2e.log")
        finally:
            sfn_settings, outcome = on_sfn.result()
    return {"airflow": airflow, "sfn_settings": sfn_settings, "sfn": outcome}


@pytest.fixture(scope="module")
def synthetic_run(both_runs: dict[str, Any]) -> dict[str, Any]:
    """The pipeline's own DAG on the synthetic portfolio: its result."""
    return dict(both_runs["airflow"])


def _run(home: Path, settings: Settings, params: dict[str, Any], log: str) -> dict[str, Any]:
    path = REPO / "tests" / "artifacts" / log
    out = run_dag_test(home, settings, ASL_PATH, params, timeout=1500, log=path)
    failed = {t: s for t, s in out["states"].items() if s not in ("success", "skipped")}
    assert out["run"] == "success", f"{failed}; the whole output is in tests/artifacts/{log}"
    assert out["states"]["score_portfolio"] == "success"
    # the Spark jobs went to the stack's warm session (a job it refuses runs in the task instead)
    assert "on the warm Spark session at" in path.read_text(), f"see tests/artifacts/{log}"
    return out


def _champion(settings: Settings) -> Any:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    return client, client.get_model_version_by_alias(
        names.model_name(settings), names.CHAMPION_ALIAS
    )


def _scores(settings: Settings) -> dict[str, tuple[str, int]]:
    """Every scores object of the portfolio: key -> (ETag, size)."""
    s3 = make_client(settings, "s3")
    bucket, prefix = split_s3(names.scores_location(settings) + "/")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"]: (o["ETag"], o["Size"]) for o in listed}


def _check_portfolio(
    settings: Settings, file_rows: int, labelled: pd.Series, window: int
) -> dict[str, Any]:
    """The checks every table gets; returns the champion's feature document."""
    from serving.storage import read_features, read_scores, score_partitions

    features = read_features(settings, dt.date.fromisoformat(OBS_DATE)).to_pandas()
    assert set(features["source"]) == {settings.portfolio}
    # every labelled row of the file, with its label as in the file
    got = features.dropna(subset=["label"]).set_index("account_id")["label"].astype(int)
    assert got.sort_index().to_dict() == labelled.sort_index().to_dict()

    client, champion = _champion(settings)
    assert champion.tags[names.TAG_PORTFOLIO] == settings.portfolio
    assert champion.tags["performance_months"] == str(window)
    parent = champion.tags["parent_run_id"]
    split = json.loads(Path(client.download_artifacts(parent, "split/split.json")).read_text())
    assert split["train_rows"] + split["test_rows"] == len(labelled)  # only this portfolio's

    days = score_partitions(settings)
    assert len(days) == 1
    scored = read_scores(settings, days[0]).to_pandas()
    assert len(scored) == file_rows - 1  # every applicant but the rejected row
    assert scored["account_id"].is_unique
    assert set(scored["model_name"]) == {names.model_name(settings)}
    assert scored["pd"].between(0, 1).all()
    document = Path(client.download_artifacts(champion.run_id, names.FEATURES_ARTIFACT))
    return dict(json.loads(document.read_text()))


@pytest.mark.timeout(2400)
def test_pipeline_runs_end_to_end(stack: Settings, synthetic_run: dict[str, Any]) -> None:
    settings, out = stack.for_portfolio(names.SOURCE_SYNTHETIC), synthetic_run
    for task in (
        "produce_events",
        "land_events",
        "raw_to_curated",
        "curated_to_features",
        "start_training",
        "train_lr",
        "train_rf",
        "train_xgb",
        "evaluate_and_register",
        "promote_champion",  # the first model of a fresh registry is promoted
        "score_portfolio",
    ):
        assert out["states"][task] == "success", (task, out["states"])
    assert out["states"]["handle_failure"] == "skipped"

    s3 = make_client(settings, "s3")
    raw = s3.list_objects_v2(Bucket=settings.bucket("raw"), Prefix="events/")
    assert raw.get("KeyCount", 0) > 0
    bucket, prefix = split_s3(names.scores_location(settings) + "/")
    scores = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    assert any(o["Key"].endswith(".parquet") for o in scores.get("Contents", []))

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    champion = client.get_model_version_by_alias(settings.registered_model_name, "champion")
    assert champion.tags.get("model_type") in {"lr", "rf", "xgb"}
    assert "decision_reason" in champion.tags
    # the panel's windows, recorded with the model (tags and card)
    assert (champion.tags["lookback_months"], champion.tags["performance_months"]) == ("6", "6")


def _order_holds(times: dict[str, tuple[datetime, datetime]]) -> None:
    workflow = load_workflow()
    ids = {n: s.task_id for n, s in workflow.steps.items() if s.kind == "Task"}
    for a, b in workflow.edges:
        if ids.get(a) in times and ids.get(b) in times:
            assert times[ids[a]][1] <= times[ids[b]][0], (a, b)


def _naive(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=None)


@pytest.mark.timeout(2400)
def test_the_pipeline_is_the_same_on_airflow_and_step_functions(
    stack: Settings, both_runs: dict[str, Any]
) -> None:
    airflow, outcome = both_runs["airflow"], both_runs["sfn"]
    task_ids = {s.task_id for s in load_workflow().steps.values() if s.kind == "Task"}
    airflow_did = {
        state: {t for t, s in airflow["states"].items() if s == state and t in task_ids}
        for state in ("success", "skipped")
    }
    assert outcome.status == "SUCCEEDED", (outcome.error, outcome.cause)
    tasks = [r for r in outcome.runs.values() if r.type == "Task"]
    # the same steps ran; the model kinds not chosen were skipped on both (Airflow also skips
    # the failure handler, which Step Functions never enters)
    assert {r.task_id for r in tasks if r.status == "success"} == airflow_did["success"]
    chosen = set(modelkinds.parse_models(str(SYNTHETIC["models"])))
    skipped = {r.task_id for r in tasks if r.status == "skipped"}
    assert skipped == {f"train_{k}" for k in modelkinds.names() if k not in chosen}
    assert skipped <= airflow_did["skipped"]
    _order_holds({r.task_id: (r.entered, r.exited) for r in tasks if r.status == "success"})
    _order_holds(
        {
            t: (_naive(v[0]), _naive(v[1]))
            for t, v in airflow["times"].items()
            if airflow["states"][t] == "success"
        }
    )
    # the same outputs: tables, feature rows, champion (version and kind), every score
    synthetic = stack.for_portfolio(names.SOURCE_SYNTHETIC)
    expected: dict[str, Any] = outputs(synthetic)
    assert outputs(both_runs["sfn_settings"].for_portfolio(names.SOURCE_SYNTHETIC)) == expected
    version, kind = expected["registered"]
    assert version == "1" and kind in chosen  # the champion: the first version, a chosen kind


@pytest.mark.timeout(2400)
def test_two_applicant_tables_after_the_synthetic_portfolio(
    airflow_home: Path, stack: Settings, synthetic_run: dict[str, Any], tmp_path: Path
) -> None:
    synthetic = stack.for_portfolio(names.SOURCE_SYNTHETIC)
    assert synthetic_run["states"]["promote_champion"] == "success"
    _, before = _champion(synthetic)
    scores_before = _scores(synthetic)
    assert scores_before

    # Table A: named after its file; the id is the unnamed first column.
    table_a = applicants_a()
    path_a = tmp_path / "Home Equity Applicants.csv"
    table_a.to_csv(path_a)  # the index becomes a column with an empty header
    mapping_a = {
        "entity_id": "Unnamed: 0",
        "label": "bad",
        "observation_date": OBS_DATE,
        "performance_months": 12,
        "income": "income",
        "age": "age",
        "sex": "sex",
        "attributes": ["debt_ratio", "late_30d_count", "housing", "branch_note"],
        "protected": ["religion"],
    }
    csv = {"source": names.SOURCE_CSV, **LOOSE_GATES}

    def run_csv(name: str, table: Path, mapping: dict[str, Any]) -> None:
        """A pipeline run on ``table`` with ``mapping`` (saved as ``<name>.json``)."""
        mapping_path = tmp_path / f"{name}.json"
        mapping_path.write_text(json.dumps(mapping))
        params = {**csv, "csv_path": str(table), "csv_mapping": str(mapping_path)}
        _run(airflow_home, stack, params, f"portfolios-{name}.log")

    run_csv("a", path_a, mapping_a)
    a = stack.for_portfolio("home-equity-applicants")
    good_a = table_a[table_a["bad"].isin([0, 1])]
    document = _check_portfolio(a, len(table_a), good_a["bad"].astype(int), 12)
    inputs = set(document["features"])
    assert {"attr_debt_ratio", "attr_late_30d_count", "attr_housing", "income"} <= inputs
    assert not {"age", "sex", "attr_protected_religion"} & inputs
    assert "attr_branch_note" not in inputs
    assert document["portfolio"] == a.portfolio

    # Table B: named by its mapping; a 24-month window.
    table_b = applicants_b()
    table_b.loc[len(table_b)] = ["G9999", 7, "A11", "A40", 12, 1000]  # its bad row
    path_b = tmp_path / "german.csv"
    table_b.to_csv(path_b, index=False)
    mapping_b = {
        "portfolio": "coded-book",
        "entity_id": "loan_id",
        "label": "default",
        "observation_date": OBS_DATE,
        "performance_months": 24,
        "attributes": ["checking_status", "purpose_code", "duration_months", "amount"],
    }
    run_csv("b", path_b, mapping_b)
    b = stack.for_portfolio("coded-book")
    good_b = table_b[table_b["default"].isin([0, 1])].set_index("loan_id")["default"]
    _check_portfolio(b, len(table_b), good_b.astype(int), 24)

    # The synthetic portfolio: same champion, same scores objects, byte for byte.
    _, after = _champion(synthetic)
    assert (after.version, after.run_id) == (before.version, before.run_id)
    assert _scores(synthetic) == scores_before
    # three registered models, one per portfolio, each with its own champion
    assert len({names.model_name(s) for s in (synthetic, a, b)}) == 3
