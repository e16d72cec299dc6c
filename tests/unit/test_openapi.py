"""The committed OpenAPI spec is what the code generates, covers every HTTP route, and tells the truth about
each route's answers: the project's error body with the route's codes, API Gateway's own answers, examples that
match their schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

from devtools.gateway import read_serverless, routes_from_serverless
from devtools.openapi import SPEC_FILE, front_door_refusals, render, spec
from video_library.http import error_codes_of


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return spec()


def error_codes(operation: dict[str, Any], status: str) -> set[str]:
    schema = operation["responses"][status]["content"]["application/json"]["schema"]
    alternatives = schema.get("anyOf", [schema])
    return {code for alternative in alternatives for code in error_codes_of(alternative)}


def gateway_answers(operation: dict[str, Any], status: str) -> bool:
    schema = operation["responses"][status]["content"]["application/json"]["schema"]
    return {"$ref": "#/components/schemas/GatewayMessage"} in schema.get("anyOf", [schema])


def validator(document: dict[str, Any], schema: dict[str, Any]) -> Any:
    return jsonschema_rs.validator_for({**schema, "components": document["components"]})


def test_committed_spec_is_current() -> None:
    assert SPEC_FILE.read_text() == render(), "openapi.json is stale: run `make openapi`"


def test_spec_covers_every_http_route_in_serverless_yml(document: dict[str, Any]) -> None:
    documented = {(method.upper(), path) for path, operations in document["paths"].items() for method in operations}
    routes = {(route.method, route.path) for route in routes_from_serverless()}

    assert routes == documented


def test_every_error_status_answers_the_error_body_or_api_gateways(document: dict[str, Any]) -> None:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                assert error_codes(operation, status) or gateway_answers(operation, status), (method, path, status)
                assert "HTTPValidationError" not in json.dumps(response)
            # Every route can fail unexpectedly, time out at the gateway, or be throttled.
            assert {"429", "500", "503"} <= operation["responses"].keys(), (method, path)
            assert "internal_error" in error_codes(operation, "500")


def test_each_route_lists_the_codes_its_own_code_raises(document: dict[str, Any]) -> None:
    save = document["paths"]["/api/video/save-to-library"]["post"]
    one = document["paths"]["/api/video/{video_id}"]["get"]
    webhook = document["paths"]["/webhooks/piapi"]["post"]
    front_door = {refusal.code for refusal in front_door_refusals() if refusal.status == 400}

    # the save: its declared refusals, the front door's, validation's and the authorizer's
    assert error_codes(save, "409") == {"wrong_state", "save_in_progress", "preview_expired"}
    assert error_codes(save, "422") == {"invalid_request", "source_not_allowed"}
    assert error_codes(save, "400") == front_door and {"invalid_json", "too_deep", "not_an_object"} <= front_door
    assert error_codes(save, "413") == {"payload_too_large"} and gateway_answers(save, "413")
    assert error_codes(save, "401") == {"unauthorized"} and gateway_answers(save, "401")
    # a GET has no body: no front door codes
    assert error_codes(one, "404") == {"video_not_found", "not_found"}  # not_found: a path the resolver refuses
    assert not {"400", "413", "415"} & one["responses"].keys()
    # the webhook's resolver answers invalid bodies with 400, and its 401 is its own (no authorizer)
    assert error_codes(webhook, "400") == front_door | {"invalid_request"}
    assert error_codes(webhook, "401") == {"unauthorized"} and not gateway_answers(webhook, "401")
    assert webhook["security"] == [{"webhookSecret": []}] and save["security"] == [{"jwt": []}]


def test_every_example_matches_the_schema_it_illustrates(document: dict[str, Any]) -> None:
    checked = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            request = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            for name, example in request.get("examples", {}).items():
                errors = [e.message for e in validator(document, request["schema"]).iter_errors(example["value"])]
                assert not errors, (method, path, name, errors)
                checked += 1
            for status, response in operation["responses"].items():
                content = response.get("content", {}).get("application/json", {})
                for name, example in content.get("examples", {}).items():
                    errors = [e.message for e in validator(document, content["schema"]).iter_errors(example["value"])]
                    assert not errors, (method, path, status, name, errors)
                    checked += 1
    assert checked >= 30


def test_a_new_route_needs_nothing_but_its_declaration(tmp_path: Path) -> None:
    # GIVEN serverless.yml with one more function, routed like the others, whose handler declares its refusals
    config = read_serverless()
    config["functions"]["deleteThumbnail"] = {
        "handler": "tests/unit/spec_sample_handler.handler",
        "events": [
            {"httpApi": {"method": "DELETE", "path": "/api/video/{video_id}/thumbnail", "authorizer": {"name": "jwt"}}}
        ],
    }
    serverless = tmp_path / "serverless.yml"
    serverless.write_text(yaml.safe_dump(config))

    # WHEN the spec is generated
    operation = spec({}, serverless=serverless)["paths"]["/api/video/{video_id}/thumbnail"]["delete"]

    # THEN it has its own refusals, and every shared answer that applies to a DELETE behind the authorizer
    assert set(operation["responses"]) == {"200", "401", "404", "409", "422", "429", "500", "503"}
    assert error_codes(operation, "404") == {"video_not_found", "not_found"}
    assert error_codes(operation, "409") == {"save_in_progress"}
    assert error_codes(operation, "422") == {"invalid_request"}
    assert operation["security"] == [{"jwt": []}] and operation["tags"] == ["library"]
