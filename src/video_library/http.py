"""What every HTTP handler shares: JSON answers, the one place where errors become answers, and the declaration
of the answers a route gives (its OpenAPI ``responses``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from video_library.errors import Unauthorized, VideoLibraryError
from video_library.observability import logger
from video_library.request_gate import admit_json_body


class PathNotFound(VideoLibraryError):
    """The path names nothing: a path parameter holds a character the route's pattern does not take."""

    status = HTTPStatus.NOT_FOUND
    code = "not_found"


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    """An API Gateway HTTP API (payload v2) answer, for the few answers given before a resolver runs."""
    return {
        "statusCode": int(status),
        "headers": {"Content-Type": content_types.APPLICATION_JSON, **(headers or {})},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **details}}


def _validation_answer(exc: RequestValidationError, status: HTTPStatus) -> Response[dict[str, Any]]:
    problems = exc.errors()
    if any(problem.get("type") == "json_invalid" for problem in problems):
        return Response(
            status_code=HTTPStatus.BAD_REQUEST,
            content_type=content_types.APPLICATION_JSON,
            body=error_body("invalid_json", "the request body is not valid JSON"),
        )
    # Where and what, never the offending input: it may hold secrets (the webhook body echoes one).
    fields = [
        {"loc": [str(part) for part in problem.get("loc", ())], "type": problem.get("type"), "msg": problem.get("msg")}
        for problem in problems
    ]
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=error_body("invalid_request", "the request does not have the expected shape", fields=fields),
    )


def caller_id(event: Mapping[str, Any]) -> str:
    """The user API Gateway's JWT authorizer verified (the ``sub`` claim); Unauthorized when there is none."""
    claims = ((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt", {}).get("claims") or {}
    subject = claims.get("sub") if isinstance(claims, Mapping) else None
    if not isinstance(subject, str) or not subject:
        raise Unauthorized("sign in first: the request carries no verified user")
    return subject


def refusal(exc: VideoLibraryError) -> dict[str, Any]:
    """The answer to a request refused before the resolver ran (logged like the resolver's refusals)."""
    logger.warning("request refused", extra={"error_code": exc.code, "status": int(exc.status)})
    return json_response(exc.status, exc.to_body(), exc.headers())


def resolve_for_signed_in_user(app: APIGatewayHttpResolver, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answer 401 unless API Gateway verified a user, then refuse any body that is not a JSON object
    (``request_gate``), both before the resolver validates anything; else resolve.

    (Powertools validates the request before any middleware runs, so neither can be one.)
    """
    try:
        caller_id(event)
        admitted = admit_json_body(event)
    except VideoLibraryError as exc:
        return refusal(exc)
    return app.resolve(admitted, context)


def register_error_handlers(
    app: APIGatewayHttpResolver, *, validation_status: HTTPStatus = HTTPStatus.UNPROCESSABLE_ENTITY
) -> None:
    """Map domain and validation errors to JSON answers, once per resolver."""

    @app.exception_handler(VideoLibraryError)
    def _domain_error(exc: VideoLibraryError) -> Response[dict[str, Any]]:
        log = logger.warning if exc.status < HTTPStatus.INTERNAL_SERVER_ERROR else logger.error
        log("request refused", extra={"error_code": exc.code, "status": int(exc.status)})
        return Response(
            status_code=exc.status,
            content_type=content_types.APPLICATION_JSON,
            body=exc.to_body(),
            headers=exc.headers() or None,
        )

    @app.exception_handler(RequestValidationError)
    def _invalid_request(exc: RequestValidationError) -> Response[dict[str, Any]]:
        return _validation_answer(exc, validation_status)

    # API Gateway routes {video_id} whatever it holds; Powertools' patterns take fewer characters (no backtick,
    # quote, backslash, non-ASCII letter...), and without this its NotFoundError would reach the catch-all: a 500.
    @app.not_found
    def _no_such_path(exc: NotFoundError) -> Response[dict[str, Any]]:
        problem = PathNotFound("nothing here: the path does not name anything this API has")
        logger.warning("request refused", extra={"error_code": problem.code, "status": int(problem.status)})
        return Response(status_code=problem.status, content_type=content_types.APPLICATION_JSON, body=problem.to_body())

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response[dict[str, Any]]:
        # Still JSON, never the details: they are in the log (with the request id), not in the answer.
        logger.exception("unexpected error")
        return Response(
            status_code=HTTPStatus.INTERNAL_SERVER_ERROR,
            content_type=content_types.APPLICATION_JSON,
            body=error_body("internal_error", "something went wrong on our side; please try again"),
        )


# The component every error answer's schema refers to (devtools/openapi.py defines it in the spec).
ERROR_SCHEMA_REF = "#/components/schemas/Error"


def error_schema(codes: Iterable[str]) -> dict[str, Any]:
    """The JSON schema of an error answer (``{"error": {"code", "message", ...}}``) whose code is one of ``codes``."""
    return {
        "allOf": [{"$ref": ERROR_SCHEMA_REF}],
        "properties": {"error": {"properties": {"code": {"enum": sorted(set(codes))}}}},
    }


def error_codes_of(schema: Mapping[str, Any]) -> list[str]:
    """The codes an :func:`error_schema` allows (empty for any other schema)."""
    try:
        codes = schema["properties"]["error"]["properties"]["code"]["enum"]
    except (KeyError, TypeError):
        return []
    return [str(code) for code in codes]


def route_answers(
    success: Mapping[int, str | OpenAPIResponse], *refusals: type[VideoLibraryError]
) -> dict[int, OpenAPIResponse]:
    """A route's ``responses=``: its successes and the refusals its own logic raises, by their error classes.

    A success given as a description has the route's return type as its body. The refusals every route shares
    (the front door, the authorizer, request validation, unexpected errors, API Gateway's own answers) are not
    listed here: the spec generator adds them to every route they apply to.
    """
    answers: dict[int, OpenAPIResponse] = {
        status: {"description": answer} if isinstance(answer, str) else answer for status, answer in success.items()
    }
    by_status: dict[int, list[str]] = {}
    for refusal in refusals:
        by_status.setdefault(int(refusal.status), []).append(refusal.code)
    for status, codes in sorted(by_status.items()):
        answers[status] = {
            "description": HTTPStatus(status).phrase,
            "content": {content_types.APPLICATION_JSON: {"schema": error_schema(codes)}},
        }
    return answers
