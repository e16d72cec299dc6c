"""Check what ``osls package`` wrote in ``.serverless/`` before anything of it is deployed.

``python -m devtools.check_package [.serverless]`` prints every problem it finds and exits 1 if there is
one. What it checks, all read from the generated CloudFormation template and the zips it names:

- the layer zip holds wheels for the Lambda platform, not this machine's: every compiled module is an ELF
  object for the functions' architecture, named for their Python (``cpython-312-aarch64-linux-gnu``), every
  wheel tag fits (manylinux for that architecture, glibc no newer than the runtime's), everything is under
  ``python/``, and ``video_library`` and pydantic-core's compiled core are there;
- each function zip holds only ``functions/**/*.py`` (no tests, no .venv, no layer code), its handler included;
- layer and functions together stay under Lambda's 250 MB unzipped limit;
- every function runs the layer's runtime and architecture, uses the layer, is traced, and has a log group
  with a retention;
- every HTTP API route is behind the JWT authorizer, except the ones listed in ``PUBLIC_ROUTES``;
- IAM least privilege: no ``Resource: "*"`` (except X-Ray's two actions, which have no resource-level
  permissions), no wildcard actions, no NotAction/NotResource, DynamoDB only on this template's tables and
  their named indexes, SQS only on this template's queues.
"""

from __future__ import annotations

import json
import re
import struct
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_NAME = "cloudformation-template-update-stack.json"

# Routes PiAPI (not a signed-in user) calls: authenticated by the shared secret in x-webhook-secret.
PUBLIC_ROUTES = frozenset({"POST /webhooks/piapi"})

# X-Ray's PutTraceSegments / PutTelemetryRecords support no resource-level permissions: AWS documents
# Resource "*" as the only form. osls adds exactly this statement for `provider.tracing.lambda: true`.
ACTIONS_WITHOUT_RESOURCES = frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"})

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


# --- the API ------------------------------------------------------------------------------------------


def check_routes(template: dict[str, Any], problems: list[str]) -> None:
    for name, res in sorted(resources_of(template, "AWS::ApiGatewayV2::Route").items()):
        props = res["Properties"]
        route = props.get("RouteKey")
        if props.get("AuthorizationType") != "JWT" and route not in PUBLIC_ROUTES:
            problems.append(f"route {route} ({name}) is not behind the JWT authorizer (authorizer: name: jwt)")
    for name, res in resources_of(template, "AWS::ApiGatewayV2::Authorizer").items():
        jwt = res["Properties"].get("JwtConfiguration") or {}
        if not jwt.get("Issuer") or not any(jwt.get("Audience") or []):
            problems.append(f"authorizer {name}: the JWT issuer or audience is empty")


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


def _table_resources(template: dict[str, Any]) -> list[Any]:
    """The DynamoDB ARNs a statement may name: each table of the template and each of its named indexes."""
    allowed: list[Any] = []
    for name, res in resources_of(template, "AWS::DynamoDB::Table").items():
        arn = {"Fn::GetAtt": [name, "Arn"]}
        allowed.append(arn)
        for index in res["Properties"].get("GlobalSecondaryIndexes", []):
            allowed.append({"Fn::Join": ["/", [arn, "index", index["IndexName"]]]})
    return allowed


def check_iam(template: dict[str, Any], problems: list[str]) -> None:
    tables = _table_resources(template)
    queues = [{"Fn::GetAtt": [name, "Arn"]} for name in resources_of(template, "AWS::SQS::Queue")]
    for source, statement in policy_statements(template):
        if statement.get("Effect") != "Allow":
            continue
        where = f"IAM ({source}) statement {json.dumps(statement.get('Action'))}"
        if "NotAction" in statement or "NotResource" in statement:
            problems.append(f"{where}: NotAction/NotResource grants everything else; name what is allowed")
            continue
        actions = [str(action) for action in _as_list(statement.get("Action", []))]
        resources = _as_list(statement.get("Resource", []))
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


# --- entry point --------------------------------------------------------------------------------------


def check_package(output_dir: Path) -> list[str]:
    template_path = output_dir / TEMPLATE_NAME
    if not template_path.is_file():
        return [f"{template_path} is missing: run osls package first (make package)"]
    template = json.loads(template_path.read_text())
    problems: list[str] = []
    check_functions(template, output_dir, problems)
    check_routes(template, problems)
    check_iam(template, problems)
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
    args = sys.argv[1:] if argv is None else argv
    output_dir = Path(args[0]) if args else ROOT / ".serverless"
    problems = check_package(output_dir)
    note = bytecode_note(output_dir)
    if note:
        print(f"check_package: {note}")
    for problem in problems:
        print(f"check_package: {problem}", file=sys.stderr)
    if problems:
        print(f"check_package: {len(problems)} problem(s) in {output_dir}", file=sys.stderr)
        return 1
    print(f"check_package: {output_dir} is fit to deploy (layer platform, zips, IAM, routes, tracing, logs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
