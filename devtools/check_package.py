"""Check what ``osls package`` wrote in ``.serverless/`` before anything of it is deployed.

``python -m devtools.check_package [.serverless] [--manifest build/package-manifest.json]`` prints every problem
it finds and exits 1 if there is one. The manifest is what ``package_offline`` packaged with (stage, parameter
values, placeholder secrets); the expectations about the deploy come from README.md's tables
(``devtools.deploy_docs``), so the README and the template cannot say different things. What it checks, all
read from the generated CloudFormation template and the zips it names:

- the layer zip holds wheels for the Lambda platform, not this machine's: every compiled module is an ELF
  object for the functions' architecture, named for their Python (``cpython-312-aarch64-linux-gnu``), every
  wheel tag fits (manylinux for that architecture, glibc no newer than the runtime's), everything is under
  ``python/``, and ``video_library`` and pydantic-core's compiled core are there;
- each function zip holds only ``functions/**/*.py`` (no tests, no .venv, no layer code), its handler included;
- layer and functions together stay under Lambda's 250 MB unzipped limit;
- every function runs the layer's runtime and architecture, uses the layer, is traced, and has a log group
  with a retention; the layer's description names the project's version (pyproject.toml's);
- every HTTP API route is behind the JWT authorizer, except those README.md lists as public; throttling of
  every route and of the routes README.md names, from the parameters; CORS for the page's origin only; the
  access log's fields as README.md lists them;
- IAM: one role per function (assumable by Lambda only), allowing exactly what README.md's table says that
  function may do, plus its own log group and X-Ray; no ``Resource: "*"`` (except X-Ray's two actions, which
  have no resource-level permissions), no wildcard actions, no NotAction/NotResource, DynamoDB only on this
  template's tables and their named indexes, SQS only on its queues, KMS only to decrypt named parameters
  through SSM;
- secrets: no function's environment carries a secret, only the names of the SSM parameters its role may read,
  and no placeholder secret packaging put in SSM appears anywhere in the output;
- alarms: every function's errors and throttles, every queue (a dead-letter queue from its first message),
  exactly the alarms README.md lists, all notifying the alarm topic; a dashboard;
- a function fed by a queue has reserved concurrency that its event source mapping stays within;
- a function with SnapStart runs Python 3.12+ and its API integration calls a published version (an alias).
"""

from __future__ import annotations

import argparse
import json
import re
import struct
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools import deploy_docs

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_NAME = "cloudformation-template-update-stack.json"

# X-Ray's PutTraceSegments / PutTelemetryRecords support no resource-level permissions: AWS documents
# Resource "*" as the only form. osls adds exactly this statement for `provider.tracing.lambda: true`.
ACTIONS_WITHOUT_RESOURCES = frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"})
# What a function needs to write its own logs (the log group itself is a resource of the template).
LOG_ACTIONS = frozenset({"logs:CreateLogStream", "logs:PutLogEvents"})

# Lambda's limit on a function and all its layers, unzipped.
UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024

# ELF e_machine values, and the names Python and wheel tags give each Lambda architecture.
ELF_MACHINES = {62: "x86_64", 183: "aarch64"}
LAMBDA_ARCHITECTURES = {"x86_64": "x86_64", "arm64": "aarch64"}
# glibc of each Lambda Python runtime (python3.12 and later run on Amazon Linux 2023: glibc 2.34).
RUNTIME_GLIBC = {"3.12": (2, 34), "3.13": (2, 34), "3.14": (2, 34)}
LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


@dataclass(frozen=True)
class Platform:
    """What the functions run on: ``python3.12`` on ``arm64`` is Python (3, 12) on ``aarch64``."""

    runtime: str
    architecture: str

    @property
    def python(self) -> tuple[int, int]:
        found = re.fullmatch(r"python(\d+)\.(\d+)", self.runtime)
        if not found:
            raise ValueError(f"not a Python runtime: {self.runtime}")
        return int(found.group(1)), int(found.group(2))

    @property
    def machine(self) -> str:
        return LAMBDA_ARCHITECTURES[self.architecture]

    @property
    def extension_suffix(self) -> str:
        major, minor = self.python
        return f"cpython-{major}{minor}-{self.machine}-linux-gnu"


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template.get("Resources", {}).items() if res.get("Type") == kind}


def artifact(output_dir: Path, code: dict[str, Any]) -> Path:
    """The local zip behind a ``Code``/``Content`` property (osls uploads ``.serverless/<name>.zip``)."""
    return output_dir / str(code.get("S3Key", "")).rsplit("/", 1)[-1]


# --- the functions' platform --------------------------------------------------------------------------


