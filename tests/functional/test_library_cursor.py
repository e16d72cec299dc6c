"""GET /api/video/library?cursor=...: a cursor is taken back only exactly as the listing issued it.

Every tampered cursor is a 400 with the project's error body (never a 500, never a Query DynamoDB refuses);
a well-formed cursor for the caller's own listing still pages, as it should without a signing key.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.apigw import http_api_event
from devtools.lambda_context import LocalLambdaContext
from functions.library_api.handler import handler
from video_library import db
from video_library.cursor import MAX_CURSOR_CHARS
from video_library.models import NewVideo

pytestmark = pytest.mark.usefixtures("aws")

Key = dict[str, Any]


def listing(user: str, query: str) -> tuple[int, dict[str, Any]]:
    event = http_api_event("GET", "/api/video/library", query=query, claims={"sub": user})
    response = handler(event, LocalLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def cursor_of(key: object, *, separators: tuple[str, str] = (",", ":")) -> str:
    """A cursor written the way the API writes one, around any JSON value."""
    return base64.urlsafe_b64encode(json.dumps(key, separators=separators).encode()).decode().rstrip("=")


def key_of(cursor: str) -> Key:
    key: Key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    return key


@pytest.fixture
def issued() -> str:
    """A cursor the API really issued: alice's listing, one video a page, three videos."""
    now = datetime.now(UTC)
    for minutes in range(3):
        db.create_video(
            NewVideo(user_id="alice", campaign_id="42", prompt="p", created_at=now - timedelta(minutes=minutes))
        )
    status, page = listing("alice", "limit=1")
    assert status == 200 and page["next_cursor"]
    cursor: str = page["next_cursor"]
    assert set(key_of(cursor)) == {"user_id", "created_at", "video_id"}
    return cursor


def changed(**values: object) -> Callable[[Key], object]:
    return lambda key: key | values


TAMPERED: dict[str, Callable[[Key], object]] = {
    "hash-key-as-number": changed(user_id={"N": "1"}),
    "range-key-as-number": changed(created_at={"N": "1764061200"}),
    "value-not-an-attribute": changed(video_id="abc"),
    "attribute-with-two-types": lambda key: key | {"video_id": key["video_id"] | {"N": "1"}},
    "attribute-value-not-text": changed(video_id={"S": 5}),
    "attribute-value-a-list": changed(video_id={"S": ["a"]}),
    "attribute-value-null": changed(video_id={"S": None}),
    "binary-attribute": changed(video_id={"B": "YWJj"}),
    "empty-key-value": changed(created_at={"S": ""}),
    "overlong-key-value": changed(video_id={"S": "v" * 1025}),
    "lone-surrogate": changed(video_id={"S": "\ud800"}),
    "missing-key": lambda key: {name: value for name, value in key.items() if name != "video_id"},
    "extra-key": changed(status={"S": "completed"}),
    "campaign-listing-key": lambda key: {
        ("user_campaign" if name == "user_id" else name): value for name, value in key.items()
    },
    "deeply-nested-value": changed(video_id={"S": [[[[[[[[]]]]]]]]}),
    "very-deep-json": lambda key: json.loads("[" * 500 + "]" * 500),
    "array": lambda key: [key],
    "null": lambda key: None,
    "number": lambda key: 10**30,
    "string": lambda key: "alice",
}


@pytest.mark.parametrize("name", TAMPERED)
def test_a_cursor_with_the_wrong_keys_or_value_shapes_is_400(issued: str, name: str) -> None:
    # GIVEN a cursor the API issued, tampered with
    tampered = cursor_of(TAMPERED[name](key_of(issued)))

    # WHEN it is used to page
    status, body = listing("alice", f"limit=1&cursor={tampered}")

    # THEN it is refused as a cursor the API did not hand out
    assert (status, body["error"]["code"]) == (400, "bad_request"), body
    assert body["error"]["message"]


def base64_variants(cursor: str) -> dict[str, str]:
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    return {
        "padded": cursor + "=" * (-len(cursor) % 4 or 4),
        "standard-alphabet": base64.b64encode(raw + b" ").decode(),  # '+' and '/' are not ours
        "spaced-json": cursor_of(key_of(cursor), separators=(", ", ": ")),
        "escaped-json": base64.urlsafe_b64encode(raw.replace(b'"S"', b'"\\u0053"')).decode().rstrip("="),
        "trailing-bits": cursor[:-1] + ("B" if cursor[-1] == "A" else "A"),
        "truncated": cursor[:-5],
        "one-char-too-many": cursor + "A",
        "not-base64": "%25%25%25",
        "not-json": base64.urlsafe_b64encode(b"\xff\xfe{").decode().rstrip("="),
        "percent-encoded-newline": cursor + "%0A",
    }


@pytest.mark.parametrize(
    "variant",
    [
        "padded",
        "standard-alphabet",
        "spaced-json",
        "escaped-json",
        "trailing-bits",
        "truncated",
        "one-char-too-many",
        "not-base64",
        "not-json",
        "percent-encoded-newline",
    ],
)
def test_the_same_key_written_any_other_way_is_400(issued: str, variant: str) -> None:
    forged = base64_variants(issued)[variant]
    assert forged != issued

    status, body = listing("alice", f"limit=1&cursor={forged}")

    assert (status, body["error"]["code"]) == (400, "bad_request"), body


def test_an_overlong_cursor_is_refused_before_decoding(issued: str) -> None:
    status, body = listing("alice", f"limit=1&cursor={'A' * (MAX_CURSOR_CHARS + 1)}")

    assert status in (400, 422)
    assert body["error"]["code"] in ("bad_request", "invalid_request")


def test_a_cursor_from_another_users_listing_is_400(issued: str) -> None:
    status, body = listing("bob", f"limit=1&cursor={issued}")

    assert (status, body["error"]["code"]) == (400, "bad_request")


def test_the_issued_cursor_pages_on_and_a_well_formed_one_for_the_callers_own_listing_is_honoured(
    issued: str,
) -> None:
    # GIVEN the cursor as issued, and one written by hand for alice's own listing (no key signs cursors)
    handmade = key_of(issued) | {"video_id": {"S": "0" * 32}}

    # WHEN both are used to page
    status, page = listing("alice", f"limit=1&cursor={issued}")
    handmade_status, _ = listing("alice", f"limit=1&cursor={cursor_of(handmade)}")

    # THEN both are answered: ownership is the hash key's check, not the cursor's secrecy
    assert status == 200 and len(page["items"]) == 1
    assert handmade_status == 200
