"""Pagination cursors: DynamoDB's LastEvaluatedKey handed out opaque, and taken back only as it was issued.

A cursor is the key, as JSON, in unpadded URL-safe base64. Nothing signs it (no key is configured for that,
and ownership is enforced where it is used: the listing checks the cursor's hash key against the caller's),
so everything else about it is checked here: the key names, each value's DynamoDB shape (``{"S": str}`` or
``{"N": str}``, as LastEvaluatedKey has them), non-empty and bounded values, and the exact encoding this
module produces. A tampered cursor is a :class:`BadCursor`, never a malformed request to DynamoDB.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from video_library.strict_json import JsonRefused, parse_object

MAX_CURSOR_CHARS = 2048
# DynamoDB caps a partition key at 2,048 bytes and a sort key at 1,024; our keys are far shorter.
MAX_VALUE_CHARS = 1024

KeyType = Literal["S", "N"]

_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_DYNAMODB_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]{0,37})(?:\.[0-9]{1,38})?(?:[eE][+-]?[0-9]{1,3})?")
# DynamoDB's number range: magnitudes from 1E-130 to under 1E+126 (and zero); anything else it refuses outright.
_SMALLEST_NUMBER = Decimal("1E-130")
_NUMBER_BOUND = Decimal("1E+126")


class BadCursor(ValueError):
    """A pagination cursor that this API did not hand out (or that belongs to another query)."""


def encode_cursor(key: Mapping[str, Any] | None) -> str | None:
    """The opaque cursor for ``key`` (DynamoDB's LastEvaluatedKey); None when there is no next page."""
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, shape: Mapping[str, KeyType]) -> dict[str, dict[str, str]] | None:
    """The key a cursor carries, if it has exactly the attributes and types of ``shape``; None for no cursor.

    Raises :class:`BadCursor` for anything :func:`encode_cursor` would not have produced for such a key.
    """
    if not cursor:
        return None
    if len(cursor) > MAX_CURSOR_CHARS or not _BASE64URL.fullmatch(cursor):
        raise BadCursor("the cursor is not one this API handed out")
    try:
        key = parse_object(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)), max_depth=2)
    except (binascii.Error, JsonRefused):
        raise BadCursor("the cursor is not one this API handed out") from None
    if set(key) != set(shape) or not all(_has_shape(key[name], kind) for name, kind in shape.items()):
        raise BadCursor("the cursor is not one this API handed out")
    if encode_cursor(key) != cursor:  # the same key written another way (spacing, escapes, padding bits)
        raise BadCursor("the cursor is not one this API handed out")
    return key


def _has_shape(value: object, kind: KeyType) -> bool:
    if not isinstance(value, dict) or set(value) != {kind}:
        return False
    text = value[kind]
    if not isinstance(text, str) or not 0 < len(text) <= MAX_VALUE_CHARS:
        return False
    if kind == "S":
        return True
    if _DYNAMODB_NUMBER.fullmatch(text) is None:
        return False
    magnitude = abs(Decimal(text))
    return magnitude == 0 or _SMALLEST_NUMBER <= magnitude < _NUMBER_BOUND
