"""The package checks `make package` runs: each one fails on the mistake it is there to catch.

GIVEN a small package shaped like what osls writes (template, layer zip, function zip) and README tables that
describe it, WHEN one thing in it is wrong, THEN check_package names that problem; the correct package passes.
"""

from __future__ import annotations

import copy
import json
import struct
import zipfile
from pathlib import Path
from typing import Any

import pytest

from devtools.check_package import Documented, Manifest, Platform, check_package, elf_machine, wheel_tag_fits
from devtools.deploy_docs import DocsError
from devtools.package_offline import PackagingError, secret_names, ssm_parameter_names

ROOT = Path(__file__).resolve().parents[2]
TABLE_ARN = {"Fn::GetAtt": ["VideosTable", "Arn"]}
TOPIC = "arn:aws:sns:us-east-1:123456789012:alarms"
ORIGIN = "https://library.example.com"
CANARY = "placeholder-secret-0123456789abcdef"
MANIFEST = Manifest(
    service="video-library",
    stage="ci",
    version="1.2.3",
    params={
        "alarmTopicArn": TOPIC,
        "webOrigin": ORIGIN,
        "apiThrottleRate": "50",
        "apiThrottleBurst": "100",
        "generateThrottleRate": "5",
        "generateThrottleBurst": "10",
    },
    canaries=[CANARY],
)
ACCOUNT = "arn:${AWS::Partition}:{service}:${AWS::Region}:${AWS::AccountId}:"
ACCESS_LOG = {"requestId": "$context.requestId", "status": "$context.status", "sub": "$context.authorizer.claims.sub"}

# The README tables describing good_template(): what check_package holds the template to.
README = """
## Deploying

### Secrets in SSM

| SSM parameter (SecureString) | its name, in the environment | what |
|---|---|---|
| `/video-library/<stage>/piapi-webhook-secret` | `PIAPI_WEBHOOK_SECRET_PARAMETER` | the webhook secret |

### What each function may do

| function | DynamoDB | SQS | SSM parameters |
|---|---|---|---|
| `piapiWebhook` | `VideosTable`: `UpdateItem`; `VideosTable/by_task_id`: `Query` | — | `piapi-webhook-secret` |
| `saveToLibrary` | `VideosTable`: `GetItem` | `SaveQueue`: `SendMessage` | — |

#### Routes without the JWT authorizer

| route | authenticated by |
|---|---|
| `POST /webhooks/piapi` | a shared secret |

#### Throttling

| route | requests per second | burst |
|---|---|---|
| every route | `apiThrottleRate` | `apiThrottleBurst` |
| `POST /api/video/save-to-library` | `generateThrottleRate` | `generateThrottleBurst` |

### Alarms and dashboard

| alarm | fires when |
|---|---|
| `<Function>ErrorsAlarm` | errors |
| `<Function>ThrottlesAlarm` | throttles |
| `SaveQueueAgeAlarm` | waiting |
| `SaveDeadLetterQueueMessagesAlarm` | dead letters |

### Access logs

| field | variable |
|---|---|
| `requestId` | `$context.requestId` |
| `status` | `$context.status` |
| `sub` | `$context.authorizer.claims.sub` |
"""


def sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def parameter_arn(name: str) -> dict[str, str]:
    return sub(ACCOUNT.replace("{service}", "ssm") + f"parameter/video-library/ci/{name}")


def elf_header(machine: int) -> bytes:
    """The first bytes of a 64-bit little-endian ELF shared object for ``machine`` (183 aarch64, 62 x86_64)."""
    return b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + struct.pack("<HH", 3, machine) + b"\x00" * 44


def good_layer() -> dict[str, bytes]:
    return {
        "python/video_library/__init__.py": b'"""video_library"""\n',
        "python/pydantic_core/__init__.py": b"",
        "python/pydantic_core/_pydantic_core.cpython-312-aarch64-linux-gnu.so": elf_header(183),
        "python/pydantic_core-2.50.5.dist-info/WHEEL": b"Wheel-Version: 1.0\nTag: cp312-cp312-manylinux_2_17_aarch64\n",
        "python/six-1.17.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nTag: py2-none-any\nTag: py3-none-any\n",
    }


def good_functions() -> dict[str, bytes]:
    return {
        "functions/__init__.py": b"",
        "functions/piapi_webhook/__init__.py": b"",
        "functions/piapi_webhook/handler.py": b"def handler(event, context): ...\n",
        "functions/save_to_library/handler.py": b"def handler(event, context): ...\n",
    }