def function_platform(template: dict[str, Any], problems: list[str]) -> Platform | None:
    functions = resources_of(template, "AWS::Lambda::Function")
    if not functions:
        problems.append("the template has no Lambda function")
        return None
    platforms = {
        name: Platform(str(props.get("Runtime")), (props.get("Architectures") or ["x86_64"])[0])
        for name, res in functions.items()
        for props in [res["Properties"]]
    }
    distinct = set(platforms.values())
    if len(distinct) != 1:
        listing = ", ".join(f"{name}: {p.runtime}/{p.architecture}" for name, p in sorted(platforms.items()))
        problems.append(f"the functions share one layer but not one runtime and architecture ({listing})")
        return None
    platform = distinct.pop()
    if not platform.runtime.startswith("python") or platform.architecture not in LAMBDA_ARCHITECTURES:
        problems.append(f"unexpected runtime/architecture {platform.runtime}/{platform.architecture}")
        return None
    return platform


# --- the layer ----------------------------------------------------------------------------------------


def elf_machine(header: bytes) -> str | None:
    """The architecture an ELF object is built for, None if ``header`` is not an ELF header."""
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    byte_order = "<" if header[5] == 1 else ">"
    (machine,) = struct.unpack_from(f"{byte_order}H", header, 18)
    return ELF_MACHINES.get(machine, f"e_machine {machine}")


def wheel_tag_fits(tag: str, platform: Platform) -> bool:
    """Whether one wheel tag (``cp312-cp312-manylinux_2_17_aarch64``) can run on the Lambda platform."""
    try:
        interpreter, abi, plat = tag.split("-")
    except ValueError:
        return False
    major, minor = platform.python
    if plat != "any":
        found = re.fullmatch(r"(manylinux(?:1|2010|2014)|manylinux_(\d+)_(\d+))_(\w+)", plat)
        if not found or found.group(4) != platform.machine:
            return False
        glibc = LEGACY_MANYLINUX.get(found.group(1)) or (int(found.group(2)), int(found.group(3)))
        if glibc > RUNTIME_GLIBC.get(f"{major}.{minor}", (2, 34)):
            return False
    interp = re.fullmatch(r"(py|cp)(\d)(\d*)", interpreter)
    if not interp or int(interp.group(2)) != major:
        return False
    interp_minor = int(interp.group(3)) if interp.group(3) else None
    if abi == "none":
        return interp.group(1) == "py" and (interp_minor is None or interp_minor <= minor)
    if abi == "abi3":
        return interp.group(1) == "cp" and (interp_minor or 0) <= minor
    return interp.group(1) == "cp" and abi == f"cp{major}{minor}" and interp_minor == minor


def check_layer_zip(path: Path, platform: Platform, problems: list[str]) -> int:
    """Problems of the layer zip; returns its unzipped size."""
    if not path.is_file():
        problems.append(f"layer zip {path.name} is missing from .serverless/")
        return 0
    with zipfile.ZipFile(path) as layer:
        infos = [info for info in layer.infolist() if not info.is_dir()]
        names = {info.filename for info in infos}
        outside = sorted(name for name in names if not name.startswith("python/"))
        if outside:
            problems.append(f"layer: {len(outside)} files outside python/, which Lambda never imports: {outside[:5]}")
        if "python/video_library/__init__.py" not in names:
            problems.append("layer: python/video_library/ is missing (make layer copies src/video_library)")
        for dev_only in ("devtools", "tests", "benchmarks", "functions"):
            if any(name.startswith(f"python/{dev_only}/") for name in names):
                problems.append(f"layer: holds python/{dev_only}/, which is not part of the layer")
        core = f"python/pydantic_core/_pydantic_core.{platform.extension_suffix}.so"
        if core not in names:
            found = sorted(name for name in names if name.startswith("python/pydantic_core/_pydantic_core."))
            problems.append(
                f"layer: {core} is missing (found {found or 'no compiled pydantic-core'}): the layer was not "
                f"built for {platform.runtime} on {platform.architecture} (make layer, LAMBDA_PLATFORM)"
            )
        for info in infos:
            name = info.filename
            if not (name.endswith(".so") or ".so." in name):
                continue
            machine = elf_machine(layer.read(info)[:20])
            if machine != platform.machine:
                problems.append(
                    f"layer: {name} is built for {machine or 'no known platform (not ELF)'}, "
                    f"the functions run on {platform.machine}"
                )
            tagged = re.search(r"\.(cpython-\d+-[\w-]+?)\.so$", name)
            if tagged and tagged.group(1) != platform.extension_suffix:
                problems.append(f"layer: {name} is for {tagged.group(1)}, not {platform.extension_suffix}")
        # Bytecode of another Python is never read, only shipped: it means the layer was compiled by the wrong one.
        cache_tag = "cpython-{}{}".format(*platform.python)
        foreign = sorted({m.group(1) for n in names if (m := re.search(r"\.(\w+-\d+)(?:\.opt-\d)?\.pyc$", n))})
        foreign = [tag for tag in foreign if tag != cache_tag]
        if foreign:
            problems.append(f"layer: holds .pyc for {', '.join(foreign)}; {platform.runtime} reads only {cache_tag}")
        for info in infos:
            if not info.filename.endswith(".dist-info/WHEEL"):
                continue
            lines = layer.read(info).decode().splitlines()
            tags = [line.split(":", 1)[1].strip() for line in lines if line.startswith("Tag:")]
            if not any(wheel_tag_fits(tag, platform) for tag in tags):
                dist = info.filename.split("/")[1]
                problems.append(
                    f"layer: {dist} is a wheel for {', '.join(tags) or 'no tag'}, "
                    f"not for {platform.runtime} on {platform.architecture}"
                )
        return sum(info.file_size for info in infos)


