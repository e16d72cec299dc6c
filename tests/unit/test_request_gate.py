"""request_gate: what the resolver is handed, and what never reaches it."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from devtools.apigw import http_api_event
from video_library.errors import VideoLibraryError
from video_library.request_gate import MAX_BODY_BYTES, admit_json_body


def post(body: bytes | str | None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return http_api_event("POST", "/api/video/generate", body=body, headers=headers)


def refusal(event: dict[str, Any], **kwargs: Any) -> tuple[int, str]:
    with pytest.raises(VideoLibraryError) as refused:
        admit_json_body(event, **kwargs)
    return int(refused.value.status), refused.value.code


def test_an_accepted_body_reaches_the_resolver_as_checked_text_with_a_canonical_content_type() -> None:
    # GIVEN a base64-encoded JSON body with its content headers in any case
    event = post(b"", {"Content-Type": "Application/JSON; Charset=UTF-8", "content-length": "99", "x-other": "kept"})
    event["body"], event["isBase64Encoded"] = base64.b64encode('{"prompt": "Grüße"}'.encode()).decode(), True
    original = copy.deepcopy(event)

    # WHEN the gate admits it
    admitted = admit_json_body(event)

    # THEN the resolver gets the decoded text, one canonical content type and no stale length; the input is intact
    assert admitted["body"] == '{"prompt": "Grüße"}'
    assert admitted["isBase64Encoded"] is False
    assert admitted["headers"] == {"content-type": "application/json", "x-other": "kept"}
    assert event == original


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "DELETE"])
def test_methods_without_a_body_have_any_body_removed_instead_of_checked(method: str) -> None:
    event = http_api_event(method, "/api/video/library", body=b"\xff" + b"[" * 100_000, headers={"content-type": "x/y"})

    admitted = admit_json_body(event)

    assert admitted["body"] is None
    assert admitted["isBase64Encoded"] is False


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"content-type": "application/json"}, None),
        ({"content-type": "application/json", "content-encoding": "identity"}, None),
        ({"content-type": "application/json", "Content-Type": "application/json"}, None),
        ({"content-type": "application/json", "Content-Type": "text/plain"}, 415),
        ({"content-type": "application/json", "content-encoding": "gzip"}, 415),
        ({"content-type": "application/json", "Content-Encoding": "br"}, 415),
        ({"content-type": "application/json; charset=utf-16"}, 415),
        ({"content-type": "application/json; boundary=x"}, 415),
        ({"content-type": ""}, 415),
        ({"content-type": ";"}, 415),
        ({}, 415),
    ],
)
def test_only_json_in_utf8_without_encoding_is_admitted(headers: dict[str, str], expected: int | None) -> None:
    event = {**post('{"a": 1}'), "headers": headers}  # headers exactly as given, cases and duplicates included

    if expected is None:
        assert json.loads(admit_json_body(event)["body"]) == {"a": 1}
    else:
        assert refusal(event) == (expected, "unsupported_media_type")


def test_the_size_cap_counts_bytes_after_base64_decoding() -> None:
    fits = '{"a": "' + "é" * ((MAX_BODY_BYTES - 10) // 2) + '"}'
    assert len(fits.encode()) <= MAX_BODY_BYTES
    too_big = '{"a": "' + "é" * (MAX_BODY_BYTES // 2) + '"}'  # fewer characters than the cap, more bytes
    assert len(too_big) < MAX_BODY_BYTES < len(too_big.encode())
    json_headers = {"content-type": "application/json"}

    assert admit_json_body(post(fits, json_headers))["body"] == fits
    assert refusal(post(too_big, json_headers)) == (413, "payload_too_large")
    encoded = post(b"", json_headers) | {"isBase64Encoded": True, "body": base64.b64encode(too_big.encode()).decode()}
    assert refusal(encoded) == (413, "payload_too_large")
    assert refusal(post('{"a": 1}', json_headers), max_bytes=7) == (413, "payload_too_large")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"isBase64Encoded": True, "body": "not base64!"}, (400, "invalid_base64")),
        ({"isBase64Encoded": True, "body": "e30"}, (400, "invalid_base64")),  # padding missing
        ({"isBase64Encoded": True, "body": base64.b64encode(b"\xff\xfe").decode()}, (400, "invalid_utf8")),
        ({"body": '{"a": "\ud800"}'}, (400, "invalid_utf8")),  # a lone surrogate in the event's own text
        ({"body": {"a": 1}}, (400, "invalid_json")),  # not text at all (no API Gateway event has this)
        ({"body": ""}, (400, "empty_body")),
        ({"isBase64Encoded": True, "body": ""}, (400, "empty_body")),
        ({"body": None}, (400, "empty_body")),
        ({"body": "[" * 40}, (400, "too_deep")),
        ({"body": '[{"a": 1}]'}, (400, "not_an_object")),
    ],
)
def test_bodies_that_are_not_one_json_object_are_refused(change: dict[str, Any], expected: tuple[int, str]) -> None:
    event = post("", {"content-type": "application/json"}) | change

    assert refusal(event) == expected


def test_an_event_without_a_method_is_checked_as_one_with_a_body() -> None:
    event = {"headers": {"content-type": "text/plain"}, "body": "x"}

    assert refusal(event) == (415, "unsupported_media_type")


def test_refusals_carry_the_projects_error_body() -> None:
    with pytest.raises(VideoLibraryError) as refused:
        admit_json_body(post("x", {"content-type": "text/xml"}))

    body = refused.value.to_body()
    assert body["error"]["code"] == "unsupported_media_type"
    assert body["error"]["message"]
    assert body["error"]["accepted"] == ["application/json", "application/json; charset=utf-8"]
