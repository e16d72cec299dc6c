"""The README's deploy facts are the code's: every parameter, secret, index, alarm and log field it states.

GIVEN README.md and the files a deploy is made of (serverless.yml, infra/, the settings and table models), THEN
each table of the README lists exactly what they hold, so following the README works as written. (The template
osls generates is held to the same tables by ``make package``; see test_check_package.py.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from devtools import deploy_docs
from devtools.monitoring import logical_function_id, read_config
from devtools.package_offline import PLACEHOLDER_PARAMS
from video_library.db import VideoRecord
from video_library.secrets import Secret
from video_library.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SERVERLESS = ROOT / "serverless.yml"
# Everything serverless.yml includes, where a ${param:...} may also be.
DEPLOY_FILES = [SERVERLESS, *sorted((ROOT / "infra").glob("*.yml")), *sorted((ROOT / "infra").glob("*.json"))]


def config() -> dict[str, object]:
    return read_config(SERVERLESS)


def params_used() -> set[str]:
    return {name for path in DEPLOY_FILES for name in re.findall(r"\$\{param:(\w+)", path.read_text())}


def params_section() -> dict[str, dict[str, object]]:
    params = config()["params"]
    assert isinstance(params, dict)
    return params


def test_every_parameter_is_listed_with_its_default() -> None:
    documented = deploy_docs.parameters()
    defaults = params_section()["default"]

    # every parameter the deploy uses or defines is in the README, and nothing else is
    assert set(documented) == params_used() | set(defaults)
    for name, parameter in documented.items():
        if parameter.default is None:
            assert name not in defaults, f"README says {name} is required, serverless.yml has a default"
        else:
            shown = "" if parameter.default == '""' else parameter.default
            assert str(defaults.get(name)) == shown, f"README's default of {name} differs from serverless.yml"


def test_the_required_parameters_are_those_without_a_default_and_packaging_passes_them_all() -> None:
    required = {name for name, parameter in deploy_docs.parameters().items() if parameter.default is None}

    assert required == params_used() - set(params_section()["default"])
    assert required == set(PLACEHOLDER_PARAMS)


def test_per_stage_values_are_listed() -> None:
    documented = {name: p.per_stage for name, p in deploy_docs.parameters().items() if p.per_stage}
    stages = {stage: values for stage, values in params_section().items() if stage != "default"}

    listed: dict[str, dict[str, str]] = {}
    for stage, values in stages.items():
        for name, value in values.items():
            listed.setdefault(name, {})[stage] = str(value)
    assert documented == listed


def test_every_ssm_name_the_functions_read_is_listed_and_created_by_the_commands() -> None:
    functions = config()["functions"]
    assert isinstance(functions, dict)
    named = {
        value.removeprefix("${self:custom.secrets}/"): variable
        for function in functions.values()
        for variable, value in (function.get("environment") or {}).items()
        if variable.endswith("_PARAMETER")
    }
    documented = deploy_docs.secret_parameters()

    # what serverless.yml gives the functions is what the README lists...
    assert documented == named
    # ...which is every secret the settings know, by the variable they read its name from
    assert set(documented.values()) == {secret.parameter_variable for secret in Secret}
    # ...and the README's commands create exactly those parameters
    readme = deploy_docs.README.read_text()
    created = re.findall(r"aws ssm put-parameter --type SecureString --name /video-library/<stage>/([\w-]+)", readme)
    assert sorted(created) == sorted(documented)


def test_no_secret_is_resolved_into_the_template() -> None:
    for path in DEPLOY_FILES:
        assert "${ssm:" not in path.read_text(), f"{path.name}: secrets are read at run time, not at package time"


def test_the_access_log_fields_are_the_ones_listed() -> None:
    provider = config()["provider"]
    assert isinstance(provider, dict)
    fields = json.loads(provider["logs"]["httpApi"]["format"])

    assert fields == deploy_docs.access_log_fields()


def test_the_alarms_listed_are_the_ones_rendered() -> None:
    rendered = {
        name
        for name, res in json.loads((ROOT / "infra" / "monitoring.json").read_text())["Resources"].items()
        if res["Type"] == "AWS::CloudWatch::Alarm"
    }
    functions = config()["functions"]
    assert isinstance(functions, dict)
    listed = set()
    for name in deploy_docs.alarms():
        if deploy_docs.FUNCTION_PLACEHOLDER in name:
            listed |= {name.replace(deploy_docs.FUNCTION_PLACEHOLDER, logical_function_id(f)) for f in functions}
        else:
            listed.add(name)

    assert listed == rendered


def test_every_function_has_a_row_of_permissions_and_its_own_role() -> None:
    functions = config()["functions"]
    assert isinstance(functions, dict)
    roles = read_config(ROOT / "infra" / "roles.yml")["Resources"]

    assert set(deploy_docs.permissions()) == set(functions)
    assigned = [function["role"] for function in functions.values()]
    assert len(set(assigned)) == len(assigned), "two functions share a role"
    assert set(assigned) == set(roles)


def test_the_throttled_routes_and_public_routes_exist() -> None:
    functions = config()["functions"]
    assert isinstance(functions, dict)
    routes = {
        f"{event['httpApi']['method'].upper()} {event['httpApi']['path']}": event["httpApi"]
        for function in functions.values()
        for event in function.get("events") or []
        if isinstance(event, dict) and "httpApi" in event
    }

    throttled = set(deploy_docs.throttling()) - {deploy_docs.EVERY_ROUTE}
    assert throttled <= set(routes)
    for route in deploy_docs.public_routes():
        assert "authorizer" not in routes[route]
    for route, event in routes.items():
        assert route in deploy_docs.public_routes() or event.get("authorizer") == {"name": "jwt"}


def test_the_indexes_listed_are_the_models() -> None:
    readme = deploy_docs.README.read_text()
    data = readme[readme.index("## Data") : readme.index("## Configuration")]
    listed = {deploy_docs.backticked(row["index"])[0] for row in deploy_docs.table_under("Data", data)}

    assert listed == set(VideoRecord._indexes)


def test_the_configuration_table_lists_every_setting() -> None:
    readme = deploy_docs.README.read_text()
    section = readme[readme.index("## Configuration") : readme.index("## Layout")]
    listed = {
        name
        for row in deploy_docs.table_under("Configuration", section)
        for name in deploy_docs.backticked(row["variable"])
    }
    # AWS sets these two itself; they only tell the settings where they run.
    settings = {name.upper() for name in Settings.model_fields} - {"AWS_LAMBDA_FUNCTION_NAME", "AWS_EXECUTION_ENV"}

    assert listed == settings