# --- the functions ------------------------------------------------------------------------------------


def check_function_zip(path: Path, handlers: list[str], problems: list[str]) -> int:
    """Problems of one function zip (shared by ``handlers``); returns its unzipped size."""
    if not path.is_file():
        problems.append(f"function zip {path.name} is missing from .serverless/")
        return 0
    with zipfile.ZipFile(path) as bundle:
        infos = [info for info in bundle.infolist() if not info.is_dir()]
    names = {info.filename for info in infos}
    strays = sorted(name for name in names if not (name.startswith("functions/") and name.endswith(".py")))
    if strays:
        problems.append(
            f"{path.name}: holds {len(strays)} files besides functions/**/*.py (package.patterns): {strays[:8]}"
        )
    for handler in handlers:
        module_file = handler.rsplit(".", 1)[0] + ".py"
        if module_file not in names:
            problems.append(f"{path.name}: the handler {handler} needs {module_file}, which is not in the zip")
    return sum(info.file_size for info in infos)


def check_functions(template: dict[str, Any], output_dir: Path, problems: list[str]) -> None:
    platform = function_platform(template, problems)
    functions = resources_of(template, "AWS::Lambda::Function")
    layers = resources_of(template, "AWS::Lambda::LayerVersion")
    log_groups = {
        res["Properties"].get("LogGroupName"): res["Properties"]
        for res in resources_of(template, "AWS::Logs::LogGroup").values()
    }
    if len(layers) != 1:
        problems.append(f"expected the one video_library layer, the template has {len(layers)} layers")
    layer_size = 0
    for layer_name, layer in layers.items():
        props = layer["Properties"]
        if platform is not None:
            if platform.runtime not in props.get("CompatibleRuntimes", []):
                problems.append(f"layer {layer_name}: CompatibleRuntimes lacks {platform.runtime}")
            if platform.architecture not in props.get("CompatibleArchitectures", []):
                problems.append(f"layer {layer_name}: CompatibleArchitectures lacks {platform.architecture}")
            layer_size = check_layer_zip(artifact(output_dir, props.get("Content", {})), platform, problems)

    zips: dict[Path, list[str]] = {}
    for name, res in sorted(functions.items()):
        props = res["Properties"]
        zips.setdefault(artifact(output_dir, props.get("Code", {})), []).append(str(props.get("Handler")))
        attached = props.get("Layers", [])
        for layer_name in layers:
            if {"Ref": layer_name} not in attached:
                problems.append(f"function {name}: does not use the layer {layer_name} (add it under `layers:`)")
        if (props.get("TracingConfig") or {}).get("Mode") != "Active":
            problems.append(f"function {name}: X-Ray tracing is not active (provider.tracing.lambda)")
        group = log_groups.get(f"/aws/lambda/{props.get('FunctionName')}")
        if group is None or not group.get("RetentionInDays"):
            problems.append(f"function {name}: its log group has no retention (provider.logRetentionInDays)")
    for path, handlers in sorted(zips.items()):
        size = layer_size + check_function_zip(path, handlers, problems)
        if size > UNZIPPED_LIMIT_BYTES:
            problems.append(f"{path.name} with the layer is {size / 2**20:.0f} MiB unzipped: Lambda allows 250 MiB")


# --- what the package was made from ------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    """What ``package_offline`` packaged with (``build/package-manifest.json``): the stage, every parameter's value
    (defaults and those passed), and the placeholder secrets it put in SSM, none of which may appear in the output."""

    service: str
    stage: str
    version: str
    params: dict[str, str]
    canaries: list[str]

    @classmethod
    def load(cls, path: Path) -> Manifest:
        data = json.loads(path.read_text())
        return cls(
            str(data["service"]), str(data["stage"]), str(data["version"]), dict(data["params"]), list(data["canaries"])
        )

    @property
    def secrets_prefix(self) -> str:
        return f"/{self.service}/{self.stage}/"

    @property
    def function_prefix(self) -> str:
        return f"{self.service}-{self.stage}-"


@dataclass(frozen=True)
class Documented:
    """What README.md says the deploy is (devtools.deploy_docs), held against the template."""

    permissions: dict[str, set[tuple[str, str]]]
    secrets: dict[str, str]
    alarms: list[str]
    access_log: dict[str, str]
    public_routes: set[str]
    throttling: dict[str, tuple[str, str]]

    @classmethod
    def from_readme(cls, text: str | None = None) -> Documented:
        return cls(
            permissions=deploy_docs.permissions(text),
            secrets=deploy_docs.secret_parameters(text),
            alarms=deploy_docs.alarms(text),
            access_log=deploy_docs.access_log_fields(text),
            public_routes=deploy_docs.public_routes(text),
            throttling=deploy_docs.throttling(text),
        )


def check_version(template: dict[str, Any], manifest: Manifest, problems: list[str]) -> None:
    """The layer says which version of video_library it is: pyproject.toml's (as openapi.json and CHANGELOG.md)."""
    for name, layer in resources_of(template, "AWS::Lambda::LayerVersion").items():
        description = str(layer["Properties"].get("Description", ""))
        if f"video_library {manifest.version} " not in f"{description} ":
            problems.append(f"layer {name}: its description {description!r} does not name version {manifest.version}")


