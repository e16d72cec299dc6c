"""The front door (``video_library.request_gate``): every HTTP route that takes a body, through its real handler,
refuses every class of body that is not one JSON object — before any model, query or write.

Each hostile body is built from the route's own valid body (so a refusal is never an accident of a missing
field), sent as API Gateway would deliver it, and must get its documented status and error code while the
table (and, for the save, the bucket; for generate, PiAPI) stays exactly as it was. A control case sends the
valid body through the same path and sees it change the state, so "unchanged" is a finding, not a given.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from devtools.apigw import http_api_event
from devtools.fake_piapi import FakePiapi
from devtools.lambda_context import LocalLambdaContext
from tests.conftest import WEBHOOK_SECRET, load_event, make_video, task_of
from tests.save_support import SaveStack, completed_video
from video_library.request_gate import MAX_BODY_BYTES
from video_library.settings import get_settings
from video_library.strict_json import MAX_DEPTH
from video_library.webhook import MAX_DELIVERY_BYTES

JSON = "application/json"
SAMPLE_MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(range(256)) * 4


@dataclass
class Route:
    """One HTTP route that takes a body: how to call it, a body it accepts, and what it could change."""

    name: str
    method: str
    path: str
    valid_body: dict[str, Any]
    max_bytes: int
    handler: Callable[[dict[str, Any], Any], dict[str, Any]]
    state: Callable[[], Any]
    headers: dict[str, str] = field(default_factory=dict)
    claims: dict[str, Any] | None = None

    def call(
        self,
        body: bytes | str | None,
        *,
        content_type: str | None = JSON,
        extra_headers: dict[str, str] | None = None,
        base64_encoded: bool = False,
    ) -> tuple[int, dict[str, Any]]:
        headers = {**self.headers, **(extra_headers or {})}
        if content_type is not None:
            headers["content-type"] = content_type
        event = http_api_event(self.method, self.path, body=body, headers=headers, claims=self.claims)
        if base64_encoded and not event["isBase64Encoded"]:
            # API Gateway base64-encodes whatever it treats as binary, valid UTF-8 or not.
            raw = body.encode() if isinstance(body, str) else (body or b"")
            event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
        response = self.handler(event, LocalLambdaContext())
        assert response["headers"]["Content-Type"] == JSON
        return response["statusCode"], json.loads(response["body"])


def _table_items(client: Any) -> list[dict[str, Any]]:
    items = client.scan(TableName=get_settings().videos_table, ConsistentRead=True)["Items"]
    return sorted(items, key=lambda item: item["video_id"]["S"])


@pytest.fixture
def fake_piapi(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePiapi]:
    server = FakePiapi("front-door-key", delay_s=3600).start()  # no deliveries while these tests run
    monkeypatch.setenv("PIAPI_BASE_URL", server.base_url)
    monkeypatch.setenv("PIAPI_API_KEY", "front-door-key")
    monkeypatch.setenv("WEBHOOK_PUBLIC_URL", "https://api.example.com/webhooks/piapi")
    get_settings.cache_clear()
    yield server
    server.stop()


def _save_route(request: pytest.FixtureRequest) -> Route:
    from functions.save_to_library.handler import handler

    stack: SaveStack = request.getfixturevalue("stack")
    video = completed_video(stack.source.url(size=1024))
    dynamodb = stack.aws.client("dynamodb")
    return Route(
        name="save",
        method="POST",
        path="/api/video/save-to-library",
        valid_body={"video_id": video.video_id, "campaign_id": "42"},
        max_bytes=MAX_BODY_BYTES,
        handler=handler,
        state=lambda: (_table_items(dynamodb), stack.keys(), stack.unfinished_uploads()),
        headers={"authorization": "Bearer eyJ..."},
        claims={"sub": "alice"},
    )


def _generate_route(request: pytest.FixtureRequest) -> Route:
    from functions.library_api.handler import handler

    request.getfixturevalue("aws")
    piapi: FakePiapi = request.getfixturevalue("fake_piapi")
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    return Route(
        name="generate",
        method="POST",
        path="/api/video/generate",
        valid_body={"campaign_id": "42", "prompt": "a paper boat", "model": "kling", "task_type": "video_generation"},
        max_bytes=MAX_BODY_BYTES,
        handler=handler,
        state=lambda: (_table_items(dynamodb), sorted(piapi.tasks)),
        claims={"sub": "alice"},
    )


def _webhook_route(request: pytest.FixtureRequest) -> Route:
    from functions.piapi_webhook.handler import handler

    request.getfixturevalue("aws")
    event = load_event("webhook_kling3_completed")
    make_video(task_of(event)["task_id"])
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    return Route(
        name="webhook",
        method="POST",
        path="/webhooks/piapi",
        valid_body=json.loads(event["body"]),
        max_bytes=MAX_DELIVERY_BYTES,
        handler=handler,
        state=lambda: _table_items(dynamodb),
        headers={"x-webhook-secret": WEBHOOK_SECRET},
    )


@pytest.fixture(params=["save", "generate", "webhook"])
def route(request: pytest.FixtureRequest) -> Route:
    build = {"save": _save_route, "generate": _generate_route, "webhook": _webhook_route}[request.param]
    return build(request)


def _dumps(body: dict[str, Any]) -> str:
    return json.dumps(body)


def _with_extra(body: dict[str, Any], extra_json: str) -> str:
    """The valid body's JSON with one more member, written verbatim (it may be what json.dumps cannot write)."""
    return _dumps(body)[:-1] + f', "extra": {extra_json}}}'


