"""Package the service with osls without any AWS account: ``python -m devtools.package_offline --stage ci``.

``osls package`` talks to AWS twice even though it deploys nothing: it resolves every ``${ssm:...}`` in
serverless.yml (our secrets) and, because serverless.yml has a ``layers:`` section, asks CloudFormation
for the stack (DescribeStacks). Offline both fail. Here a moto server on loopback stands in for the whole
AWS API for the duration of the run: the SSM parameters serverless.yml names are created in it first, with
placeholder values, and every AWS endpoint of the osls process points at it. serverless.yml itself is not
changed, so a real deploy still resolves the real SecureStrings and fails if one is missing.

The placeholder values end up in ``.serverless/`` (as real secrets would in a real package): they are
placeholders, and ``.serverless/`` is not committed. The moto server runs in this process and stops when
it ends, whatever happens to osls.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from devtools.local_aws import LocalAws

ROOT = Path(__file__).resolve().parent.parent
SERVERLESS_YML = ROOT / "serverless.yml"
OSLS = ROOT / "node_modules" / ".bin" / "osls"
LAYER_DIR = ROOT / "build" / "layer" / "python" / "video_library"
OUTPUT_DIR = ROOT / ".serverless"
REGION = "us-east-1"

# Every ${param:...} that has no default in serverless.yml. Obviously fake: nothing is deployed.
PLACEHOLDER_PARAMS = {
    "jwtIssuerUrl": "https://issuer.example.com",
    "jwtAudience": "video-library-offline-package",
    "r2EndpointUrl": "https://r2-account-id.r2.cloudflarestorage.example.com",
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
    service = re.search(r"^service:\s*([\w-]+)\s*$", config_text, re.MULTILINE)
    if service is None:
        raise PackagingError("serverless.yml has no `service:` name")
    names: list[str] = []
    for match in re.finditer(r"\$\{ssm:", config_text):
        body = config_text[match.end() : _variable_end(config_text, match.start()) - 1]
        name = body.replace("${self:service}", service.group(1)).replace("${sls:stage}", stage)
        name = name.replace("${opt:stage}", stage)
        if "${" in name or "," in name:
            raise PackagingError(
                f"cannot work out the SSM parameter behind ${{ssm:{body}}}: only ${{self:service}} and "
                "${sls:stage} are filled in here; extend devtools/package_offline.py"
            )
        if name not in names:
            names.append(name)
    return names


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
    names = ssm_parameter_names(SERVERLESS_YML.read_text(), stage)
    # Never let the checks read an earlier run's output.
    shutil.rmtree(OUTPUT_DIR, ignore_errors=True)
    with LocalAws() as aws:
        ssm = aws.client("ssm")
        for name in names:
            ssm.put_parameter(Name=name, Type="SecureString", Value=f"offline-placeholder-{name.rsplit('/', 1)[-1]}")
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