# --- the API ------------------------------------------------------------------------------------------


def check_routes(template: dict[str, Any], documented: Documented, problems: list[str]) -> None:
    routes = {res["Properties"].get("RouteKey") for res in resources_of(template, "AWS::ApiGatewayV2::Route").values()}
    for name, res in sorted(resources_of(template, "AWS::ApiGatewayV2::Route").items()):
        props = res["Properties"]
        route = props.get("RouteKey")
        if props.get("AuthorizationType") != "JWT" and route not in documented.public_routes:
            problems.append(
                f"route {route} ({name}) is not behind the JWT authorizer (authorizer: name: jwt), and README.md "
                "does not list it among the routes without one"
            )
    for route in sorted(documented.public_routes - routes):
        problems.append(f"README.md lists {route} as a route without the JWT authorizer, but there is no such route")
    for name, res in resources_of(template, "AWS::ApiGatewayV2::Authorizer").items():
        jwt = res["Properties"].get("JwtConfiguration") or {}
        if not jwt.get("Issuer") or not any(jwt.get("Audience") or []):
            problems.append(f"authorizer {name}: the JWT issuer or audience is empty")


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def check_api_limits(template: dict[str, Any], manifest: Manifest, documented: Documented, problems: list[str]) -> None:
    """Throttling as README.md's table says, from the parameters; CORS for the page's origin only; access logs."""
    stages = resources_of(template, "AWS::ApiGatewayV2::Stage")
    if len(stages) != 1:
        problems.append(f"expected one HTTP API stage, the template has {len(stages)}")
        return
    stage_name, stage = next(iter(stages.items()))
    props = stage["Properties"]
    route_ids = {
        res["Properties"].get("RouteKey"): name
        for name, res in resources_of(template, "AWS::ApiGatewayV2::Route").items()
    }
    depends_on = set(_as_list(stage.get("DependsOn", [])))
    for route, (rate_param, burst_param) in sorted(documented.throttling.items()):
        if route == deploy_docs.EVERY_ROUTE:
            settings = props.get("DefaultRouteSettings") or {}
            where = f"stage {stage_name}: DefaultRouteSettings"
        else:
            settings = (props.get("RouteSettings") or {}).get(route) or {}
            where = f"stage {stage_name}: RouteSettings[{route}]"
            if route not in route_ids:
                problems.append(f"README.md throttles {route}, but there is no such route")
            elif route_ids[route] not in depends_on:
                problems.append(f"{where}: the stage does not DependsOn {route_ids[route]} (the deploy would fail)")
        for key, param in (("ThrottlingRateLimit", rate_param), ("ThrottlingBurstLimit", burst_param)):
            expected = _number(manifest.params.get(param))
            if expected is None:
                problems.append(f"{where}: README.md names parameter {param}, which has no value")
            elif _number(settings.get(key)) != expected:
                problems.append(f"{where}: {key} is {settings.get(key)!r}, parameter {param} is {expected:g}")
    for route in sorted(set(props.get("RouteSettings") or {}) - set(documented.throttling)):
        problems.append(f"stage {stage_name}: RouteSettings[{route}] is not in README.md's throttling table")

    origin = manifest.params.get("webOrigin")
    for name, api in resources_of(template, "AWS::ApiGatewayV2::Api").items():
        cors = api["Properties"].get("CorsConfiguration") or {}
        origins = cors.get("AllowOrigins") or []
        if origins != [origin]:
            problems.append(f"{name}: CORS allows {origins}, expected only the page's origin {origin} (webOrigin)")
        if "*" in (cors.get("AllowHeaders") or []):
            problems.append(f"{name}: CORS allows any header; name them")

    log_format = (props.get("AccessLogSettings") or {}).get("Format")
    if not log_format:
        problems.append(f"stage {stage_name}: no access log")
        return
    try:
        fields = json.loads(log_format)
    except ValueError:
        problems.append(f"stage {stage_name}: the access log format is not one JSON object per line")
        return
    if fields != documented.access_log:
        missing = sorted(set(documented.access_log) - set(fields))
        extra = sorted(set(fields) - set(documented.access_log))
        changed = sorted(k for k in set(fields) & set(documented.access_log) if fields[k] != documented.access_log[k])
        problems.append(
            f"stage {stage_name}: the access log's fields differ from README.md (missing {missing}, not documented "
            f"{extra}, other variable {changed})"
        )


