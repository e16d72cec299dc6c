"""The alarms rendered from serverless.yml: every function and queue watched, dead-letter queues told apart.

GIVEN a serverless.yml, WHEN infra/monitoring.json is rendered from it, THEN each function has an errors and a
throttles alarm, each dead-letter queue (a redrive target or a function's on-failure destination) an alarm on its
first message, each work queue one on its oldest message's age, and every alarm notifies the alarm topic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devtools.monitoring import TOPIC, monitoring, queues, read_config, render

ROOT = Path(__file__).resolve().parents[2]

SMALL = """
service: demo
functions:
  resize-image:
    handler: functions/resize/handler.handler
    events:
      - sqs:
          arn: !GetAtt Jobs.Arn
  nightly:
    handler: functions/nightly/handler.handler
    destinations:
      onFailure:
        type: sqs
        arn: !GetAtt NightlyFailures.Arn
resources:
  - Resources:
      Table: ${file(infra/table.json)}
      Jobs:
        Type: AWS::SQS::Queue
        Properties:
          RedrivePolicy:
            deadLetterTargetArn: !GetAtt JobsDeadLetter.Arn
      JobsDeadLetter:
        Type: AWS::SQS::Queue
      NightlyFailures:
        Type: AWS::SQS::Queue
  - ${file(infra/roles.yml)}
"""


def alarms_of(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: res["Properties"] for name, res in template["Resources"].items() if res["Type"].endswith("::Alarm")}


def test_queues_are_told_apart_by_what_feeds_them(tmp_path: Path) -> None:
    path = tmp_path / "serverless.yml"
    path.write_text(SMALL)

    assert queues(read_config(path)) == (["Jobs"], ["JobsDeadLetter", "NightlyFailures"])


def test_every_function_and_queue_of_a_config_gets_its_alarms(tmp_path: Path) -> None:
    path = tmp_path / "serverless.yml"
    path.write_text(SMALL)

    alarms = alarms_of(monitoring(read_config(path)))

    # osls's logical ids: "resize-image" -> ResizeDashimageLambdaFunction
    assert alarms["ResizeDashimageErrorsAlarm"]["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": "ResizeDashimageLambdaFunction"}}
    ]
    assert {"NightlyErrorsAlarm", "NightlyThrottlesAlarm", "ResizeDashimageThrottlesAlarm"} <= set(alarms)
    for dead_letter in ("JobsDeadLetter", "NightlyFailures"):
        alarm = alarms[f"{dead_letter}MessagesAlarm"]
        assert (alarm["MetricName"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
            "ApproximateNumberOfMessagesVisible",
            0,
            "GreaterThanThreshold",
        )
    assert alarms["JobsAgeAlarm"]["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert all(alarm["AlarmActions"] == [TOPIC] == alarm["OKActions"] for alarm in alarms.values())


def test_the_projects_alarms_cover_its_functions_and_queues() -> None:
    template = json.loads(render())
    alarms = alarms_of(template)

    functions = read_config(ROOT / "serverless.yml")["functions"]
    assert len([a for a in alarms.values() if a.get("Namespace") == "AWS/Lambda"]) == 2 * len(functions)
    assert {"SaveDeadLetterQueueMessagesAlarm", "PurgeFailuresQueueMessagesAlarm", "SaveQueueAgeAlarm"} <= set(alarms)
    # The save failures of every reason, of this stage only
    (query,) = alarms["SaveFailuresAlarm"]["Metrics"]
    assert query["Expression"] == (
        "SELECT SUM(SaveFailures) FROM SCHEMA(VideoLibrary, reason, service) "
        "WHERE service = '${self:service}-${sls:stage}'"
    )
    body = json.loads(template["Resources"]["ServiceDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"])
    assert len(body["widgets"][0]["properties"]["alarms"]) == len(alarms)


def test_a_variable_fn_sub_would_misread_stops_the_rendering(tmp_path: Path) -> None:
    path = tmp_path / "serverless.yml"
    path.write_text(SMALL.replace("nightly:", "nightly${opt:x}:", 1))

    with pytest.raises(ValueError, match="unexpected variable"):
        render(path)
