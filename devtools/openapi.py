"""Write ``openapi.json``: the HTTP API's spec, generated from the code, with examples recorded from real answers.

Where each part comes from, so that a new route needs nothing but its own declaration:

- the routes, and which need the JWT authorizer: ``serverless.yml`` (the handler modules are found there too);
- bodies, parameters, successes, tags and each route's own refusals: the handler's Powertools resolver (the
  route's ``responses=route_answers(...)``, whose error classes carry their status and code);
- the refusals every route shares, added here to each route they apply to: the front door's (every error class
  of ``request_gate`` and ``strict_json``, on methods with a body), request validation's (whatever the
  resolver's own validation handler answers, on routes with parameters or a body), the handler's 401 (routes
  behind the authorizer), and the 500 any route gives on an unexpected error;
- API Gateway's own answers (``{"message": ...}``: the authorizer's 401, its payload limit, throttling, a
  crashed function, the 30 s timeout), which no function code produces but every client can receive;
- examples: ``devtools/openapi_examples.json``, answers recorded from the real handlers
  (``devtools/openapi_examples.py``; a test records them again and compares).

Every error body is ``{"error": {"code", "message", ...}}`` (the ``Error`` schema), with the route's possible
codes for that status as an enum. ``make openapi`` writes the file; a test fails when it is stale.
"""

from __future__ import annotations

import copy
import importlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from importlib.metadata import version
from pathlib import Path
from types import ModuleType
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from devtools.gateway import GATEWAY_MESSAGES, Route, routes_from_serverless
from devtools.openapi_examples import EXAMPLES_FILE
from video_library import request_gate, strict_json
from video_library.errors import Unauthorized, VideoLibraryError
from video_library.http import PathNotFound, error_codes_of, error_schema

ROOT = Path(__file__).resolve().parent.parent
SPEC_FILE = ROOT / "openapi.json"
TITLE = "video-library API"
# The project's one version number (pyproject.toml), as the layer's description and CHANGELOG.md carry it.
VERSION = version("video-library")
DESCRIPTION = (
    "Keeps AI-generated videos: PiAPI webhooks, the library, Save to Library into Cloudflare R2. Every route "
    "but the webhook needs a JWT (`Authorization: Bearer ...`) verified by API Gateway; the webhook needs the "
    'shared secret in `x-webhook-secret`. Every error the functions answer is `{"error": {"code", "message", '
    "...}}` (`Error`), its `code` one of those listed for the route and status; API Gateway's own refusals "
    '(authorizer, payload limit, throttling, timeout) are `{"message": ...}` (`GatewayMessage`).'
)
SERVERS = [
    {"url": "http://127.0.0.1:8000", "description": "`make dev`: the local stack"},
    {
        "url": "https://{api_id}.execute-api.{region}.amazonaws.com",
        "description": "The deployed HTTP API (`npx osls info` prints its URL)",
        "variables": {
            "api_id": {"default": "abcdef1234", "description": "The HTTP API's id"},
            "region": {"default": "us-east-1"},
        },
    },
]
TAG_DESCRIPTIONS = {
    "library": "The caller's videos: list, one video, storage usage",
    "generate": "New videos through PiAPI",
    "save": "Save to Library: copies a video into R2 for good, in the background",
    "webhooks": "Called by PiAPI, not by users",
}
SECURITY_SCHEMES: dict[str, Any] = {
    "jwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    "webhookSecret": {"type": "apiKey", "in": "header", "name": "x-webhook-secret"},
}
BODY_METHODS = request_gate.BODY_METHODS
# What API Gateway itself may answer on any route, and on routes with a body (its 10 MB payload limit).
GATEWAY_STATUSES_EVERY_ROUTE = (
    HTTPStatus.TOO_MANY_REQUESTS,
    HTTPStatus.INTERNAL_SERVER_ERROR,
    HTTPStatus.SERVICE_UNAVAILABLE,
)
GATEWAY_STATUSES_WITH_BODY = (HTTPStatus.REQUEST_ENTITY_TOO_LARGE,)
GATEWAY_WHY = {
    HTTPStatus.UNAUTHORIZED: "the authorizer found no valid token",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "the body is over API Gateway's 10 MB",
    HTTPStatus.TOO_MANY_REQUESTS: "throttled",
    HTTPStatus.INTERNAL_SERVER_ERROR: "the function failed",
    HTTPStatus.SERVICE_UNAVAILABLE: "no answer within 30 s; the function may still finish its work",
}