# --- IAM ----------------------------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every statement of every identity policy in the template, with where it comes from."""
    for name, res in template.get("Resources", {}).items():
        props = res.get("Properties", {})
        if res.get("Type") == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                for statement in _as_list(policy.get("PolicyDocument", {}).get("Statement", [])):
                    yield name, statement
        elif res.get("Type") in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"}:
            for statement in _as_list(props.get("PolicyDocument", {}).get("Statement", [])):
                yield name, statement


_ACCOUNT_ARN = r"arn:\$\{AWS::Partition\}:(\w+):\$\{AWS::Region\}:\$\{AWS::AccountId\}:"


def resource_name(resource: Any, manifest: Manifest | None = None) -> str:
    """A statement's resource as the README names it: ``VideosTable``, ``VideosTable/by_task_id`` (an index),
    ``SaveQueue``, an SSM parameter's name under the stage's path, ``log-group:<name>``, ``kms-key:*``; anything
    else as its JSON (which matches nothing the README can say)."""
    if resource == "*":
        return "*"
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        target = resource["Fn::GetAtt"]
        parts = target.split(".", 1) if isinstance(target, str) else list(target)
        if len(parts) == 2 and parts[1] == "Arn":
            return str(parts[0])
    if isinstance(resource, dict) and isinstance(resource.get("Fn::Sub"), str):
        text = resource["Fn::Sub"]
        if found := re.fullmatch(r"\$\{(\w+)\.Arn\}(?:/index/([\w.-]+))?", text):
            return found.group(1) + (f"/{found.group(2)}" if found.group(2) else "")
        if (found := re.fullmatch(_ACCOUNT_ARN + r"parameter(/.+)", text)) and found.group(1) == "ssm":
            name = found.group(2)
            if manifest is not None and name.startswith(manifest.secrets_prefix):
                return name.removeprefix(manifest.secrets_prefix)
            return f"parameter:{name}"
        if (found := re.fullmatch(_ACCOUNT_ARN + r"log-group:(.+):\*", text)) and found.group(1) == "logs":
            return f"log-group:{found.group(2)}"
        if (found := re.fullmatch(_ACCOUNT_ARN + r"key/\*", text)) and found.group(1) == "kms":
            return "kms-key:*"
    if isinstance(resource, dict) and "Fn::Join" in resource:
        separator, parts = resource["Fn::Join"]
        if separator == "/" and len(parts) == 3 and parts[1] == "index" and isinstance(parts[2], str):
            return f"{resource_name(parts[0], manifest)}/{parts[2]}"
    return json.dumps(resource, sort_keys=True)


def _table_resources(template: dict[str, Any]) -> set[str]:
    """The DynamoDB resources a statement may name: each table of the template and each of its named indexes."""
    allowed: set[str] = set()
    for name, res in resources_of(template, "AWS::DynamoDB::Table").items():
        allowed.add(name)
        for index in res["Properties"].get("GlobalSecondaryIndexes", []):
            allowed.add(f"{name}/{index['IndexName']}")
    return allowed


def check_iam(template: dict[str, Any], problems: list[str]) -> None:
    """Rules for every statement, whoever it belongs to."""
    tables = _table_resources(template)
    queues = set(resources_of(template, "AWS::SQS::Queue"))
    for source, statement in policy_statements(template):
        if statement.get("Effect") != "Allow":
            continue
        where = f"IAM ({source}) statement {json.dumps(statement.get('Action'))}"
        if "NotAction" in statement or "NotResource" in statement:
            problems.append(f"{where}: NotAction/NotResource grants everything else; name what is allowed")
            continue
        actions = [str(action) for action in _as_list(statement.get("Action", []))]
        resources = [resource_name(resource) for resource in _as_list(statement.get("Resource", []))]
        for action in actions:
            if action == "*" or action.endswith(":*"):
                problems.append(f"{where}: wildcard action {action}")
        if "*" in resources and not set(actions) <= ACTIONS_WITHOUT_RESOURCES:
            problems.append(
                f'{where}: Resource "*"; only {sorted(ACTIONS_WITHOUT_RESOURCES)} may have it (no resource-level '
                "permissions exist for them)"
            )
        if any(action.startswith("dynamodb:") for action in actions):
            strays = [resource for resource in resources if resource not in tables]
            if strays:
                problems.append(f"{where}: DynamoDB beyond this stack's tables and named indexes: {strays}")
        if any(action.startswith("sqs:") for action in actions):
            strays = [resource for resource in resources if resource not in queues]
            if strays:
                problems.append(f"{where}: SQS beyond this stack's queues: {strays}")
        if "kms-key:*" in resources and (actions != ["kms:Decrypt"] or not _via_ssm(statement)):
            problems.append(f"{where}: the account's KMS keys, beyond kms:Decrypt through SSM of named parameters")