def _multipart(body: dict[str, Any], boundary: str = "XyZ") -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in body.items()
        if not isinstance(value, dict)
    ]
    return ("".join(parts) + f"--{boundary}--\r\n").encode()


@dataclass(frozen=True)
class Hostile:
    """A body the front door must refuse: how to build it from a valid one, how it is sent, what answers."""

    build: Callable[[dict[str, Any], int], bytes | str | None]
    status: int
    code: str
    content_type: str | None = JSON
    extra_headers: dict[str, str] = field(default_factory=dict)
    base64_encoded: bool = False


HOSTILE: dict[str, Hostile] = {
    # -- nesting: refused from the raw text, before any parser recurses --------------------------------------
    "deep-objects": Hostile(lambda b, _: '{"a":' * 5000 + "1" + "}" * 5000, 400, "too_deep"),
    "deep-arrays-unclosed": Hostile(lambda b, _: "[" * 50_000, 400, "too_deep"),
    "deep-member-in-valid-body": Hostile(
        lambda b, _: _with_extra(b, "[" * MAX_DEPTH + "]" * MAX_DEPTH), 400, "too_deep"
    ),
    # -- text that is not UTF-8, or JSON escapes that are not characters -------------------------------------
    "invalid-utf8": Hostile(lambda b, _: _dumps(b)[:-1].encode() + b', "extra": "\xff\xfe"}', 400, "invalid_utf8"),
    "overlong-utf8": Hostile(lambda b, _: _dumps(b)[:-1].encode() + b', "extra": "\xc0\xaf"}', 400, "invalid_utf8"),
    "utf16-body": Hostile(lambda b, _: _dumps(b).encode("utf-16"), 400, "invalid_utf8"),
    "lone-surrogate-escape": Hostile(lambda b, _: _with_extra(b, '"\\ud800"'), 400, "invalid_utf8"),
    "undeclared-gzip": Hostile(lambda b, _: gzip.compress(_dumps(b).encode()), 400, "invalid_utf8"),
    # -- numbers ---------------------------------------------------------------------------------------------
    "integer-5000-digits": Hostile(lambda b, _: _with_extra(b, "1" + "0" * 5000), 400, "number_out_of_range"),
    "integer-2**53": Hostile(lambda b, _: _with_extra(b, str(2**53)), 400, "number_out_of_range"),
    "negative-integer-2**53": Hostile(lambda b, _: _with_extra(b, str(-(2**53))), 400, "number_out_of_range"),
    "float-overflowing-to-infinity": Hostile(lambda b, _: _with_extra(b, "1e999"), 400, "number_out_of_range"),
    # a float is read as an int where a model wants one: 1e300 would be a 301-digit integer
    "float-beyond-2**53": Hostile(lambda b, _: _with_extra(b, "1e300"), 400, "number_out_of_range"),
    "NaN": Hostile(lambda b, _: _with_extra(b, "NaN"), 400, "invalid_json"),
    "Infinity": Hostile(lambda b, _: _with_extra(b, "-Infinity"), 400, "invalid_json"),
    # -- content types other than JSON, whatever the body --------------------------------------------------
    "text-plain": Hostile(lambda b, _: _dumps(b), 415, "unsupported_media_type", content_type="text/plain"),
    "no-content-type": Hostile(lambda b, _: _dumps(b), 415, "unsupported_media_type", content_type=None),
    "xml": Hostile(
        lambda b, _: "<request>" + "".join(f"<{k}>{v}</{k}>" for k, v in b.items()) + "</request>",
        415,
        "unsupported_media_type",
        content_type="application/xml",
    ),
    "video-body": Hostile(
        lambda b, _: SAMPLE_MP4_HEAD, 415, "unsupported_media_type", content_type="video/mp4", base64_encoded=True
    ),
    "form-urlencoded": Hostile(
        lambda b, _: "&".join(f"{k}={v}" for k, v in b.items() if not isinstance(v, dict)),
        415,
        "unsupported_media_type",
        content_type="application/x-www-form-urlencoded",
    ),
    "multipart-with-boundary": Hostile(
        lambda b, _: _multipart(b),
        415,
        "unsupported_media_type",
        content_type="multipart/form-data; boundary=XyZ",
        base64_encoded=True,
    ),
    "multipart-without-boundary": Hostile(
        lambda b, _: _multipart(b), 415, "unsupported_media_type", content_type="multipart/form-data"
    ),
    "json-in-latin-1": Hostile(
        lambda b, _: _dumps(b), 415, "unsupported_media_type", content_type="application/json; charset=iso-8859-1"
    ),
    "json-with-extra-parameter": Hostile(
        lambda b, _: _dumps(b), 415, "unsupported_media_type", content_type="application/json; charset=utf-8; v=2"
    ),
    "json-lookalike-type": Hostile(
        lambda b, _: _dumps(b), 415, "unsupported_media_type", content_type="application/json-patch+json"
    ),
    "two-content-types": Hostile(
        lambda b, _: _dumps(b), 415, "unsupported_media_type", content_type="application/json, text/plain"
    ),
    "declared-gzip": Hostile(
        lambda b, _: gzip.compress(_dumps(b).encode()),
        415,
        "unsupported_media_type",
        extra_headers={"content-encoding": "gzip"},
    ),
    # -- size ------------------------------------------------------------------------------------------------
    "over-the-cap": Hostile(lambda b, cap: _with_extra(b, '"' + "x" * cap + '"'), 413, "payload_too_large"),
    "over-the-cap-base64": Hostile(
        lambda b, cap: _with_extra(b, '"' + "x" * cap + '"'), 413, "payload_too_large", base64_encoded=True
    ),
    # -- JSON that is not one object: never unwrapped, never acted on -------------------------------------
    "valid-body-in-an-array": Hostile(lambda b, _: json.dumps([b]), 400, "not_an_object"),
    "empty-array": Hostile(lambda b, _: "[]", 400, "not_an_object"),
    "string": Hostile(lambda b, _: json.dumps(_dumps(b)), 400, "not_an_object"),
    "number": Hostile(lambda b, _: "42", 400, "not_an_object"),
    "null": Hostile(lambda b, _: "null", 400, "not_an_object"),
    "true": Hostile(lambda b, _: "true", 400, "not_an_object"),
    # -- not JSON at all -----------------------------------------------------------------------------------
    "broken-json": Hostile(lambda b, _: _dumps(b)[:-1], 400, "invalid_json"),
    "trailing-garbage": Hostile(lambda b, _: _dumps(b) + " {}", 400, "invalid_json"),
    "byte-order-mark": Hostile(lambda b, _: "\ufeff" + _dumps(b), 400, "invalid_json"),
    "single-quotes": Hostile(lambda b, _: _dumps(b).replace('"', "'"), 400, "invalid_json"),
    "duplicate-key": Hostile(
        lambda b, _: _dumps(b)[:-1] + f", {json.dumps(next(iter(b)))}: {json.dumps(next(iter(b.values())))}}}",
        400,
        "duplicate_key",
    ),
    "empty-body": Hostile(lambda b, _: "", 400, "empty_body"),
    "no-body": Hostile(lambda b, _: None, 400, "empty_body"),
}