def function(name: str, handler: str, role: str, environment: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Code": {"S3Bucket": {"Ref": "ServerlessDeploymentBucket"}, "S3Key": "serverless/x/ci/1/service.zip"},
            "Handler": handler,
            "Runtime": "python3.12",
            "Architectures": ["arm64"],
            "FunctionName": f"video-library-ci-{name}",
            "TracingConfig": {"Mode": "Active"},
            "Layers": [{"Ref": "VideoLibraryLambdaLayer"}],
            "Role": {"Fn::GetAtt": [role, "Arn"]},
            "Environment": {"Variables": environment or {"POWERTOOLS_SERVICE_NAME": "video-library-ci"}},
        },
    }


def log_group(name: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Logs::LogGroup",
        "Properties": {"LogGroupName": f"/aws/lambda/video-library-ci-{name}", "RetentionInDays": 30},
    }


def role(function_name: str, *statements: dict[str, Any]) -> dict[str, Any]:
    own_logs = sub(ACCOUNT.replace("{service}", "logs") + f"log-group:/aws/lambda/video-library-ci-{function_name}:*")
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ]
            },
            "Policies": [
                {
                    "PolicyName": function_name,
                    "PolicyDocument": {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                                "Resource": "*",
                            },
                            {
                                "Effect": "Allow",
                                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                                "Resource": own_logs,
                            },
                            *statements,
                        ]
                    },
                }
            ],
        },
    }


def alarm(metric: str, namespace: str, dimension: str, value: Any, threshold: float = 0) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmActions": [TOPIC],
            "OKActions": [TOPIC],
            "Namespace": namespace,
            "MetricName": metric,
            "Dimensions": [{"Name": dimension, "Value": value}],
            "Threshold": threshold,
            "ComparisonOperator": "GreaterThanThreshold",
        },
    }


def function_alarms(logical: str) -> dict[str, Any]:
    target = {"Ref": f"{logical}LambdaFunction"}
    return {
        f"{logical}ErrorsAlarm": alarm("Errors", "AWS/Lambda", "FunctionName", target),
        f"{logical}ThrottlesAlarm": alarm("Throttles", "AWS/Lambda", "FunctionName", target),
    }


