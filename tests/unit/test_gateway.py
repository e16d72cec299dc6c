"""The local API Gateway: routes from serverless.yml, events shaped as AWS sends them, the JWT gate."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devtools.gateway import Gateway, Route, routes_from_serverless, to_answer
from devtools.local_jwt import mint
from tests.conftest import load_event

SECRET = "gateway-test-secret-of-at-least-32-bytes"


def echo_gateway(*routes: tuple[str, str, bool]) -> Gateway:
    return Gateway(
        [
            Route(method, path, "echo", "tests/unit/gateway_echo.handler", authorized, 29, 256)
            for method, path, authorized in routes
        ],
        jwt_secret=SECRET,
    )


def echoed(
    gateway: Gateway,
    method: str,
    path: str,
    *,
    query: str = "",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> dict[str, Any]:
    answer = gateway.dispatch(method, path, query, headers or {}, body)
    assert answer.status == 200, answer.body
    event: dict[str, Any] = json.loads(answer.body)
    return event


def shape(value: Any, *, free: frozenset[str] = frozenset({"headers", "claims"})) -> Any:
    """The keys of a JSON document, recursively, without its values (nor the keys of free-form maps)."""
    if isinstance(value, dict):
        return {key: "map" if key in free else shape(item) for key, item in value.items()}
    return type(value).__name__


def test_routes_come_from_serverless_yml() -> None:
    routes = {(r.method, r.path): r for r in routes_from_serverless()}

    assert routes[("POST", "/webhooks/piapi")].authorized is False
    assert routes[("POST", "/webhooks/piapi")].handler == "functions/piapi_webhook/handler.handler"
    assert routes[("POST", "/api/video/save-to-library")].authorized is True
    assert routes[("POST", "/api/video/save-to-library")].timeout_s == 29


def test_events_have_the_shape_of_the_samples_in_events() -> None:
    gateway = echo_gateway(("POST", "/api/video/save-to-library", True), ("POST", "/webhooks/piapi", False))
    token = mint("alice", secret=SECRET)

    save = echoed(
        gateway,
        "POST",
        "/api/video/save-to-library",
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
        body=b'{"video_id": "v"}',
    )
    webhook = echoed(gateway, "POST", "/webhooks/piapi", headers={"x-webhook-secret": "s"}, body=b"{}")

    sample_save, sample_webhook = load_event("save_to_library"), load_event("webhook_luma_completed")
    assert shape(save) == shape(sample_save)
    assert shape(webhook) == shape(sample_webhook)
    assert save["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] == "alice"
    assert save["routeKey"] == "POST /api/video/save-to-library"


def test_path_parameters_query_cookies_and_binary_bodies() -> None:
    gateway = echo_gateway(("GET", "/api/video/{video_id}", False), ("POST", "/upload/{rest+}", False))

    event = echoed(
        gateway, "GET", "/api/video/abc%20def", query="a=1&a=2&b=", headers={"Cookie": "x=1; y=2", "X-Mixed-Case": "v"}
    )
    binary = echoed(gateway, "POST", "/upload/some/deep/path", body=b"\xff\xfe\x00binary")

    assert event["pathParameters"] == {"video_id": "abc def"}
    assert event["routeKey"] == "GET /api/video/{video_id}"
    assert event["rawQueryString"] == "a=1&a=2&b="
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["cookies"] == ["x=1", "y=2"]
    assert event["headers"]["x-mixed-case"] == "v"
    assert "cookie" not in event["headers"]
    assert binary["isBase64Encoded"] is True
    assert binary["pathParameters"] == {"rest": "some/deep/path"}


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer not-a-jwt",
        "Basic abc",
        f"Bearer {mint('alice', secret='another-secret-of-at-least-32-bytes')}",
        f"Bearer {mint('alice', secret=SECRET, ttl_s=-60)}",
    ],
    ids=["missing", "garbage", "not-bearer", "wrong-secret", "expired"],
)
def test_routes_behind_the_authorizer_answer_401_like_api_gateway(authorization: str | None) -> None:
    gateway = echo_gateway(("POST", "/api/video/save-to-library", True))
    headers = {"authorization": authorization} if authorization else {}

    answer = gateway.dispatch("POST", "/api/video/save-to-library", "", headers, b"{}")

    assert answer.status == 401
    assert json.loads(answer.body) == {"message": "Unauthorized"}


def test_unknown_routes_are_404_like_api_gateway() -> None:
    answer = echo_gateway(("POST", "/webhooks/piapi", False)).dispatch("GET", "/nope", "", {}, b"")

    assert (answer.status, json.loads(answer.body)) == (404, {"message": "Not Found"})


def test_an_answer_later_than_the_integration_timeout_is_api_gateways_503() -> None:
    # GIVEN a gateway whose integration timeout is 0.3 s (API Gateway's is 30 s) in front of a function taking 1 s
    gateway = Gateway(
        [Route("GET", "/slow", "slow", "tests/unit/gateway_echo.slow_handler", False, 29, 256)], timeout_s=0.3
    )

    quick = gateway.dispatch("GET", "/slow", "sleep=0", {}, b"")
    slow = gateway.dispatch("GET", "/slow", "sleep=1", {}, b"")

    # THEN the late answer is API Gateway's own 503, and a request in time is answered as usual
    assert (slow.status, json.loads(slow.body)) == (503, {"message": "Service Unavailable"})
    assert quick.status == 200


def test_handler_answers_become_http() -> None:
    full = to_answer(
        {"statusCode": 201, "headers": {"X-A": "1"}, "body": "aGk=", "isBase64Encoded": True, "cookies": ["c=1"]}
    )
    bare = to_answer({"result": "ok"})

    assert (full.status, full.headers, full.body, full.cookies) == (201, {"x-a": "1"}, b"hi", ["c=1"])
    assert (bare.status, json.loads(bare.body)) == (200, {"result": "ok"})


@pytest.mark.usefixtures("aws")
def test_the_real_webhook_handler_accepts_gateway_events() -> None:
    from tests.conftest import WEBHOOK_SECRET, make_video, task_of

    sample = load_event("webhook_kling3_completed")
    video = make_video(task_of(sample)["task_id"])
    gateway = Gateway(routes_from_serverless(), jwt_secret=SECRET)

    answer = gateway.dispatch(
        "POST",
        "/webhooks/piapi",
        "",
        {"x-webhook-secret": WEBHOOK_SECRET, "content-type": "application/json"},
        sample["body"].encode(),
    )

    assert (answer.status, json.loads(answer.body)) == (200, {"result": "applied"})
    from video_library import db

    record = db.get_video(video.video_id, consistent=True)
    assert record is not None and record.status == "completed"
