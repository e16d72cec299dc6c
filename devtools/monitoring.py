"""Write ``infra/monitoring.json``: the service's CloudWatch alarms and dashboard, from ``serverless.yml``.

Every alarm notifies ``${param:alarmTopicArn}`` (an SNS topic, given at deploy time) when it fires and when it
clears. What is watched:

- every function: its errors (an invocation that raised or timed out) and its throttles;
- every queue: a dead-letter queue (the target of a redrive policy or of a function's on-failure destination)
  holding any message; a work queue whose oldest message has waited too long;
- the service: save failures above a rate, API 5xx above a share of requests, webhook calls refused (401) above
  a rate, a purge run that did not finish its work.

Functions and queues are read from serverless.yml, so a new one gets its alarms by ``make infra``; a test fails
when the committed file is stale, and ``make package`` fails when a function or queue has none.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
MONITORING_FILE = ROOT / "infra" / "monitoring.json"
SERVERLESS_YML = ROOT / "serverless.yml"

NAMESPACE = "VideoLibrary"  # serverless.yml: POWERTOOLS_METRICS_NAMESPACE
SERVICE = "${self:service}-${sls:stage}"  # serverless.yml: POWERTOOLS_SERVICE_NAME, the metrics' `service`
TOPIC = "${param:alarmTopicArn}"
FIVE_MINUTES = 300
ALARM_ARN_PREFIX = "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:"


class _TagKeepingLoader(yaml.SafeLoader):
    """Reads serverless.yml keeping CloudFormation tags as their long form (``!GetAtt Q.Arn`` -> Fn::GetAtt)."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_TagKeepingLoader.add_multi_constructor("!", _tag)


def read_config(path: Path = SERVERLESS_YML) -> dict[str, Any]:
    config: dict[str, Any] = yaml.load(path.read_text(), Loader=_TagKeepingLoader)  # noqa: S506 (SafeLoader)
    return config


def logical_function_id(name: str) -> str:
    """osls's logical id prefix of a function (``piapiWebhook`` -> ``PiapiWebhook``)."""
    return (name[:1].upper() + name[1:]).replace("-", "Dash").replace("_", "Underscore")


def inline_resources(config: dict[str, Any]) -> dict[str, Any]:
    """The resources written in serverless.yml itself (not the ``${file(...)}`` parts)."""
    parts = config.get("resources") or []
    merged: dict[str, Any] = {}
    for part in parts if isinstance(parts, list) else [parts]:
        if isinstance(part, dict):
            merged.update(part.get("Resources") or {})
    return merged


def _queue_of(arn: Any) -> str | None:
    if isinstance(arn, dict) and isinstance(arn.get("Fn::GetAtt"), list) and arn["Fn::GetAtt"][1:] == ["Arn"]:
        return str(arn["Fn::GetAtt"][0])
    return None