def good_template() -> dict[str, Any]:
    webhook_secret = parameter_arn("piapi-webhook-secret")
    return {
        "Resources": {
            "VideoLibraryLambdaLayer": {
                "Type": "AWS::Lambda::LayerVersion",
                "Properties": {
                    "Content": {"S3Bucket": "b", "S3Key": "serverless/x/ci/1/layer.zip"},
                    "CompatibleRuntimes": ["python3.12"],
                    "CompatibleArchitectures": ["arm64"],
                    "Description": "video_library 1.2.3 and its locked dependencies",
                },
            },
            "PiapiWebhookLambdaFunction": function(
                "piapiWebhook",
                "functions/piapi_webhook/handler.handler",
                "PiapiWebhookRole",
                {"PIAPI_WEBHOOK_SECRET_PARAMETER": "/video-library/ci/piapi-webhook-secret"},
            ),
            "SaveToLibraryLambdaFunction": function(
                "saveToLibrary", "functions/save_to_library/handler.handler", "SaveToLibraryRole"
            ),
            "PiapiWebhookLogGroup": log_group("piapiWebhook"),
            "SaveToLibraryLogGroup": log_group("saveToLibrary"),
            "VideosTable": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {"GlobalSecondaryIndexes": [{"IndexName": "by_task_id"}]},
            },
            "SaveQueue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["SaveDeadLetterQueue", "Arn"]}}
                },
            },
            "SaveDeadLetterQueue": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "PiapiWebhookRole": role(
                "piapiWebhook",
                {"Effect": "Allow", "Action": ["dynamodb:UpdateItem"], "Resource": TABLE_ARN},
                {
                    "Effect": "Allow",
                    "Action": "dynamodb:Query",
                    "Resource": [sub("${VideosTable.Arn}/index/by_task_id")],
                },
                {"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": [webhook_secret]},
                {
                    "Effect": "Allow",
                    "Action": "kms:Decrypt",
                    "Resource": sub(ACCOUNT.replace("{service}", "kms") + "key/*"),
                    "Condition": {
                        "StringEquals": {
                            "kms:ViaService": sub("ssm.${AWS::Region}.amazonaws.com"),
                            "kms:EncryptionContext:PARAMETER_ARN": [webhook_secret],
                        }
                    },
                },
            ),
            "SaveToLibraryRole": role(
                "saveToLibrary",
                {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": TABLE_ARN},
                {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": {"Fn::GetAtt": ["SaveQueue", "Arn"]}},
            ),
            **function_alarms("PiapiWebhook"),
            **function_alarms("SaveToLibrary"),
            "SaveQueueAgeAlarm": alarm(
                "ApproximateAgeOfOldestMessage",
                "AWS/SQS",
                "QueueName",
                {"Fn::GetAtt": ["SaveQueue", "QueueName"]},
                7200,
            ),
            "SaveDeadLetterQueueMessagesAlarm": alarm(
                "ApproximateNumberOfMessagesVisible",
                "AWS/SQS",
                "QueueName",
                {"Fn::GetAtt": ["SaveDeadLetterQueue", "QueueName"]},
            ),
            "ServiceDashboard": {"Type": "AWS::CloudWatch::Dashboard", "Properties": {"DashboardBody": "{}"}},
            "HttpApi": {
                "Type": "AWS::ApiGatewayV2::Api",
                "Properties": {"CorsConfiguration": {"AllowOrigins": [ORIGIN], "AllowHeaders": ["Authorization"]}},
            },
            "HttpApiStage": {
                "Type": "AWS::ApiGatewayV2::Stage",
                "DependsOn": ["HttpApiLogGroup", "HttpApiRouteSave"],
                "Properties": {
                    "DefaultRouteSettings": {"ThrottlingRateLimit": 50, "ThrottlingBurstLimit": 100},
                    "RouteSettings": {
                        "POST /api/video/save-to-library": {"ThrottlingRateLimit": 5, "ThrottlingBurstLimit": 10}
                    },
                    "AccessLogSettings": {"Format": json.dumps(ACCESS_LOG)},
                },
            },
            "HttpApiRouteWebhook": {
                "Type": "AWS::ApiGatewayV2::Route",
                "Properties": {"RouteKey": "POST /webhooks/piapi"},
            },
            "HttpApiRouteSave": {
                "Type": "AWS::ApiGatewayV2::Route",
                "Properties": {"RouteKey": "POST /api/video/save-to-library", "AuthorizationType": "JWT"},
            },
        }
    }


