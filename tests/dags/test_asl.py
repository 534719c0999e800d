"""The state machine definition: valid ASL, and it loads into the local cloud's Step Functions."""

from __future__ import annotations

import copy
import json

import pytest

import modelkinds
from pipeline.asl import AslError, load_definition, load_workflow, task_id_for, validate
from pipeline.steps import STEPS
from riskstream.clients import make_client
from riskstream.settings import Settings

TRAIN_TASKS = [f"Train{name.upper()}" for name in modelkinds.names()]  # one per model kind
EXPECTED_TASKS = {
    "ProduceEvents",
    "LandEvents",
    "RawToCurated",
    "CuratedToFeatures",
    "StartTraining",
    *TRAIN_TASKS,
    "EvaluateAndRegister",
    "PromoteChampion",
    "ScorePortfolio",
    "HandleFailure",
}


@pytest.mark.unit
def test_pipeline_has_every_stage_with_retry_and_catch() -> None:
    workflow = load_workflow()
    tasks = {name for name, step in workflow.steps.items() if step.kind == "Task"}
    assert tasks == EXPECTED_TASKS
    for name in EXPECTED_TASKS - {"HandleFailure"}:
        step = workflow.steps[name]
        assert step.catch_to == "HandleFailure", name
        assert step.retry is not None and step.retry.max_attempts >= 1, name
        assert step.step in STEPS, name
    assert workflow.parallel_groups == {"TrainModels": TRAIN_TASKS}
    assert {"TrainLR", "TrainRF", "TrainXGB"} <= set(TRAIN_TASKS)
    assert ("HandleFailure", "PipelineFailed") in workflow.edges
    assert workflow.steps["PipelineFailed"].kind == "Fail"


@pytest.mark.unit
def test_every_step_names_a_real_function() -> None:
    for step in load_workflow().steps.values():
        if step.step:
            assert callable(STEPS[step.step]), step.step


@pytest.mark.unit
@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["States"]["LandEvents"].update(Next="Nowhere"), "'Nowhere' does not exist"),
        (lambda d: d.update(StartAt="Missing"), "StartAt 'Missing'"),
        (lambda d: d["States"]["ScorePortfolio"].pop("Resource"), "needs a Resource"),
        (lambda d: d["States"]["LandEvents"].pop("Next"), "needs Next or End"),
        (lambda d: d["States"]["LandEvents"].update(Type="Teleport"), "unknown Type"),
        (
            lambda d: d["States"]["LandEvents"]["Retry"][0].update(BackoffRate=0.5),
            "BackoffRate >= 1.0",
        ),
    ],
)
def test_invalid_definitions_name_the_state(mutate, message) -> None:  # type: ignore[no-untyped-def]
    definition = copy.deepcopy(load_definition())
    mutate(definition)
    with pytest.raises(AslError, match=message):
        validate(definition)


@pytest.mark.unit
def test_task_ids_are_airflow_friendly() -> None:
    assert task_id_for("PromoteChallenger?") == "promote_challenger"
    assert task_id_for("TrainXGB") == "train_xgb"
    assert task_id_for("RawToCurated") == "raw_to_curated"


@pytest.mark.integration
def test_definition_loads_into_step_functions(provisioned: Settings) -> None:
    sfn = make_client(provisioned, "stepfunctions")
    created = sfn.create_state_machine(
        name=f"{provisioned.prefix}-pipeline",
        definition=json.dumps(load_definition()),
        roleArn="arn:aws:iam::123456789012:role/riskstream-pipeline",
        type="STANDARD",
    )
    described = sfn.describe_state_machine(stateMachineArn=created["stateMachineArn"])
    assert described["status"] == "ACTIVE"
    assert json.loads(described["definition"])["StartAt"] == "ProduceEvents"