def _via_ssm(statement: dict[str, Any]) -> list[Any] | None:
    """The parameter ARNs a kms:Decrypt statement is limited to, if it is limited to SSM's use of them."""
    equals = (statement.get("Condition") or {}).get("StringEquals") or {}
    via = equals.get("kms:ViaService")
    parameters = equals.get("kms:EncryptionContext:PARAMETER_ARN")
    if via != {"Fn::Sub": "ssm.${AWS::Region}.amazonaws.com"} or not parameters:
        return None
    return _as_list(parameters)


def _role_statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    res = template["Resources"][role]
    statements = [
        statement
        for policy in res["Properties"].get("Policies", [])
        for statement in _as_list(policy.get("PolicyDocument", {}).get("Statement", []))
    ]
    for other in resources_of(template, "AWS::IAM::Policy").values():
        if {"Ref": role} in other["Properties"].get("Roles", []):
            statements += _as_list(other["Properties"].get("PolicyDocument", {}).get("Statement", []))
    return statements


def effective_grants(
    template: dict[str, Any], role: str, function_name: str, manifest: Manifest, problems: list[str]
) -> set[tuple[str, str]]:
    """What a role allows, as (action, README resource name); its own log group and X-Ray are checked, not listed."""
    grants: set[tuple[str, str]] = set()
    own_logs: set[str] = set()
    for statement in _role_statements(template, role):
        if statement.get("Effect") != "Allow":
            continue
        actions = [str(action) for action in _as_list(statement.get("Action", []))]
        resources = [resource_name(resource, manifest) for resource in _as_list(statement.get("Resource", []))]
        for action in actions:
            for resource in resources:
                if action in ACTIONS_WITHOUT_RESOURCES and resource == "*":
                    continue
                if action in LOG_ACTIONS and resource == f"log-group:/aws/lambda/{function_name}":
                    own_logs.add(action)
                elif action == "kms:Decrypt" and resource == "kms-key:*" and (arns := _via_ssm(statement)):
                    for arn in arns:
                        name = resource_name(arn, manifest)
                        grants.add(("kms:Decrypt", f"via-ssm:{name}"))
                else:
                    grants.add((action, resource))
    if own_logs != LOG_ACTIONS:
        problems.append(f"role {role}: cannot write its function's own log group ({sorted(LOG_ACTIONS)})")
    return grants


def _describe(grants: set[tuple[str, str]]) -> str:
    return ", ".join(f"{action} on {resource}" for action, resource in sorted(grants))


def check_function_roles(
    template: dict[str, Any], manifest: Manifest, documented: Documented, problems: list[str]
) -> None:
    """One role per function, allowing exactly what README.md's table says that function may do."""
    functions = resources_of(template, "AWS::Lambda::Function")
    if resources_of(template, "AWS::IAM::Role").get("IamRoleLambdaExecution") is not None:
        problems.append("IamRoleLambdaExecution (osls's role shared by functions) exists: give every function `role:`")
    seen_roles: dict[str, str] = {}
    names: set[str] = set()
    for res in functions.values():
        props = res["Properties"]
        function_name = str(props.get("FunctionName"))
        name = function_name.removeprefix(manifest.function_prefix)
        names.add(name)
        role_ref = props.get("Role")
        role = role_ref.get("Fn::GetAtt", [None])[0] if isinstance(role_ref, dict) else None
        if role not in resources_of(template, "AWS::IAM::Role"):
            problems.append(f"function {name}: its role is not a role of this template ({json.dumps(role_ref)})")
            continue
        if role in seen_roles:
            problems.append(f"function {name}: shares role {role} with {seen_roles[role]} (one role per function)")
        seen_roles[role] = name
        role_props = template["Resources"][role]["Properties"]
        if role_props.get("ManagedPolicyArns"):
            problems.append(f"role {role}: managed policies grant what nobody reviews here; write the statements")
        trust = _as_list(role_props.get("AssumeRolePolicyDocument", {}).get("Statement", []))
        principals = {str(p) for st in trust for p in _as_list((st.get("Principal") or {}).get("Service", []))}
        if principals != {"lambda.amazonaws.com"}:
            problems.append(f"role {role}: may be assumed by {sorted(principals)}, not only by Lambda")
        effective = effective_grants(template, role, function_name, manifest, problems)
        if name not in documented.permissions:
            problems.append(f"function {name}: README.md's table of what each function may do has no row for it")
            continue
        expected = documented.permissions[name]
        if missing := expected - effective:
            problems.append(f"function {name}: README.md says it may, its role does not allow: {_describe(missing)}")
        if extra := effective - expected:
            problems.append(f"function {name}: its role allows more than README.md says: {_describe(extra)}")
    for name in sorted(set(documented.permissions) - names):
        problems.append(f"README.md's table of what each function may do names {name}, which is not in the template")


# --- secrets ------------------------------------------------------------------------------------------