def _send_hostile(route: Route, case: Hostile) -> tuple[int, dict[str, Any]]:
    return route.call(
        case.build(route.valid_body, route.max_bytes),
        content_type=case.content_type,
        extra_headers=case.extra_headers,
        base64_encoded=case.base64_encoded,
    )


def test_every_hostile_body_is_refused_with_its_code_and_changes_nothing(route: Route) -> None:
    # GIVEN a route with state its valid body would change
    mismatches = []
    for name, case in HOSTILE.items():
        before = route.state()

        # WHEN each hostile variant of that body arrives
        status, body = _send_hostile(route, case)

        # THEN it is refused with its documented status and error body, and nothing changed
        error = body.get("error") or {}
        outcome = (status, error.get("code"), bool(error.get("message")), route.state() == before)
        if outcome != (case.status, case.code, True, True):
            mismatches.append(f"{name}: expected {case.status} {case.code}, got {outcome} {body}")
    assert not mismatches, "\n".join(mismatches)


def test_the_valid_body_through_the_same_path_does_change_the_state(route: Route) -> None:
    # GIVEN the state the hostile cases leave alone
    before = route.state()

    # WHEN the route's valid body is sent exactly as the hostile ones are
    status, body = route.call(_dumps(route.valid_body))

    # THEN the route acts on it (so the hostile cases' "unchanged" means refused, not ignored)
    assert status in (200, 202), body
    assert route.state() != before


