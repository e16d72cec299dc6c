"""The deploy facts README.md states, read from its tables, so that code can hold the README to them.

``make package`` (``check_package``) compares the generated template with them (each function's permissions, the
alarms, the access log's fields, the secrets), ``package_offline`` creates the SSM parameters they list, and the
docs tests compare them with serverless.yml (every parameter and its default, every SSM name). A table is found
by the heading above it; a cell's values are what it has between backticks.

The grammar of a permissions cell: groups separated by ``;``, each ``resources: actions`` with both
backticked and comma-separated, e.g. ```VideosTable`: `GetItem`, `UpdateItem`; `VideosTable/by_task_id`: `Query```;
``—`` for none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

PARAMETERS_HEADING = "Parameters"
SECRETS_HEADING = "Secrets in SSM"
PERMISSIONS_HEADING = "What each function may do"
ALARMS_HEADING = "Alarms and dashboard"
ACCESS_LOG_HEADING = "Access logs"
PUBLIC_ROUTES_HEADING = "Routes without the JWT authorizer"
THROTTLING_HEADING = "Throttling"
# The throttling table's row for the stage's default, which every route has unless a row names it.
EVERY_ROUTE = "every route"
REQUIRED = "required"
# In the alarms table, a name with this placeholder stands for one alarm per function (osls's logical id prefix).
FUNCTION_PLACEHOLDER = "<Function>"


class DocsError(Exception):
    """README.md does not have a table the deploy checks rely on, or a cell they cannot read."""


def backticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def table_under(heading: str, text: str | None = None) -> list[dict[str, str]]:
    """The rows (header -> cell) of the first table after the markdown heading whose text contains ``heading``."""
    lines = (README.read_text() if text is None else text).splitlines()
    start = next(
        (i for i, line in enumerate(lines) if line.startswith("#") and heading in line.lstrip("#").strip()), None
    )
    if start is None:
        raise DocsError(f"README.md has no heading {heading!r}")
    rows: list[dict[str, str]] = []
    header: list[str] | None = None
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        if not line.lstrip().startswith("|"):
            if header is not None:
                break
            continue
        cells = _cells(line)
        if header is None:
            header = cells
        elif not all(re.fullmatch(r":?-+:?", cell) for cell in cells):
            rows.append(dict(zip(header, cells, strict=False)))
    if header is None:
        raise DocsError(f"README.md has no table under {heading!r}")
    return rows


@dataclass(frozen=True)
class Parameter:
    name: str
    default: str | None  # None: required, the deploy stops without it
    per_stage: dict[str, str] = field(default_factory=dict)


def parameters(text: str | None = None) -> dict[str, Parameter]:
    """The osls parameters the README lists: ``| `name` | `default`; `prod`: `value` | what |`` or required."""
    found: dict[str, Parameter] = {}
    for row in table_under(PARAMETERS_HEADING, text):
        names = backticked(row.get("parameter", ""))
        if len(names) != 1:
            raise DocsError(f"parameters table: cannot read the parameter of {row}")
        cell = row.get("default", "")
        values = backticked(cell)
        if REQUIRED in cell and not values:
            found[names[0]] = Parameter(names[0], None)
            continue
        if not values:
            raise DocsError(f"parameters table: {names[0]} has neither a default nor {REQUIRED!r}")
        overrides = dict(zip(values[1::2], values[2::2], strict=False))
        found[names[0]] = Parameter(names[0], values[0], overrides)
    return found


def secret_parameters(text: str | None = None) -> dict[str, str]:
    """The SSM SecureStrings, by their name under ``/<service>/<stage>/``, and the variable carrying that name."""
    found: dict[str, str] = {}
    for row in table_under(SECRETS_HEADING, text):
        names = backticked(row.get("SSM parameter (SecureString)", ""))
        variables = backticked(row.get("its name, in the environment", ""))
        if len(names) != 1 or len(variables) != 1 or "/" not in names[0]:
            raise DocsError(f"secrets table: cannot read {row}")
        found[names[0].rsplit("/", 1)[-1]] = variables[0]
    return found


def _grants(cell: str, service: str) -> set[tuple[str, str]]:
    grants: set[tuple[str, str]] = set()
    if not backticked(cell):
        return grants
    for group in cell.split(";"):
        resources_part, sep, actions_part = group.partition(":")
        resources, actions = backticked(resources_part), backticked(actions_part)
        if not sep or not resources or not actions:
            raise DocsError(f"permissions table: cannot read {group.strip()!r} (expected `Resource`: `Action`, ...)")
        grants |= {(f"{service}:{action}", resource) for resource in resources for action in actions}
    return grants


def permissions(text: str | None = None) -> dict[str, set[tuple[str, str]]]:
    """Each function's grants as (action, resource): tables and indexes, queues, and each SSM parameter (read,
    and decrypted through SSM only). The log group and X-Ray grants every function has are not listed."""
    found: dict[str, set[tuple[str, str]]] = {}
    for row in table_under(PERMISSIONS_HEADING, text):
        names = backticked(row.get("function", ""))
        if len(names) != 1:
            raise DocsError(f"permissions table: cannot read the function of {row}")
        grants = _grants(row.get("DynamoDB", ""), "dynamodb") | _grants(row.get("SQS", ""), "sqs")
        for parameter in backticked(row.get("SSM parameters", "")):
            grants |= {("ssm:GetParameter", parameter), ("kms:Decrypt", f"via-ssm:{parameter}")}
        found[names[0]] = grants
    return found


def alarms(text: str | None = None) -> list[str]:
    """The alarms' logical ids (``<Function>`` standing for each function's)."""
    names: list[str] = []
    for row in table_under(ALARMS_HEADING, text):
        found = backticked(row.get("alarm", ""))
        if len(found) != 1:
            raise DocsError(f"alarms table: cannot read the alarm of {row}")
        names.append(found[0])
    return names


def access_log_fields(text: str | None = None) -> dict[str, str]:
    """The access log's fields and the API Gateway variable each one holds."""
    found: dict[str, str] = {}
    for row in table_under(ACCESS_LOG_HEADING, text):
        fields, variables = backticked(row.get("field", "")), backticked(row.get("variable", ""))
        if len(fields) != 1 or len(variables) != 1:
            raise DocsError(f"access log table: cannot read {row}")
        found[fields[0]] = variables[0]
    return found


def public_routes(text: str | None = None) -> set[str]:
    """The routes that are not behind the JWT authorizer (each authenticated some other way)."""
    routes: set[str] = set()
    for row in table_under(PUBLIC_ROUTES_HEADING, text):
        found = backticked(row.get("route", ""))
        if len(found) != 1:
            raise DocsError(f"public routes table: cannot read {row}")
        routes.add(found[0])
    return routes


def throttling(text: str | None = None) -> dict[str, tuple[str, str]]:
    """Route (or ``every route``) -> the parameters giving its steady rate and burst."""
    found: dict[str, tuple[str, str]] = {}
    for row in table_under(THROTTLING_HEADING, text):
        routes = backticked(row.get("route", ""))
        route = routes[0] if routes else row.get("route", "").strip()
        rate, burst = backticked(row.get("requests per second", "")), backticked(row.get("burst", ""))
        if len(routes) > 1 or not route or len(rate) != 1 or len(burst) != 1:
            raise DocsError(f"throttling table: cannot read {row}")
        found[route] = (rate[0], burst[0])
    if EVERY_ROUTE not in found:
        raise DocsError(f"throttling table: no row for {EVERY_ROUTE!r}")
    return found