def queues(config: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The work queues and the dead-letter queues of serverless.yml, by logical id."""
    resources = inline_resources(config)
    all_queues = sorted(
        name for name, res in resources.items() if isinstance(res, dict) and res.get("Type") == "AWS::SQS::Queue"
    )
    dead_letter: set[str] = set()
    for name in all_queues:
        redrive = (resources[name].get("Properties") or {}).get("RedrivePolicy") or {}
        if (target := _queue_of(redrive.get("deadLetterTargetArn"))) is not None:
            dead_letter.add(target)
    for function in (config.get("functions") or {}).values():
        failure = ((function or {}).get("destinations") or {}).get("onFailure")
        if isinstance(failure, dict) and (target := _queue_of(failure.get("arn"))) is not None:
            dead_letter.add(target)
    return [q for q in all_queues if q not in dead_letter], [q for q in all_queues if q in dead_letter]


def _alarm(name: str, description: str, **properties: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": f"{SERVICE}-{name}",
            "AlarmDescription": description,
            "ActionsEnabled": True,
            "AlarmActions": [TOPIC],
            "OKActions": [TOPIC],
            "EvaluationPeriods": 1,
            "TreatMissingData": "notBreaching",
            **properties,
        },
    }


def _metric(namespace: str, metric: str, dimensions: dict[str, Any], stat: str, period: int) -> dict[str, Any]:
    return {
        "Namespace": namespace,
        "MetricName": metric,
        "Dimensions": [{"Name": key, "Value": value} for key, value in dimensions.items()],
        "Statistic": stat,
        "Period": period,
    }


def function_alarms(function: str) -> dict[str, Any]:
    logical = logical_function_id(function)
    dimensions = {"FunctionName": {"Ref": f"{logical}LambdaFunction"}}
    return {
        f"{logical}ErrorsAlarm": _alarm(
            f"{function}-errors",
            f"{function}: an invocation failed (raised, timed out or ran out of memory). See its log group.",
            **_metric("AWS/Lambda", "Errors", dimensions, "Sum", FIVE_MINUTES),
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
        ),
        f"{logical}ThrottlesAlarm": _alarm(
            f"{function}-throttles",
            f"{function}: invocations were throttled (reserved or account concurrency reached).",
            **_metric("AWS/Lambda", "Throttles", dimensions, "Sum", FIVE_MINUTES),
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
        ),
    }


def queue_alarms(work: list[str], dead_letter: list[str]) -> dict[str, Any]:
    alarms: dict[str, Any] = {}
    for queue in dead_letter:
        alarms[f"{queue}MessagesAlarm"] = _alarm(
            f"{queue}-not-empty",
            f"{queue} holds messages: work that failed on every attempt. Read them (the error is in each).",
            **_metric(
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                {"QueueName": {"Fn::GetAtt": [queue, "QueueName"]}},
                "Maximum",
                FIVE_MINUTES,
            ),
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
        )
    for queue in work:
        alarms[f"{queue}AgeAlarm"] = _alarm(
            f"{queue}-waiting",
            f"{queue}: its oldest message has waited longer than saveQueueAgeAlarmSeconds (workers stuck or too few).",
            **_metric(
                "AWS/SQS",
                "ApproximateAgeOfOldestMessage",
                {"QueueName": {"Fn::GetAtt": [queue, "QueueName"]}},
                "Maximum",
                FIVE_MINUTES,
            ),
            Threshold="${param:saveQueueAgeAlarmSeconds}",
            ComparisonOperator="GreaterThanThreshold",
        )
    return alarms


def service_alarms() -> dict[str, Any]:
    api = {"ApiId": {"Ref": "HttpApi"}}

    def api_metric(query_id: str, metric: str) -> dict[str, Any]:
        return {
            "Id": query_id,
            "ReturnData": False,
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/ApiGateway",
                    "MetricName": metric,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in api.items()],
                },
                "Period": FIVE_MINUTES,
                "Stat": "Sum",
            },
        }

    return {
        "SaveFailuresAlarm": _alarm(
            "save-failures",
            "Save attempts failed more than saveFailuresAlarmThreshold times in 15 minutes (any reason; the "
            "dashboard splits them by reason).",
            Metrics=[
                {
                    "Id": "failures",
                    # A CloudWatch Metrics Insights query (every reason at once), not SQL; no input reaches it.
                    "Expression": f"SELECT SUM(SaveFailures) FROM SCHEMA({NAMESPACE}, reason, service) "  # noqa: S608
                    f"WHERE service = '{SERVICE}'",
                    "Period": 900,
                    "ReturnData": True,
                }
            ],
            Threshold="${param:saveFailuresAlarmThreshold}",
            ComparisonOperator="GreaterThanThreshold",
        ),
        "Api5xxAlarm": _alarm(
            "api-5xx",
            "More than api5xxAlarmPercent % of the API's requests answered 5xx over 5 minutes (at least 20 requests).",
            Metrics=[
                api_metric("errors", "5xx"),
                api_metric("requests", "Count"),
                {
                    "Id": "share",
                    "Expression": "IF(requests >= 20, 100 * errors / requests, 0)",
                    "Label": "5xx, % of requests",
                    "ReturnData": True,
                },
            ],
            Threshold="${param:api5xxAlarmPercent}",
            ComparisonOperator="GreaterThanThreshold",
        ),
        "WebhooksRejectedAlarm": _alarm(
            "webhooks-rejected",
            "The webhook refused (401) more than webhookRejectedAlarmThreshold calls in 5 minutes: a wrong secret "
            "at PiAPI after a rotation, or someone probing the endpoint.",
            **_metric(NAMESPACE, "WebhooksRejected", {"service": SERVICE}, "Sum", FIVE_MINUTES),
            Threshold="${param:webhookRejectedAlarmThreshold}",
            ComparisonOperator="GreaterThanThreshold",
        ),
        "PurgeIncompleteAlarm": _alarm(
            "purge-incomplete",
            "A purge run ended with complete=false (out of time, or R2 refused deletes): expired previews are "
            "left for the next run. Once is a backlog; every day means the purge needs more memory or time.",
            **_metric(NAMESPACE, "PurgeRunsIncomplete", {"service": SERVICE}, "Maximum", 86400),
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        ),
    }


def _widget(x: int, y: int, title: str, metrics: list[Any], *, stat: str = "Sum", width: int = 12) -> dict[str, Any]:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": width,
        "height": 6,
        "properties": {
            "title": title,
            "region": "${AWS::Region}",
            "view": "timeSeries",
            "stacked": False,
            "stat": stat,
            "period": FIVE_MINUTES,
            "metrics": metrics,
        },
    }


def dashboard(functions: list[str], work: list[str], dead_letter: list[str], alarm_names: list[str]) -> dict[str, Any]:
    def service_metric(name: str) -> list[Any]:
        return [NAMESPACE, name, "service", SERVICE]

    def lambda_metric(metric: str, function: str, **options: Any) -> list[Any]:
        return ["AWS/Lambda", metric, "FunctionName", f"{SERVICE}-{function}", {"label": function, **options}]

    failures_by_reason = (
        f"SEARCH('{{{NAMESPACE},reason,service}} MetricName=\"SaveFailures\" service=\"{SERVICE}\"', 'Sum', 300)"
    )
    widgets = [
        {
            "type": "alarm",
            "x": 0,
            "y": 0,
            "width": 24,
            "height": 3,
            "properties": {
                "title": "Alarms",
                "alarms": [f"{ALARM_ARN_PREFIX}{name}" for name in alarm_names],
            },
        },
        _widget(
            0,
            3,
            "API requests and errors",
            [
                ["AWS/ApiGateway", "Count", "ApiId", "${HttpApi}", {"label": "requests"}],
                ["AWS/ApiGateway", "4xx", "ApiId", "${HttpApi}", {"label": "4xx"}],
                ["AWS/ApiGateway", "5xx", "ApiId", "${HttpApi}", {"label": "5xx"}],
            ],
        ),
        _widget(
            12,
            3,
            "API latency (ms)",
            [
                ["AWS/ApiGateway", "Latency", "ApiId", "${HttpApi}", {"stat": "p50", "label": "p50"}],
                ["AWS/ApiGateway", "Latency", "ApiId", "${HttpApi}", {"stat": "p99", "label": "p99"}],
                [
                    "AWS/ApiGateway",
                    "IntegrationLatency",
                    "ApiId",
                    "${HttpApi}",
                    {"stat": "p99", "label": "integration p99"},
                ],
            ],
            stat="p99",
        ),
        _widget(
            0,
            9,
            "Function errors and throttles",
            [lambda_metric("Errors", f) for f in functions]
            + [lambda_metric("Throttles", f, label=f"{f} throttles") for f in functions],
        ),
        _widget(12, 9, "Function duration p99 (ms)", [lambda_metric("Duration", f) for f in functions], stat="p99"),
        _widget(
            0,
            15,
            "Saves",
            [service_metric(name) for name in ("SavesQueued", "VideosSaved")]
            + [[{"expression": failures_by_reason, "id": "failures", "label": "failed:"}]],
        ),
        _widget(
            12,
            15,
            "Queues (messages waiting, oldest age in s)",
            [
                ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", f"${{{q}.QueueName}}"]
                for q in work + dead_letter
            ]
            + [
                ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", f"${{{q}.QueueName}}", {"yAxis": "right"}]
                for q in work
            ],
            stat="Maximum",
        ),
        _widget(
            0,
            21,
            "Generations and webhooks",
            [
                service_metric(name)
                for name in (
                    "VideosRequested",
                    "QuotaRefusals",
                    "WebhooksReceived",
                    "WebhooksRejected",
                    "VideosCompleted",
                    "VideosFailed",
                )
            ],
        ),
        _widget(
            12,
            21,
            "Purge and sweep",
            [
                service_metric(name)
                for name in (
                    "VideosPurged",
                    "VideosPurgeKept",
                    "VideosPurgeUnfinished",
                    "PurgeRunsIncomplete",
                    "SweepSavesRequeued",
                    "SweepSavesFailed",
                    "SweepDeletionsFinished",
                )
            ],
        ),
    ]
    return {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {
            "DashboardName": SERVICE,
            "DashboardBody": {"Fn::Sub": json.dumps({"widgets": widgets}, separators=(",", ":"))},
        },
    }


def monitoring(config: dict[str, Any]) -> dict[str, Any]:
    functions = list(config.get("functions") or {})
    work, dead_letter = queues(config)
    alarms: dict[str, Any] = {}
    for function in functions:
        alarms.update(function_alarms(function))
    alarms.update(queue_alarms(work, dead_letter))
    alarms.update(service_alarms())
    alarm_names = [str(alarm["Properties"]["AlarmName"]) for alarm in alarms.values()]
    return {"Resources": {**alarms, "ServiceDashboard": dashboard(functions, work, dead_letter, alarm_names)}}


def render(path: Path = SERVERLESS_YML) -> str:
    text = json.dumps(monitoring(read_config(path)), indent=2) + "\n"
    # Fn::Sub would read any other ${...} as one of its own variables: only osls's and CloudFormation's may remain.
    for variable in re.findall(r"\$\{([^}]*)\}", text):
        if not re.fullmatch(r"(self|sls|param):[\w.]+|AWS::\w+|HttpApi|\w+\.QueueName", variable):
            raise ValueError(f"unexpected variable ${{{variable}}} in the monitoring template")
    return text


if __name__ == "__main__":
    MONITORING_FILE.write_text(render())
    print(f"wrote {MONITORING_FILE.relative_to(ROOT)}")