def test_json_in_every_accepted_form_reaches_the_route(route: Route) -> None:
    # GIVEN bodies at the edges of what the front door accepts
    padding = route.max_bytes - len(_with_extra(route.valid_body, '""'))
    at_the_cap = _with_extra(route.valid_body, '"' + "x" * padding + '"')
    assert len(at_the_cap.encode()) == route.max_bytes
    deepest = _with_extra(route.valid_body, "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1))  # the body is level 1
    largest_integers = _with_extra(route.valid_body, f"[{2**53 - 1}, {-(2**53 - 1)}, 9.0e15, 1e-300, -0.0]")
    accepted: dict[str, tuple[str, str, bool]] = {
        "application/json": (_dumps(route.valid_body), "application/json", False),
        "any case": (_dumps(route.valid_body), "Application/JSON", False),
        "utf-8 charset": (_dumps(route.valid_body), "application/json; charset=utf-8", False),
        "utf-8 charset, no space, upper case": (_dumps(route.valid_body), "application/json;charset=UTF-8", False),
        "quoted charset": (_dumps(route.valid_body), 'application/json; charset="utf-8"', False),
        "base64-encoded by API Gateway": (_dumps(route.valid_body), JSON, True),
        "exactly the size cap": (at_the_cap, JSON, False),
        "exactly the size cap, base64": (at_the_cap, JSON, True),
        "nested to the depth cap": (deepest, JSON, False),
        "the largest safe integers": (largest_integers, JSON, False),
        "non-ASCII text": (_with_extra(route.valid_body, '"Grüße, 世界 \\ud83c\\udf0a"'), JSON, False),
    }
    refused = []
    for name, (body_text, content_type, encoded) in accepted.items():
        # WHEN each is sent
        status, body = route.call(body_text, content_type=content_type, base64_encoded=encoded)

        # THEN the route answers it (a first call acts, repeats find the work done: both are success)
        if status not in (200, 202):
            refused.append(f"{name}: {status} {body}")
    assert not refused, "\n".join(refused)


def test_an_array_wrapped_webhook_delivery_is_not_applied(request: pytest.FixtureRequest) -> None:
    """The attack the resolver let through: one delivery inside a one-element array, unwrapped and applied."""
    route = _webhook_route(request)
    record_before = route.state()

    status, body = route.call(json.dumps([route.valid_body]))

    assert (status, body["error"]["code"]) == (400, "not_an_object")
    assert route.state() == record_before
    assert all(item["status"]["S"] == "pending" for item in route.state())


def test_a_wrong_webhook_secret_is_401_before_the_body_is_looked_at(request: pytest.FixtureRequest) -> None:
    route = _webhook_route(request)
    route.headers = {"x-webhook-secret": "guess"}

    for case in (HOSTILE["deep-objects"], HOSTILE["text-plain"], HOSTILE["over-the-cap"], HOSTILE["empty-body"]):
        status, body = _send_hostile(route, case)
        assert (status, body["error"]["code"]) == (401, "unauthorized")


def test_no_verified_user_is_401_before_the_body_is_looked_at(request: pytest.FixtureRequest) -> None:
    route = _generate_route(request)
    route.claims = None

    for case in (HOSTILE["deep-objects"], HOSTILE["text-plain"], HOSTILE["valid-body-in-an-array"]):
        status, body = _send_hostile(route, case)
        assert (status, body["error"]["code"]) == (401, "unauthorized")


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize(
    ("body", "content_type"),
    [("garbage {", "text/plain"), ("[" * 10_000, JSON), (SAMPLE_MP4_HEAD, "video/mp4")],
)
def test_a_get_carrying_a_body_is_answered_as_if_it_had_none(body: bytes | str, content_type: str) -> None:
    from functions.library_api.handler import handler

    event = http_api_event(
        "GET", "/api/video/library", body=body, headers={"content-type": content_type}, claims={"sub": "alice"}
    )

    response = handler(event, LocalLambdaContext())

    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {
        "items": [],
        "next_cursor": None,
        "counts": {"saved_videos": 0, "saved_bytes": 0},
    }
