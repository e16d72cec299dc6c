"""cursor: DynamoDB's LastEvaluatedKey out as an opaque string, and back only as it went out."""

from __future__ import annotations

import pytest

from video_library.cursor import BadCursor, decode_cursor, encode_cursor

SHAPE = {"user_id": "S", "created_at": "S", "video_id": "S"}
KEY = {
    "video_id": {"S": "0f8e7d6c5b4a49388271605f4e3d2c1b"},
    "user_id": {"S": "jörg+1@example.com"},
    "created_at": {"S": "2026-11-25T09:03:41.500000+0000"},
}


def test_a_key_goes_out_opaque_and_comes_back_the_same() -> None:
    cursor = encode_cursor(KEY)

    assert cursor is not None
    assert cursor.isascii() and "=" not in cursor and "+" not in cursor and "/" not in cursor
    assert decode_cursor(cursor, SHAPE) == KEY


def test_no_key_is_no_cursor_and_no_cursor_is_the_first_page() -> None:
    assert encode_cursor(None) is None
    assert encode_cursor({}) is None
    assert decode_cursor(None, SHAPE) is None
    assert decode_cursor("", SHAPE) is None


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("42", True),
        ("-0.5", True),
        ("1e10", True),
        ("0", True),
        ("9.9e125", True),
        ("1e-130", True),
        ("", False),
        ("42abc", False),
        ("NaN", False),
        ("1" * 39, False),
        # shaped like a number, outside what DynamoDB stores: it would refuse the query (a 500, not a 400)
        ("1e126", False),
        ("-1e999", False),
        ("1e-131", False),
    ],
)
def test_number_attributes_must_hold_a_dynamodb_number(value: str, accepted: bool) -> None:
    cursor = encode_cursor({"n": {"N": value}})
    assert cursor is not None

    if accepted:
        assert decode_cursor(cursor, {"n": "N"}) == {"n": {"N": value}}
    else:
        with pytest.raises(BadCursor):
            decode_cursor(cursor, {"n": "N"})


def test_a_key_of_another_shape_is_refused() -> None:
    cursor = encode_cursor(KEY)
    assert cursor is not None

    with pytest.raises(BadCursor):
        decode_cursor(cursor, {"user_campaign": "S", "created_at": "S", "video_id": "S"})
    with pytest.raises(BadCursor):
        decode_cursor(cursor, {"user_id": "N", "created_at": "S", "video_id": "S"})