ERROR_SCHEMA = {
    "title": "Error",
    "description": "Every error a function answers. `code` is stable and machine-readable, `message` is for "
    "people; some codes carry details (e.g. `video_id`, `status`, `max_bytes`, `fields`).",
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {
                    "description": "invalid_request: where and what, never the offending input",
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "loc": {"type": "array", "items": {"type": "string"}},
                            "type": {"type": "string"},
                            "msg": {"type": "string"},
                        },
                        "required": ["loc", "type", "msg"],
                    },
                },
            },
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
    "additionalProperties": False,
}
GATEWAY_MESSAGE_SCHEMA = {
    "title": "GatewayMessage",
    "description": "An answer of API Gateway itself, before or instead of the function's",
    "type": "object",
    "properties": {"message": {"type": "string"}},
    "required": ["message"],
    "additionalProperties": False,
}
GATEWAY_MESSAGE_REF = {"$ref": "#/components/schemas/GatewayMessage"}


class SpecError(Exception):
    """The code and serverless.yml disagree in a way no spec can describe truthfully."""


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    meaning: str


def _refusal(error: type[VideoLibraryError]) -> Refusal:
    if error is VideoLibraryError:  # what the catch-all handler answers (video_library.http)
        return Refusal(int(error.status), error.code, "An unexpected error; its details are logged, never answered.")
    doc = (error.__dict__.get("__doc__") or "").strip().split("\n")[0]
    return Refusal(int(error.status), error.code, doc)


def _error_classes_of(*modules: ModuleType) -> list[type[VideoLibraryError]]:
    names = {module.__name__ for module in modules}
    return [
        value
        for module in modules
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, VideoLibraryError) and value.__module__ in names
    ]


def front_door_refusals() -> list[Refusal]:
    """Everything the front door can refuse a body with (request_gate and the strict JSON parser it uses)."""
    return sorted({_refusal(error) for error in _error_classes_of(request_gate, strict_json)}, key=_order)


def validation_refusal(app: APIGatewayHttpResolver) -> Refusal:
    """What this resolver answers to a request its models refuse, taken from its own handler."""
    handler = app.exception_handler_manager.lookup_exception_handler(RequestValidationError)
    if handler is None:
        raise SpecError("the resolver has no RequestValidationError handler (register_error_handlers)")
    problem = {"type": "missing", "loc": ("body", "video_id"), "msg": "Field required", "input": {}}
    answer = handler(RequestValidationError([problem]))
    body = answer.body if isinstance(answer.body, dict) else json.loads(answer.body)
    return Refusal(int(answer.status_code), body["error"]["code"], "The request does not have the expected shape")


def _order(refusal: Refusal) -> tuple[int, str]:
    return refusal.status, refusal.code


def _module_of(route: Route) -> str:
    module_path, _, _attribute = route.handler.rpartition(".")
    return module_path.replace("/", ".")


def _doc_index() -> dict[str, str]:
    """code -> the first line of its error class's docstring, for every error class the layer defines."""
    index: dict[str, str] = {}
    pending: list[type[VideoLibraryError]] = [VideoLibraryError]
    while pending:
        error = pending.pop()
        subclasses = error.__subclasses__()
        pending.extend(subclasses)
        meaning = _refusal(error).meaning
        # A base with subclasses (JsonRefused) describes the family, not the code it happens to carry.
        if meaning and (error is VideoLibraryError or not subclasses):
            index[error.code] = meaning
    return index


def _error_response(
    status: int, codes: Iterable[str], *, gateway: bool, docs: Mapping[str, str], declared: Mapping[str, Any]
) -> dict[str, Any]:
    codes = sorted(set(codes))
    lines = [f"- `{code}`" + (f": {docs[code]}" if docs.get(code) else "") for code in codes]
    if gateway:
        lines.append(f'- API Gateway: `{{"message": "{GATEWAY_MESSAGES[status]}"}}`: {GATEWAY_WHY[HTTPStatus(status)]}')
    schemas = ([error_schema(codes)] if codes else []) + ([GATEWAY_MESSAGE_REF] if gateway else [])
    schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    description = declared.get("description") or HTTPStatus(status).phrase
    if description == HTTPStatus(status).phrase:
        description += "\n\n" + "\n".join(lines)
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _complete_operation(
    operation: dict[str, Any],
    route: Route,
    *,
    validation: Refusal,
    docs: Mapping[str, str],
) -> None:
    responses: dict[str, Any] = operation["responses"]
    powertools_validation = responses.get("422", {}).get("content", {}).get("application/json", {}).get("schema")
    if powertools_validation == {"$ref": "#/components/schemas/HTTPValidationError"}:
        del responses["422"]  # Powertools' {"detail": [...]}: never what these handlers answer

    codes: dict[int, set[str]] = {}
    declared: dict[int, dict[str, Any]] = {}
    for status_text, response in list(responses.items()):
        schema = response.get("content", {}).get("application/json", {}).get("schema", {})
        if found := error_codes_of(schema):
            codes.setdefault(int(status_text), set()).update(found)
            declared[int(status_text)] = response
            del responses[status_text]
    shared: list[Refusal] = [_refusal(VideoLibraryError)]  # any unexpected error: 500 internal_error
    if route.method in BODY_METHODS:
        shared += front_door_refusals()
    if operation.get("parameters") or operation.get("requestBody"):
        shared.append(validation)
    if "{" in route.path:  # a path parameter the resolver's pattern does not take (register_error_handlers)
        shared.append(_refusal(PathNotFound))
    gateway_statuses = set(GATEWAY_STATUSES_EVERY_ROUTE)
    if route.method in BODY_METHODS:
        gateway_statuses.update(GATEWAY_STATUSES_WITH_BODY)
    if route.authorized:
        shared.append(_refusal(Unauthorized))
        gateway_statuses.add(HTTPStatus.UNAUTHORIZED)
        operation["security"] = [{"jwt": []}]
    elif not operation.get("security"):
        raise SpecError(f"{route.route_key} has no authorizer in serverless.yml and declares no security")
    for refusal in shared:
        codes.setdefault(refusal.status, set()).add(refusal.code)
    for status in sorted(set(codes) | {int(s) for s in gateway_statuses}):
        responses[str(status)] = _error_response(
            status,
            codes.get(status, ()),
            gateway=status in gateway_statuses,
            docs=docs,
            declared=declared.get(status, {}),
        )
    operation["responses"] = dict(sorted(responses.items()))
    operation["tags"] = operation.get("tags") or [route.function]


