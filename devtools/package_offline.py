"""Package the service with osls without any AWS account: ``python -m devtools.package_offline --stage ci``.

``osls package`` talks to AWS even though it deploys nothing: because serverless.yml has a ``layers:`` section,
it asks CloudFormation for the stack (DescribeStacks), and it would resolve any ``${ssm:...}``. Offline both
fail. Here a moto server on loopback stands in for the whole AWS API for the duration of the run, and every AWS
endpoint of the osls process points at it. serverless.yml itself is not changed.

Before osls runs, every secret README.md lists (and any ``${ssm:...}`` serverless.yml names) is put in that SSM
as a SecureString with a random placeholder value, as a real account has them. The functions read their secrets
at run time, so none of these values may reach ``.serverless/``: ``check_package`` fails if one does (a
``${ssm:...}`` of a secret put back in serverless.yml would do exactly that).

What the package was made from (service, stage, every parameter's value, the placeholders) is written to
``build/package-manifest.json`` for ``check_package``. The moto server runs in this process and stops when it
ends, whatever happens to osls.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from devtools import deploy_docs
from devtools.local_aws import LocalAws

ROOT = Path(__file__).resolve().parent.parent
SERVERLESS_YML = ROOT / "serverless.yml"
OSLS = ROOT / "node_modules" / ".bin" / "osls"
LAYER_DIR = ROOT / "build" / "layer" / "python" / "video_library"
OUTPUT_DIR = ROOT / ".serverless"
MANIFEST = ROOT / "build" / "package-manifest.json"
REGION = "us-east-1"

# Every ${param:...} that has no default in serverless.yml. Obviously fake: nothing is deployed.
PLACEHOLDER_PARAMS = {
    "jwtIssuerUrl": "https://issuer.example.com",
    "jwtAudience": "video-library-offline-package",
    "r2EndpointUrl": "https://r2-account-id.r2.cloudflarestorage.example.com",
    "webOrigin": "https://library.example.com",
    "alarmTopicArn": "arn:aws:sns:us-east-1:123456789012:video-library-offline-alarms",
}


class PackagingError(Exception):
    """Something the offline package needs is missing or cannot be worked out; the message says what."""


def _variable_end(text: str, start: int) -> int:
    """Index just past the ``}`` closing the ``${`` at ``start`` (variables nest: ``${ssm:/${sls:stage}/x}``)."""
    depth = 0
    for index in range(start, len(text)):
        if text.startswith("${", index):
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index + 1
    raise PackagingError(f"unbalanced variable in serverless.yml at character {start}: {text[start : start + 60]!r}")


def ssm_parameter_names(config_text: str, stage: str) -> list[str]:
    """The SSM parameters serverless.yml resolves, with ``${self:service}`` and ``${sls:stage}`` filled in."""
    service = service_name(config_text)
    names: list[str] = []
    for match in re.finditer(r"\$\{ssm:", config_text):
        body = config_text[match.end() : _variable_end(config_text, match.start()) - 1]
        name = body.replace("${self:service}", service).replace("${sls:stage}", stage)
        name = name.replace("${opt:stage}", stage)
        if "${" in name or "," in name:
            raise PackagingError(
                f"cannot work out the SSM parameter behind ${{ssm:{body}}}: only ${{self:service}} and "
                "${sls:stage} are filled in here; extend devtools/package_offline.py"
            )
        if name not in names:
            names.append(name)
    return names


def service_name(config_text: str) -> str:
    service = re.search(r"^service:\s*([\w-]+)\s*$", config_text, re.MULTILINE)
    if service is None:
        raise PackagingError("serverless.yml has no `service:` name")
    return service.group(1)


def effective_params(config_text: str, stage: str, given: dict[str, str]) -> dict[str, str]:
    """Each parameter's value in this package: serverless.yml's default, its stage's, then what is given."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    config: dict[str, Any] = yaml.load(config_text, Loader=Loader)  # noqa: S506 (a SafeLoader)
    params = config.get("params") or {}
    values = {key: str(value) for key, value in (params.get("default") or {}).items()}
    values.update({key: str(value) for key, value in (params.get(stage) or {}).items()})
    values.update(given)
    return values


def secret_names(config_text: str, stage: str) -> list[str]:
    """Every SSM parameter to put in the stand-in SSM: README.md's secrets and whatever serverless.yml resolves."""
    prefix = f"/{service_name(config_text)}/{stage}/"
    names = [prefix + short for short in deploy_docs.secret_parameters()]
    return names + [name for name in ssm_parameter_names(config_text, stage) if name not in names]


def osls_environment(endpoint: str) -> dict[str, str]:
    """This process's environment without any AWS setting of the machine, every AWS endpoint at ``endpoint``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        {
            # Dummy credentials, and no profile or shared file: nothing real can be picked up or reached.
            "AWS_ACCESS_KEY_ID": "offline",
            "AWS_SECRET_ACCESS_KEY": "offline",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ENDPOINT_URL_SSM": endpoint,
            "AWS_ENDPOINT_URL_CLOUDFORMATION": endpoint,
        }
    )
    return env


def _aws_calls(aws: LocalAws) -> str:
    """What osls asked for, by service (from the signature's credential scope) and action where visible."""
    calls: Counter[str] = Counter()
    for request in aws.requests:
        scope = re.search(r"Credential=[^/]+/\d+/[^/]+/([^/]+)/", request.headers.get("authorization", ""))
        service = scope.group(1) if scope else "unsigned"
        target = request.headers.get("x-amz-target", "")
        query_action = re.search(r"(?:^|&)Action=(\w+)", request.query)
        if target:
            action = target.rsplit(".", 1)[-1]
        elif query_action:
            action = query_action.group(1)
        else:  # the query protocol's action is in the form body, which is not recorded
            action = f"{request.method} {request.path}"
        calls[f"{service} {action}"] += 1
    return ", ".join(f"{action} x{count}" for action, count in sorted(calls.items())) or "none"


def package(stage: str, params: dict[str, str]) -> int:
    if not OSLS.exists():
        raise PackagingError(f"{OSLS.relative_to(ROOT)} is missing: run `npm ci` (make package does)")
    if not LAYER_DIR.is_dir():
        raise PackagingError(f"{LAYER_DIR.relative_to(ROOT)} is missing: run `make layer` (make package does)")
    config_text = SERVERLESS_YML.read_text()
    names = secret_names(config_text, stage)
    # Random, so that finding one in the output can only mean it was copied there from SSM.
    canaries = {name: f"placeholder-secret-{secrets.token_hex(12)}" for name in names}
    # Never let the checks read an earlier run's output.
    shutil.rmtree(OUTPUT_DIR, ignore_errors=True)
    MANIFEST.parent.mkdir(parents=True, exist_ok=True)
    MANIFEST.write_text(
        json.dumps(
            {
                "service": service_name(config_text),
                "stage": stage,
                "version": tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"],
                "params": effective_params(config_text, stage, params),
                "canaries": sorted(canaries.values()),
            },
            indent=2,
        )
        + "\n"
    )
    with LocalAws() as aws:
        ssm = aws.client("ssm")
        for name, value in canaries.items():
            ssm.put_parameter(Name=name, Type="SecureString", Value=value)
        print(f"moto at {aws.url} stands in for AWS; SSM SecureStrings created: {', '.join(names) or 'none'}")
        command = [str(OSLS), "package", "--stage", stage, "--region", REGION]
        command += [f"--param={key}={value}" for key, value in params.items()]
        print("$ " + " ".join(command), flush=True)
        result = subprocess.run(command, cwd=ROOT, env=osls_environment(aws.url), check=False)
        print(f"AWS calls osls made (all answered by moto): {_aws_calls(aws)}")
    if result.returncode != 0:
        print(f"osls package failed (exit {result.returncode})", file=sys.stderr)
    return result.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stage", default="ci")
    parser.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="override or add an osls --param"
    )
    args = parser.parse_args(argv)
    params = dict(PLACEHOLDER_PARAMS)
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--param {item!r}: expected KEY=VALUE")
        params[key] = value
    try:
        return package(args.stage, params)
    except PackagingError as exc:
        print(f"package_offline: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
