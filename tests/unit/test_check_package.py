"""The package checks `make package` runs: each one fails on the mistake it is there to catch.

GIVEN a small package shaped like what osls writes (template, layer zip, function zip), WHEN one thing in it
is wrong, THEN check_package names that problem; the correct package passes.
"""

from __future__ import annotations

import copy
import json
import struct
import zipfile
from pathlib import Path
from typing import Any

import pytest

from devtools.check_package import Platform, check_package, elf_machine, wheel_tag_fits
from devtools.package_offline import PackagingError, ssm_parameter_names

ROOT = Path(__file__).resolve().parents[2]
TABLE_ARN = {"Fn::GetAtt": ["VideosTable", "Arn"]}


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


def function(name: str, handler: str) -> dict[str, Any]:
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
        },
    }


def log_group(name: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Logs::LogGroup",
        "Properties": {"LogGroupName": f"/aws/lambda/video-library-ci-{name}", "RetentionInDays": 30},
    }


def good_template() -> dict[str, Any]:
    return {
        "Resources": {
            "VideoLibraryLambdaLayer": {
                "Type": "AWS::Lambda::LayerVersion",
                "Properties": {
                    "Content": {"S3Bucket": "b", "S3Key": "serverless/x/ci/1/layer.zip"},
                    "CompatibleRuntimes": ["python3.12"],
                    "CompatibleArchitectures": ["arm64"],
                },
            },
            "PiapiWebhookLambdaFunction": function("piapiWebhook", "functions/piapi_webhook/handler.handler"),
            "SaveToLibraryLambdaFunction": function("saveToLibrary", "functions/save_to_library/handler.handler"),
            "PiapiWebhookLogGroup": log_group("piapiWebhook"),
            "SaveToLibraryLogGroup": log_group("saveToLibrary"),
            "VideosTable": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {"GlobalSecondaryIndexes": [{"IndexName": "by_task_id"}]},
            },
            "PurgeFailuresQueue": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "IamRoleLambdaExecution": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "Policies": [
                        {
                            "PolicyDocument": {
                                "Statement": [
                                    {
                                        "Effect": "Allow",
                                        "Action": ["dynamodb:GetItem", "dynamodb:Query"],
                                        "Resource": [
                                            TABLE_ARN,
                                            {"Fn::Join": ["/", [TABLE_ARN, "index", "by_task_id"]]},
                                        ],
                                    },
                                    {
                                        "Effect": "Allow",
                                        "Action": "sqs:SendMessage",
                                        "Resource": {"Fn::GetAtt": ["PurgeFailuresQueue", "Arn"]},
                                    },
                                    {
                                        "Effect": "Allow",
                                        "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                                        "Resource": ["*"],
                                    },
                                ]
                            }
                        }
                    ]
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
        with zipfile.ZipFile(directory / name, "w") as bundle:
            for path, content in files.items():
                bundle.writestr(path, content)
    return directory


def problems_with(tmp_path: Path, **changes: Any) -> str:
    return "\n".join(check_package(write_package(tmp_path / "pkg", **changes)))


def test_a_correct_package_passes(tmp_path: Path) -> None:
    assert check_package(write_package(tmp_path / "pkg")) == []


def test_a_missing_package_is_a_problem(tmp_path: Path) -> None:
    assert "missing" in "\n".join(check_package(tmp_path / "nothing"))


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


def test_functions_on_another_platform_than_the_layer_are_refused(tmp_path: Path) -> None:
    template = good_template()
    template["Resources"]["SaveToLibraryLambdaFunction"]["Properties"]["Architectures"] = ["x86_64"]

    assert "not one runtime and architecture" in problems_with(tmp_path, template=template)


def test_a_route_without_the_jwt_authorizer_is_refused(tmp_path: Path) -> None:
    template = good_template()
    del template["Resources"]["HttpApiRouteSave"]["Properties"]["AuthorizationType"]

    assert "route POST /api/video/save-to-library" in problems_with(tmp_path, template=template)


def statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    policy: list[dict[str, Any]] = template["Resources"]["IamRoleLambdaExecution"]["Properties"]["Policies"]
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
            {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "arn:aws:dynamodb:us-east-1:1:table/other"},
            "DynamoDB beyond",
        ),
        ({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:us-east-1:1:q"}, "SQS beyond"),
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


def test_the_ssm_parameters_of_serverless_yml_are_found() -> None:
    names = ssm_parameter_names((ROOT / "serverless.yml").read_text(), "ci")

    assert "/video-library/ci/piapi-webhook-secret" in names
    assert "/video-library/ci/r2-access-key-id" in names
    assert "/video-library/ci/r2-secret-access-key" in names
    assert all("${" not in name for name in names)


def test_an_ssm_parameter_that_cannot_be_worked_out_stops_the_package() -> None:
    config = "service: video-library\nx: ${ssm:/${self:service}/${param:other}/key}\n"

    with pytest.raises(PackagingError, match="cannot work out the SSM parameter"):
        ssm_parameter_names(config, "ci")