def _add_examples(operation: dict[str, Any], examples: Mapping[str, Any]) -> None:
    """Recorded examples: request bodies (by name) and answers (by status, then name)."""
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    for name, example in (examples.get("requests") or {}).items():
        if content is None:
            raise SpecError(f"a request example {name!r} for an operation without a JSON body")
        content.setdefault("examples", {})[name] = example
    for status, named in (examples.get("responses") or {}).items():
        response = operation["responses"].get(status)
        if response is None:
            raise SpecError(f"a recorded {status} answer the spec does not list: {sorted(named)}")
        response["content"]["application/json"].setdefault("examples", {}).update(named)


def load_examples(path: Path = EXAMPLES_FILE) -> dict[str, Any]:
    if not path.is_file():
        return {}
    examples: dict[str, Any] = json.loads(path.read_text())
    return examples


def spec(examples: Mapping[str, Any] | None = None, *, serverless: Path = ROOT / "serverless.yml") -> dict[str, Any]:
    """The whole API's spec: every HTTP route of ``serverless``, with ``examples`` (default: the recorded ones)."""
    examples = load_examples() if examples is None else examples
    routes = {(route.method, route.path): route for route in routes_from_serverless(serverless)}
    docs = _doc_index()
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION, "description": DESCRIPTION},
        "servers": SERVERS,
        "tags": [],
        "paths": {},
        "components": {
            "schemas": {"Error": ERROR_SCHEMA, "GatewayMessage": GATEWAY_MESSAGE_SCHEMA},
            "securitySchemes": SECURITY_SCHEMES,
        },
    }
    for module_name in sorted({_module_of(route) for route in routes.values()}):
        app: APIGatewayHttpResolver = importlib.import_module(module_name).app
        validation = validation_refusal(app)
        part = json.loads(
            app.get_openapi_json_schema(title=TITLE, version=VERSION, security_schemes=copy.deepcopy(SECURITY_SCHEMES))
        )
        for path, operations in part["paths"].items():
            for method, operation in operations.items():
                route = routes.get((method.upper(), path))
                if route is None:
                    raise SpecError(
                        f"{module_name} serves {method.upper()} {path}, which serverless.yml does not route"
                    )
                _complete_operation(
                    operation, route, validation=validation, docs={**docs, validation.code: validation.meaning}
                )
                _add_examples(operation, examples.get(route.route_key, {}))
            merged["paths"].setdefault(path, {}).update(operations)
        merged["components"]["schemas"].update(part.get("components", {}).get("schemas", {}))
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        if f'"#/components/schemas/{unused}"' not in json.dumps(merged["paths"]):
            merged["components"]["schemas"].pop(unused, None)
    used_tags = sorted({tag for ops in merged["paths"].values() for op in ops.values() for tag in op["tags"]})
    merged["tags"] = [
        {"name": tag, **({"description": TAG_DESCRIPTIONS[tag]} if tag in TAG_DESCRIPTIONS else {})}
        for tag in used_tags
    ]
    merged["paths"] = dict(sorted(merged["paths"].items()))
    merged["components"]["schemas"] = dict(sorted(merged["components"]["schemas"].items()))
    return merged


def render(examples: Mapping[str, Any] | None = None) -> str:
    return json.dumps(spec(examples), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    """``make openapi``: record the examples again, then write the spec with them."""
    from devtools import openapi_examples

    EXAMPLES_FILE.write_text(openapi_examples.render(openapi_examples.record()))
    SPEC_FILE.write_text(render(load_examples()))
    print(f"wrote {EXAMPLES_FILE.relative_to(ROOT)} and {SPEC_FILE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