def check_secrets(
    template: dict[str, Any], output_dir: Path, manifest: Manifest, documented: Documented, problems: list[str]
) -> None:
    """No secret in any function's environment (only the names of its SSM parameters, and only those its role may
    read), and none of the placeholder secrets packaging put in SSM anywhere in the output."""
    plain_variables = {variable.removesuffix("_PARAMETER"): short for short, variable in documented.secrets.items()}
    for res in resources_of(template, "AWS::Lambda::Function").values():
        props = res["Properties"]
        name = str(props.get("FunctionName")).removeprefix(manifest.function_prefix)
        variables = (props.get("Environment") or {}).get("Variables") or {}
        for variable in sorted(set(variables) & set(plain_variables)):
            problems.append(
                f"function {name}: its environment carries the secret {variable} (use {variable}_PARAMETER)"
            )
        named: set[str] = set()
        for short, variable in documented.secrets.items():
            if variable not in variables:
                continue
            expected = manifest.secrets_prefix + short
            if variables[variable] != expected:
                problems.append(f"function {name}: {variable} is {variables[variable]!r}, expected {expected!r}")
            named.add(short)
        readable = {
            resource for action, resource in documented.permissions.get(name, set()) if action == "ssm:GetParameter"
        }
        if named != readable:
            problems.append(
                f"function {name}: its environment names the parameters {sorted(named)}, README.md lets it read "
                f"{sorted(readable)}"
            )
    for text, where in _output_texts(output_dir):
        for canary in manifest.canaries:
            if canary in text:
                problems.append(f"{where}: holds a placeholder secret from SSM: secrets must be read at run time")
                break


def _output_texts(output_dir: Path) -> Iterator[tuple[str, str]]:
    """Every file osls wrote, as text (zip members one by one), with where it is."""
    for path in sorted(output_dir.rglob("*")):
        if not path.is_file():
            continue
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as bundle:
                for info in bundle.infolist():
                    if not info.is_dir():
                        yield bundle.read(info).decode("utf-8", "replace"), f"{path.name}:{info.filename}"
        else:
            yield path.read_text("utf-8", "replace"), path.name


# --- alarms -------------------------------------------------------------------------------------------


def _dimension(alarm: dict[str, Any], name: str) -> Any:
    return next((d.get("Value") for d in alarm.get("Dimensions", []) if d.get("Name") == name), None)