def write_package(
    directory: Path,
    template: dict[str, Any] | None = None,
    layer: dict[str, bytes] | None = None,
    functions: dict[str, bytes] | None = None,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cloudformation-template-update-stack.json").write_text(json.dumps(template or good_template()))
    for name, files in (("layer.zip", layer or good_layer()), ("service.zip", functions or good_functions())):
        with zipfile.ZipFile(directory / name, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
            for path, content in files.items():
                bundle.writestr(path, content)
    return directory


def problems_with(tmp_path: Path, *, readme: str = README, **changes: Any) -> str:
    package = write_package(tmp_path / "pkg", **changes)
    return "\n".join(check_package(package, MANIFEST, Documented.from_readme(readme)))


def test_a_correct_package_passes(tmp_path: Path) -> None:
    assert problems_with(tmp_path) == ""


def test_a_missing_package_is_a_problem(tmp_path: Path) -> None:
    assert "missing" in "\n".join(check_package(tmp_path / "nothing", MANIFEST, Documented.from_readme(README)))


def test_a_layer_built_for_this_machine_is_refused(tmp_path: Path) -> None:
    layer = good_layer()
    del layer["python/pydantic_core/_pydantic_core.cpython-312-aarch64-linux-gnu.so"]
    layer["python/pydantic_core/_pydantic_core.cpython-311-x86_64-linux-gnu.so"] = elf_header(62)
    layer["python/pydantic_core-2.50.5.dist-info/WHEEL"] = b"Tag: cp311-cp311-manylinux_2_17_x86_64\n"

    problems = problems_with(tmp_path, layer=layer)

    assert "_pydantic_core.cpython-312-aarch64-linux-gnu.so is missing" in problems
    assert "is built for x86_64, the functions run on aarch64" in problems
    assert "is for cpython-311-x86_64-linux-gnu, not cpython-312-aarch64-linux-gnu" in problems
    assert "pydantic_core-2.50.5.dist-info is a wheel for cp311-cp311-manylinux_2_17_x86_64" in problems


def test_a_binary_whose_name_fits_but_whose_code_does_not_is_refused(tmp_path: Path) -> None:
    layer = good_layer()
    layer["python/pydantic_core/_pydantic_core.cpython-312-aarch64-linux-gnu.so"] = elf_header(62)

    assert "is built for x86_64" in problems_with(tmp_path, layer=layer)


def test_bytecode_of_another_python_is_refused(tmp_path: Path) -> None:
    layer = good_layer() | {
        "python/video_library/__pycache__/__init__.cpython-312.pyc": b"",
        "python/six/__pycache__/six.cpython-311.pyc": b"",
    }

    problems = problems_with(tmp_path, layer=layer)

    assert "holds .pyc for cpython-311; python3.12 reads only cpython-312" in problems
    assert "cpython-312," not in problems


def test_layer_files_outside_python_and_dev_code_are_refused(tmp_path: Path) -> None:
    layer = good_layer() | {"video_library/__init__.py": b"", "python/tests/test_x.py": b""}

    problems = problems_with(tmp_path, layer=layer)

    assert "outside python/" in problems
    assert "python/tests/" in problems


def test_a_function_zip_with_more_than_handlers_is_refused(tmp_path: Path) -> None:
    functions = good_functions() | {"tests/unit/test_x.py": b"", ".venv/lib/x.py": b"", "functions/data.json": b"{}"}

    problems = problems_with(tmp_path, functions=functions)

    assert "3 files besides functions/**/*.py" in problems


def test_a_function_whose_handler_is_not_packaged_is_refused(tmp_path: Path) -> None:
    functions = good_functions()
    del functions["functions/save_to_library/handler.py"]

    assert "needs functions/save_to_library/handler.py" in problems_with(tmp_path, functions=functions)


def test_a_function_without_layer_tracing_or_log_retention_is_refused(tmp_path: Path) -> None:
    template = good_template()
    props = template["Resources"]["SaveToLibraryLambdaFunction"]["Properties"]
    props["Layers"] = []
    del props["TracingConfig"]
    del template["Resources"]["SaveToLibraryLogGroup"]["Properties"]["RetentionInDays"]

    problems = problems_with(tmp_path, template=template)

    assert "SaveToLibraryLambdaFunction: does not use the layer" in problems
    assert "SaveToLibraryLambdaFunction: X-Ray tracing is not active" in problems
    assert "SaveToLibraryLambdaFunction: its log group has no retention" in problems


def test_a_layer_of_another_version_is_refused(tmp_path: Path) -> None:
    template = good_template()
    template["Resources"]["VideoLibraryLambdaLayer"]["Properties"]["Description"] = "video_library 1.2.30"

    assert "does not name version 1.2.3" in problems_with(tmp_path, template=template)


def test_functions_on_another_platform_than_the_layer_are_refused(tmp_path: Path) -> None:
    template = good_template()
    template["Resources"]["SaveToLibraryLambdaFunction"]["Properties"]["Architectures"] = ["x86_64"]

    assert "not one runtime and architecture" in problems_with(tmp_path, template=template)


# --- routes, throttling, CORS, access logs --------------------------------------------------------------


def test_a_route_without_the_jwt_authorizer_is_refused(tmp_path: Path) -> None:
    template = good_template()
    del template["Resources"]["HttpApiRouteSave"]["Properties"]["AuthorizationType"]

    assert "route POST /api/video/save-to-library" in problems_with(tmp_path, template=template)


def test_a_public_route_the_readme_lists_must_exist(tmp_path: Path) -> None:
    readme = README.replace("| `POST /webhooks/piapi` | a shared secret |", "| `POST /webhooks/other` | a secret |")

    problems = problems_with(tmp_path, readme=readme)

    assert "README.md lists POST /webhooks/other as a route without the JWT authorizer" in problems
    assert "route POST /webhooks/piapi (HttpApiRouteWebhook) is not behind the JWT authorizer" in problems


def test_throttling_must_come_from_the_parameters_the_readme_names(tmp_path: Path) -> None:
    template = good_template()
    stage = template["Resources"]["HttpApiStage"]
    stage["Properties"]["DefaultRouteSettings"]["ThrottlingRateLimit"] = 10_000
    del stage["Properties"]["RouteSettings"]["POST /api/video/save-to-library"]["ThrottlingBurstLimit"]
    stage["DependsOn"] = ["HttpApiLogGroup"]

    problems = problems_with(tmp_path, template=template)

    assert "DefaultRouteSettings: ThrottlingRateLimit is 10000, parameter apiThrottleRate is 50" in problems
    assert "ThrottlingBurstLimit is None, parameter generateThrottleBurst is 10" in problems
    assert "the stage does not DependsOn HttpApiRouteSave" in problems


def test_a_route_throttled_without_the_readme_saying_so_is_a_problem(tmp_path: Path) -> None:
    template = good_template()
    settings = template["Resources"]["HttpApiStage"]["Properties"]["RouteSettings"]
    settings["POST /webhooks/piapi"] = {"ThrottlingRateLimit": 1, "ThrottlingBurstLimit": 1}

    assert "RouteSettings[POST /webhooks/piapi] is not in README.md's throttling table" in problems_with(
        tmp_path, template=template
    )


@pytest.mark.parametrize(
    "cors",
    [
        {"AllowOrigins": ["*"]},
        {"AllowOrigins": [ORIGIN, "https://elsewhere.example.com"]},
        {"AllowOrigins": [ORIGIN], "AllowHeaders": ["*"]},
        {},
    ],
)
def test_cors_is_only_for_the_pages_origin(tmp_path: Path, cors: dict[str, Any]) -> None:
    template = good_template()
    template["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"] = cors

    assert "CORS allows" in problems_with(tmp_path, template=template)


def test_the_access_log_has_the_fields_the_readme_lists(tmp_path: Path) -> None:
    template = good_template()
    fields = {"requestId": "$context.requestId", "status": "$context.integrationStatus", "ua": "$context.userAgent"}
    template["Resources"]["HttpApiStage"]["Properties"]["AccessLogSettings"]["Format"] = json.dumps(fields)

    problems = problems_with(tmp_path, template=template)

    assert "missing ['sub'], not documented ['ua'], other variable ['status']" in problems


# --- IAM ------------------------------------------------------------------------------------------------


def statements(template: dict[str, Any], role_name: str = "SaveToLibraryRole") -> list[dict[str, Any]]:
    policy: list[dict[str, Any]] = template["Resources"][role_name]["Properties"]["Policies"]
    statement_list: list[dict[str, Any]] = policy[0]["PolicyDocument"]["Statement"]
    return statement_list


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}, 'Resource "*"'),
        (
            {"Effect": "Allow", "Action": ["xray:PutTraceSegments", "ssm:GetParameter"], "Resource": ["*"]},
            'Resource "*"',
        ),
        ({"Effect": "Allow", "Action": "dynamodb:*", "Resource": TABLE_ARN}, "wildcard action dynamodb:*"),
        ({"Effect": "Allow", "NotAction": "iam:*", "Resource": TABLE_ARN}, "NotAction/NotResource"),
        (
            {
                "Effect": "Allow",
                "Action": "dynamodb:Query",
                "Resource": {"Fn::Join": ["/", [TABLE_ARN, "index", "*"]]},
            },
            "DynamoDB beyond this stack's tables and named indexes",
        ),
        (
            {"Effect": "Allow", "Action": "dynamodb:Query", "Resource": sub("${VideosTable.Arn}/index/by_nothing")},
            "DynamoDB beyond this stack's tables and named indexes",
        ),
        (
            {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "arn:aws:dynamodb:us-east-1:1:table/other"},
            "DynamoDB beyond",
        ),
        ({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:us-east-1:1:q"}, "SQS beyond"),
        (
            {
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": sub(ACCOUNT.replace("{service}", "kms") + "key/*"),
            },
            "the account's KMS keys, beyond kms:Decrypt through SSM",
        ),
    ],
)
def test_iam_beyond_least_privilege_is_refused(tmp_path: Path, statement: dict[str, Any], expected: str) -> None:
    template = good_template()
    statements(template).append(copy.deepcopy(statement))

    assert expected in problems_with(tmp_path, template=template)


def test_a_deny_with_a_wildcard_resource_is_fine(tmp_path: Path) -> None:
    template = good_template()
    statements(template).append({"Effect": "Deny", "Action": "dynamodb:DeleteTable", "Resource": "*"})

    assert problems_with(tmp_path, template=template) == ""


def test_a_role_must_allow_exactly_what_the_readme_says(tmp_path: Path) -> None:
    # GIVEN the save route's role lost its queue and gained DeleteItem
    template = good_template()
    role_statements = statements(template)
    role_statements.pop()  # sqs:SendMessage
    role_statements.append({"Effect": "Allow", "Action": "dynamodb:DeleteItem", "Resource": TABLE_ARN})

    problems = problems_with(tmp_path, template=template)

    assert "function saveToLibrary: README.md says it may, its role does not allow: sqs:SendMessage on SaveQueue" in (
        problems
    )
    assert "function saveToLibrary: its role allows more than README.md says: dynamodb:DeleteItem on VideosTable" in (
        problems
    )


def test_two_functions_sharing_a_role_is_refused(tmp_path: Path) -> None:
    template = good_template()
    template["Resources"]["SaveToLibraryLambdaFunction"]["Properties"]["Role"] = {
        "Fn::GetAtt": ["PiapiWebhookRole", "Arn"]
    }

    assert "function saveToLibrary: shares role PiapiWebhookRole" in problems_with(tmp_path, template=template)


def test_osls_shared_default_role_is_refused(tmp_path: Path) -> None:
    template = good_template()
    template["Resources"]["IamRoleLambdaExecution"] = role("shared")

    assert "IamRoleLambdaExecution (osls's role shared by functions) exists" in problems_with(
        tmp_path, template=template
    )


def test_a_role_without_its_own_log_group_managed_policies_or_trusting_others_is_refused(tmp_path: Path) -> None:
    template = good_template()
    props = template["Resources"]["SaveToLibraryRole"]["Properties"]
    del statements(template)[1]  # its log group
    props["ManagedPolicyArns"] = ["arn:aws:iam::aws:policy/AdministratorAccess"]
    props["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"] = [
        "lambda.amazonaws.com",
        "ec2.amazonaws.com",
    ]

    problems = problems_with(tmp_path, template=template)

    assert "role SaveToLibraryRole: cannot write its function's own log group" in problems
    assert "role SaveToLibraryRole: managed policies" in problems
    assert "may be assumed by ['ec2.amazonaws.com', 'lambda.amazonaws.com'], not only by Lambda" in problems


def test_decrypting_beyond_the_functions_own_parameters_is_refused(tmp_path: Path) -> None:
    template = good_template()
    kms = statements(template, "PiapiWebhookRole")[-1]
    kms["Condition"]["StringEquals"]["kms:EncryptionContext:PARAMETER_ARN"].append(
        parameter_arn("r2-secret-access-key")
    )

    problems = problems_with(tmp_path, template=template)

    assert "its role allows more than README.md says: kms:Decrypt on via-ssm:r2-secret-access-key" in problems


def test_a_function_the_readme_does_not_describe_is_refused(tmp_path: Path) -> None:
    readme = README.replace("| `saveToLibrary` | `VideosTable`: `GetItem` | `SaveQueue`: `SendMessage` | — |\n", "")

    assert "README.md's table of what each function may do has no row for it" in problems_with(tmp_path, readme=readme)


def test_a_readme_row_for_a_function_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    readme = README.replace(
        "| `saveToLibrary` |", "| `ghost` | `VideosTable`: `GetItem` | — | — |\n| `saveToLibrary` |"
    )

    assert "names ghost, which is not in the template" in problems_with(tmp_path, readme=readme)


# --- secrets --------------------------------------------------------------------------------------------


def test_a_secret_in_a_functions_environment_is_refused(tmp_path: Path) -> None:
    template = good_template()
    template["Resources"]["PiapiWebhookLambdaFunction"]["Properties"]["Environment"]["Variables"][
        "PIAPI_WEBHOOK_SECRET"
    ] = "anything"

    assert "function piapiWebhook: its environment carries the secret PIAPI_WEBHOOK_SECRET" in problems_with(
        tmp_path, template=template
    )


def test_an_environment_naming_parameters_the_role_may_not_read_is_refused(tmp_path: Path) -> None:
    template = good_template()
    template["Resources"]["SaveToLibraryLambdaFunction"]["Properties"]["Environment"]["Variables"] = {
        "PIAPI_WEBHOOK_SECRET_PARAMETER": "/video-library/prod/piapi-webhook-secret"
    }

    problems = problems_with(tmp_path, template=template)

    assert "expected '/video-library/ci/piapi-webhook-secret'" in problems
    assert "its environment names the parameters ['piapi-webhook-secret'], README.md lets it read []" in problems


def test_a_placeholder_secret_anywhere_in_the_output_is_refused(tmp_path: Path) -> None:
    template = good_template()
    template["Resources"]["SaveToLibraryLambdaFunction"]["Properties"]["Environment"]["Variables"]["X"] = CANARY
    functions = good_functions() | {"functions/leak.py": f"KEY = {CANARY!r}\n".encode()}

    problems = problems_with(tmp_path, template=template, functions=functions)

    assert "cloudformation-template-update-stack.json: holds a placeholder secret from SSM" in problems
    assert "service.zip:functions/leak.py: holds a placeholder secret from SSM" in problems
    assert CANARY not in problems


# --- alarms and concurrency -----------------------------------------------------------------------------


def test_every_function_and_queue_needs_its_alarms(tmp_path: Path) -> None:
    template = good_template()
    resources = template["Resources"]
    del resources["SaveToLibraryThrottlesAlarm"]
    del resources["SaveQueueAgeAlarm"]
    resources["SaveDeadLetterQueueMessagesAlarm"]["Properties"]["Threshold"] = 10

    problems = problems_with(tmp_path, template=template)

    assert "function SaveToLibraryLambdaFunction: no alarm on its Throttles" in problems
    assert "queue SaveQueue: no alarm watches it" in problems
    assert "queue SaveDeadLetterQueue: a dead-letter queue, but no alarm fires on its first message" in problems
    assert "README.md's alarms are not in the template: ['SaveQueueAgeAlarm', 'SaveToLibraryThrottlesAlarm']" in (
        problems
    )


def test_a_functions_on_failure_queue_is_a_dead_letter_queue(tmp_path: Path) -> None:
    template = good_template()
    resources = template["Resources"]
    resources["PurgeFailuresQueue"] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    resources["PurgeFailuresQueueAgeAlarm"] = alarm(
        "ApproximateAgeOfOldestMessage", "AWS/SQS", "QueueName", {"Fn::GetAtt": ["PurgeFailuresQueue", "QueueName"]}
    )
    resources["SaveToLibraryEvConf"] = {
        "Type": "AWS::Lambda::EventInvokeConfig",
        "Properties": {
            "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": ["PurgeFailuresQueue", "Arn"]}}}
        },
    }

    problems = problems_with(tmp_path, template=template)

    assert "queue PurgeFailuresQueue: a dead-letter queue, but no alarm fires on its first message" in problems
    assert "alarms not in README.md's table: ['PurgeFailuresQueueAgeAlarm']" in problems


def test_alarms_must_tell_the_alarm_topic(tmp_path: Path) -> None:
    template = good_template()
    template["Resources"]["SaveQueueAgeAlarm"]["Properties"]["AlarmActions"] = []

    assert "alarm SaveQueueAgeAlarm: does not notify the alarm topic" in problems_with(tmp_path, template=template)


def test_a_queue_fed_function_needs_reserved_concurrency_its_mapping_stays_within(tmp_path: Path) -> None:
    template = good_template()
    template["Resources"]["SaveToLibraryMapping"] = {
        "Type": "AWS::Lambda::EventSourceMapping",
        "Properties": {
            "FunctionName": {"Fn::GetAtt": ["SaveToLibraryLambdaFunction", "Arn"]},
            "ScalingConfig": {"MaximumConcurrency": 20},
        },
    }
    assert "fed by SaveToLibraryMapping but has no reserved concurrency" in problems_with(tmp_path, template=template)

    template["Resources"]["SaveToLibraryLambdaFunction"]["Properties"]["ReservedConcurrentExecutions"] = 10
    assert "MaximumConcurrency 20 is not within" in problems_with(tmp_path / "again", template=template)


def test_a_snapstart_function_must_be_reached_through_its_alias(tmp_path: Path) -> None:
    template = good_template()
    resources = template["Resources"]
    resources["SaveToLibraryLambdaFunction"]["Properties"]["SnapStart"] = {"ApplyOn": "PublishedVersions"}
    resources["SaveToLibraryLambdaFunction"]["Properties"]["Runtime"] = "python3.11"
    resources["HttpApiIntegrationSaveToLibrary"] = {
        "Type": "AWS::ApiGatewayV2::Integration",
        "Properties": {"IntegrationUri": {"Fn::GetAtt": ["SaveToLibraryLambdaFunction", "Arn"]}},
    }

    problems = problems_with(tmp_path, template=template)

    assert "SnapStart needs python3.12 or later, not python3.11" in problems
    assert "HttpApiIntegrationSaveToLibrary: calls SaveToLibraryLambdaFunction unqualified" in problems

    resources["SaveToLibraryLambdaFunction"]["Properties"]["Runtime"] = "python3.12"
    resources["HttpApiIntegrationSaveToLibrary"]["Properties"]["IntegrationUri"] = {
        "Fn::Join": [":", [{"Fn::GetAtt": ["SaveToLibraryLambdaFunction", "Arn"]}, "snapstart"]]
    }
    assert problems_with(tmp_path / "fixed", template=template) == ""


# --- the README's tables --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (README.replace("### Access logs", "### Something else"), "no heading 'Access logs'"),
        (README.replace("`VideosTable`: `GetItem` |", "`VideosTable` `GetItem` |"), "cannot read"),
        (README.replace("| every route |", "| all |"), "no row for 'every route'"),
    ],
)
def test_a_readme_the_checks_cannot_read_stops_them(broken: str, expected: str) -> None:
    with pytest.raises(DocsError, match=expected):
        Documented.from_readme(broken)


def test_the_projects_readme_can_be_read() -> None:
    documented = Documented.from_readme()

    assert set(documented.permissions) == {
        "piapiWebhook",
        "saveToLibrary",
        "saveWorker",
        "sweep",
        "purge",
        "libraryApi",
        "reconcile",
    }
    assert ("kms:Decrypt", "via-ssm:piapi-api-key") in documented.permissions["reconcile"]
    assert documented.public_routes == {"POST /webhooks/piapi"}


@pytest.mark.parametrize(
    ("tag", "fits"),
    [
        ("cp312-cp312-manylinux_2_17_aarch64", True),
        ("cp312-cp312-manylinux2014_aarch64", True),
        ("cp312-cp312-manylinux_2_28_aarch64", True),
        ("cp38-abi3-manylinux_2_17_aarch64", True),
        ("py3-none-any", True),
        ("py2-none-any", False),
        ("cp312-cp312-manylinux_2_17_x86_64", False),
        ("cp311-cp311-manylinux_2_17_aarch64", False),
        ("cp312-cp312-musllinux_1_2_aarch64", False),
        ("cp312-cp312-macosx_11_0_arm64", False),
        ("cp312-cp312-manylinux_2_39_aarch64", False),  # newer glibc than Amazon Linux 2023's 2.34
        ("cp313-abi3-manylinux_2_17_aarch64", False),
    ],
)
def test_wheel_tags_are_judged_for_python312_on_arm64(tag: str, fits: bool) -> None:
    assert wheel_tag_fits(tag, Platform("python3.12", "arm64")) is fits


def test_elf_machine_reads_the_header() -> None:
    assert elf_machine(elf_header(183)) == "aarch64"
    assert elf_machine(elf_header(62)) == "x86_64"
    assert elf_machine(b"MZ not an ELF file at all") is None


def test_serverless_yml_resolves_no_ssm_parameter_at_package_time() -> None:
    # Secrets are read at run time: a ${ssm:...} would put a value in the template.
    assert ssm_parameter_names((ROOT / "serverless.yml").read_text(), "ci") == []


def test_a_resolved_ssm_parameter_is_found_with_service_and_stage_filled_in() -> None:
    config = "service: video-library\nx: ${ssm:/${self:service}/${sls:stage}/some-key}\n"

    assert ssm_parameter_names(config, "ci") == ["/video-library/ci/some-key"]


def test_packaging_puts_every_readme_secret_in_ssm() -> None:
    names = secret_names((ROOT / "serverless.yml").read_text(), "ci")

    assert sorted(names) == [
        "/video-library/ci/piapi-api-key",
        "/video-library/ci/piapi-webhook-secret",
        "/video-library/ci/r2-access-key-id",
        "/video-library/ci/r2-secret-access-key",
    ]


def test_an_ssm_parameter_that_cannot_be_worked_out_stops_the_package() -> None:
    config = "service: video-library\nx: ${ssm:/${self:service}/${param:other}/key}\n"

    with pytest.raises(PackagingError, match="cannot work out the SSM parameter"):
        ssm_parameter_names(config, "ci")
