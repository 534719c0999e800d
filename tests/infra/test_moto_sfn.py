"""The durable cloud with Step Functions executing (infra/moto_sfn.py): a finished execution and
its history survive a clean stop; one still waiting for its worker comes back ABORTED after a
stop or a kill -9, and nothing runs it again."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from infra.cloud import cloud_service
from infra.moto_sfn import RESTART_ERROR
from infra.services import free_port
from riskstream.clients import make_client
from riskstream.settings import Settings
from tests.conftest import stop_the_cloud

pytestmark = pytest.mark.integration
ROLE = "arn:aws:iam::123456789012:role/riskstream-test"


def _machine(queue_url: str) -> str:
    return json.dumps(
        {
            "StartAt": "Wait",
            "States": {
                "Wait": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                    "Parameters": {
                        "QueueUrl": queue_url,
                        "MessageBody": {"token.$": "$$.Task.Token"},
                    },
                    "End": True,
                }
            },
        }
    )


def _message(settings: Settings, queue_url: str) -> dict[str, str]:
    sqs = make_client(settings, "sqs")
    for _ in range(100):
        found = sqs.receive_message(QueueUrl=queue_url).get("Messages", [])
        if found:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=found[0]["ReceiptHandle"])
            return dict(json.loads(found[0]["Body"]))
        time.sleep(0.1)
    raise AssertionError("the execution sent no message")


@pytest.mark.parametrize("how", ["cloud down", "kill -9"])
def test_executions_across_a_restart(tmp_path: Path, how: str) -> None:
    settings = Settings.from_mapping(
        {"RISKSTREAM_CLOUD_PORT": str(free_port()), "RISKSTREAM_STATE_DIR": str(tmp_path)}
    )
    service = cloud_service(settings)
    status = service.up()
    try:
        sfn = make_client(settings, "stepfunctions")
        queue = make_client(settings, "sqs").create_queue(QueueName="steps")["QueueUrl"]
        machine = sfn.create_state_machine(name="m", definition=_machine(queue), roleArn=ROLE)
        arn = machine["stateMachineArn"]
        done = sfn.start_execution(stateMachineArn=arn, name="done")["executionArn"]
        sfn.send_task_success(taskToken=_message(settings, queue)["token"], output='{"n": 1}')
        for _ in range(100):
            if sfn.describe_execution(executionArn=done)["status"] != "RUNNING":
                break
            time.sleep(0.1)
        waiting = sfn.start_execution(stateMachineArn=arn, name="waiting")["executionArn"]
        _message(settings, queue)
        stop_the_cloud(service, status.pid, how)
        service.up()
        sfn = make_client(settings, "stepfunctions")
        finished = sfn.describe_execution(executionArn=done)
        if how == "cloud down":  # the snapshot kept its record and history
            assert finished["status"] == "SUCCEEDED"
            assert json.loads(finished["output"]) == {"n": 1}
            events = sfn.get_execution_history(executionArn=done)["events"]
            assert events[-1]["type"] == "ExecutionSucceeded"
        else:  # only the log had it: recorded, never run again
            assert finished["status"] == "ABORTED"
        aborted = sfn.describe_execution(executionArn=waiting)
        assert (aborted["status"], aborted["error"]) == ("ABORTED", RESTART_ERROR)
        # nothing ran either execution again: no new step message
        sqs = make_client(settings, "sqs")
        time.sleep(1)
        assert sqs.receive_message(QueueUrl=queue).get("Messages", []) == []
    finally:
        service.down()