def dead_letter_queues(template: dict[str, Any]) -> set[str]:
    """Queues that receive what failed: redrive targets and functions' on-failure destinations."""
    found: set[str] = set()
    for res in resources_of(template, "AWS::SQS::Queue").values():
        target = ((res["Properties"] or {}).get("RedrivePolicy") or {}).get("deadLetterTargetArn")
        found.add(resource_name(target))
    for res in resources_of(template, "AWS::Lambda::EventInvokeConfig").values():
        failure = ((res["Properties"].get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        if failure is not None:
            found.add(resource_name(failure))
    return found & set(resources_of(template, "AWS::SQS::Queue"))


def check_alarms(template: dict[str, Any], manifest: Manifest, documented: Documented, problems: list[str]) -> None:
    """Every function's errors and throttles, every queue, the README's alarms, all telling the alarm topic."""
    alarms = resources_of(template, "AWS::CloudWatch::Alarm")
    props = {name: res["Properties"] for name, res in alarms.items()}
    topic = manifest.params.get("alarmTopicArn")
    for name, alarm in sorted(props.items()):
        if alarm.get("AlarmActions") != [topic] or alarm.get("ActionsEnabled") is False:
            problems.append(f"alarm {name}: does not notify the alarm topic {topic} (alarmTopicArn)")
    functions = resources_of(template, "AWS::Lambda::Function")
    for logical in sorted(functions):
        for metric in ("Errors", "Throttles"):
            if not any(
                a.get("Namespace") == "AWS/Lambda"
                and a.get("MetricName") == metric
                and _dimension(a, "FunctionName") == {"Ref": logical}
                for a in props.values()
            ):
                problems.append(f"function {logical}: no alarm on its {metric} (make infra)")
    dead_letter = dead_letter_queues(template)
    for queue in sorted(resources_of(template, "AWS::SQS::Queue")):
        watching = [a for a in props.values() if _dimension(a, "QueueName") == {"Fn::GetAtt": [queue, "QueueName"]}]
        if not watching:
            problems.append(f"queue {queue}: no alarm watches it (make infra)")
        if queue in dead_letter and not any(
            a.get("MetricName") == "ApproximateNumberOfMessagesVisible"
            and _number(a.get("Threshold")) == 0
            and a.get("ComparisonOperator") == "GreaterThanThreshold"
            for a in watching
        ):
            problems.append(f"queue {queue}: a dead-letter queue, but no alarm fires on its first message")
    prefixes = [logical.removesuffix("LambdaFunction") for logical in functions]
    expected: set[str] = set()
    for name in documented.alarms:
        if deploy_docs.FUNCTION_PLACEHOLDER in name:
            expected |= {name.replace(deploy_docs.FUNCTION_PLACEHOLDER, prefix) for prefix in prefixes}
        else:
            expected.add(name)
    if missing := sorted(expected - set(alarms)):
        problems.append(f"README.md's alarms are not in the template: {missing}")
    if extra := sorted(set(alarms) - expected):
        problems.append(f"alarms not in README.md's table: {extra}")
    if not resources_of(template, "AWS::CloudWatch::Dashboard"):
        problems.append("no CloudWatch dashboard (infra/monitoring.json)")


def check_snapstart(template: dict[str, Any], problems: list[str]) -> None:
    """A SnapStart function runs Python 3.12 or later and is reached through a published version (an alias): an
    integration calling the unqualified function would run $LATEST, which SnapStart never applies to."""
    integrations = resources_of(template, "AWS::ApiGatewayV2::Integration")
    for logical, res in sorted(resources_of(template, "AWS::Lambda::Function").items()):
        props = res["Properties"]
        if (props.get("SnapStart") or {}).get("ApplyOn") != "PublishedVersions":
            continue
        found = re.fullmatch(r"python(\d+)\.(\d+)", str(props.get("Runtime")))
        if found is None or (int(found.group(1)), int(found.group(2))) < (3, 12):
            problems.append(f"function {logical}: SnapStart needs python3.12 or later, not {props.get('Runtime')}")
        unqualified = {"Fn::GetAtt": [logical, "Arn"]}
        for name, integration in sorted(integrations.items()):
            if integration["Properties"].get("IntegrationUri") == unqualified:
                problems.append(f"{name}: calls {logical} unqualified, so SnapStart never applies (use its alias)")


def check_concurrency(template: dict[str, Any], problems: list[str]) -> None:
    """A function fed by a queue has reserved concurrency, and its mapping never asks for more than that."""
    functions = resources_of(template, "AWS::Lambda::Function")
    for name, mapping in sorted(resources_of(template, "AWS::Lambda::EventSourceMapping").items()):
        target = mapping["Properties"].get("FunctionName")
        logical = (target.get("Fn::GetAtt") or [None])[0] if isinstance(target, dict) else None
        function = functions.get(str(logical))
        if function is None:
            continue
        reserved = _number(function["Properties"].get("ReservedConcurrentExecutions"))
        ceiling = _number((mapping["Properties"].get("ScalingConfig") or {}).get("MaximumConcurrency"))
        if reserved is None:
            problems.append(f"function {logical}: fed by {name} but has no reserved concurrency")
        elif ceiling is None or ceiling > reserved:
            asked = "unbounded" if ceiling is None else f"{ceiling:g}"
            problems.append(f"{name}: MaximumConcurrency {asked} is not within {logical}'s reserved {reserved:g}")


# --- entry point --------------------------------------------------------------------------------------


def check_package(output_dir: Path, manifest: Manifest, documented: Documented | None = None) -> list[str]:
    template_path = output_dir / TEMPLATE_NAME
    if not template_path.is_file():
        return [f"{template_path} is missing: run osls package first (make package)"]
    template = json.loads(template_path.read_text())
    documented = documented or Documented.from_readme()
    problems: list[str] = []
    check_functions(template, output_dir, problems)
    check_version(template, manifest, problems)
    check_routes(template, documented, problems)
    check_api_limits(template, manifest, documented, problems)
    check_iam(template, problems)
    check_function_roles(template, manifest, documented, problems)
    check_secrets(template, output_dir, manifest, documented, problems)
    check_alarms(template, manifest, documented, problems)
    check_concurrency(template, problems)
    check_snapstart(template, problems)
    return problems


def bytecode_note(output_dir: Path) -> str | None:
    """A word when the layer ships no .pyc (not a failure: it only costs cold-start time)."""
    template_path = output_dir / TEMPLATE_NAME
    if not template_path.is_file():
        return None
    for layer in resources_of(json.loads(template_path.read_text()), "AWS::Lambda::LayerVersion").values():
        path = artifact(output_dir, layer["Properties"].get("Content", {}))
        if path.is_file():
            with zipfile.ZipFile(path) as bundle:
                if not any(name.endswith(".pyc") for name in bundle.namelist()):
                    return (
                        f"note: {path.name} ships no .pyc, so Lambda compiles it at every cold start; "
                        "make layer compiles it where the runtime's Python (python3.12) is installed"
                    )
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("output_dir", nargs="?", type=Path, default=ROOT / ".serverless")
    parser.add_argument("--manifest", type=Path, default=ROOT / "build" / "package-manifest.json")
    args = parser.parse_args(argv)
    if not args.manifest.is_file():
        print(f"check_package: {args.manifest} is missing: package with devtools.package_offline", file=sys.stderr)
        return 1
    try:
        problems = check_package(args.output_dir, Manifest.load(args.manifest))
    except deploy_docs.DocsError as exc:
        problems = [str(exc)]
    note = bytecode_note(args.output_dir)
    if note:
        print(f"check_package: {note}")
    for problem in problems:
        print(f"check_package: {problem}", file=sys.stderr)
    if problems:
        print(f"check_package: {len(problems)} problem(s) in {args.output_dir}", file=sys.stderr)
        return 1
    print(
        f"check_package: {args.output_dir} is fit to deploy (layer platform, zips, a role per function as README.md "
        "says, no secret in the template, alarms, throttling, CORS, access logs, routes, tracing, logs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
