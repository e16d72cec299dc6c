"""The API keeps the promises of its spec: schemathesis, from the committed openapi.json, against the local stack.

Every operation of the spec, in all four of schemathesis's phases: the documented examples, coverage (boundary
and negative values of every parameter and body property, other methods, missing and malformed bodies, other
content types), fuzzing (positive and negative data: ``--mode all``) and stateful sequences along the links it
infers (a generated video read back by its id). Each answer must pass the four checks below; no check is
excluded for any operation.

The run is bounded by ``MAX_EXAMPLES`` per operation and phase and seeded, so CI runs the same cases every time
(``SCHEMATHESIS_SEED=<n>`` explores others; ``SCHEMATHESIS_MAX_EXAMPLES=<n>`` runs more). Its example count is
stated in the README ("Tests"): the test fails when a run generates fewer cases than that.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.gateway import cors_from_serverless
from devtools.local_jwt import mint
from devtools.local_stack import DEV_WEBHOOK_SECRET
from devtools.openapi import SPEC_FILE
from tests.stack_process import STACK_WEBHOOK_SECRET, RunningStack, running_stack

CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance")
PHASES = ("examples", "coverage", "fuzzing", "stateful")
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))
SEED = int(os.environ.get("SCHEMATHESIS_SEED", "20261202"))
# The README's figure ("Tests"): a run that generates fewer cases than this has stopped testing something.
MIN_TEST_CASES = 800
# A request the stack has not answered by then is a hang, which is a failure of its own.
REQUEST_TIMEOUT_S = 35


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    with running_stack() as running:
        yield running


def run_schemathesis(stack: RunningStack, report: Path) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        str(SPEC_FILE),
        "--url",
        stack.url,
        "--header",
        f"Authorization: Bearer {mint('schemathesis')}",
        "--header",
        f"x-webhook-secret: {STACK_WEBHOOK_SECRET}",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        ",".join(PHASES),
        "--mode",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        # No example database: the same seed must mean the same cases, whatever ran here before.
        "--generation-database",
        "none",
        "--request-timeout",
        str(REQUEST_TIMEOUT_S),
        "--workers",
        "1",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    # Run elsewhere: schemathesis keeps a cache of its findings in the working directory.
    return subprocess.run(  # noqa: S603 (our own command line)
        command, capture_output=True, text=True, check=False, timeout=900, cwd=report.parent
    )


def test_every_operation_keeps_the_spec(stack: RunningStack, tmp_path: Path) -> None:
    # GIVEN the local stack, signed in as a user, with the webhook's secret
    report_path = tmp_path / "schemathesis.json"

    # WHEN schemathesis tests every operation of openapi.json against it
    run = run_schemathesis(stack, report_path)

    # THEN every generated request got an answer the spec allows, in every phase, for every operation
    output = f"{run.stdout}\n{run.stderr}"
    problems = f"schemathesis found problems:\n{output[-20000:]}\n--- the stack's log ---\n{stack.log_tail()}"
    assert run.returncode == 0, problems
    report = json.loads(report_path.read_text())
    documented = json.loads(SPEC_FILE.read_text())["paths"]
    operations = sum(len(methods) for methods in documented.values())
    assert report["operations"] == {**report["operations"], "total": operations, "tested": operations, "errored": 0}
    assert {phase: result["status"] for phase, result in report["phases"].items()} == dict.fromkeys(PHASES, "success")
    assert report["failures"] == [] and report["errors"] == []
    print(f"schemathesis: {report['test_cases']} in {report['running_time']:.0f} s")
    assert report["test_cases"]["generated"] >= MIN_TEST_CASES, output[-3000:]


def test_the_stack_serves_the_committed_spec(stack: RunningStack) -> None:
    answer = stack.api().get("/openapi.json")

    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert answer.content == SPEC_FILE.read_bytes()


def test_the_stack_takes_the_webhook_secret_it_was_given(stack: RunningStack) -> None:
    # GIVEN a stack started with PIAPI_WEBHOOK_SECRET set (tests/stack_process.py)
    delivery = {"timestamp": 1764064800, "data": {"task_id": "no-such-task", "status": "processing"}}

    # WHEN PiAPI calls with that secret, and with make dev's own default
    given = stack.api().post("/webhooks/piapi", json=delivery, headers={"x-webhook-secret": STACK_WEBHOOK_SECRET})
    default = stack.api().post("/webhooks/piapi", json=delivery, headers={"x-webhook-secret": DEV_WEBHOOK_SECRET})

    # THEN only the given one is accepted
    assert given.status_code == 200 and given.json() == {"result": "ignored"}
    assert default.status_code == 401 and default.json()["error"]["code"] == "unauthorized"


def test_a_preflight_is_answered_as_serverless_yml_configures_it(stack: RunningStack) -> None:
    cors = cors_from_serverless()
    assert cors is not None  # serverless.yml configures CORS for the HTTP API
    origin = "https://library.example.com"

    answer = stack.api().options(
        "/api/video/save-to-library",
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization",
        },
    )

    assert answer.status_code == 204
    expected_origin = "*" if "*" in cors.allowed_origins and not cors.allow_credentials else origin
    assert answer.headers.get("access-control-allow-origin") == (expected_origin if cors.allows(origin) else None)
