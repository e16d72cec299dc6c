"""JSON as this service accepts it from outside: bounded, unambiguous, and safe to hand to any parser after us.

The standard library's parser accepts what later breaks or misleads the code behind it: nesting thousands of
levels deep (it recurses once per level), integers with thousands of digits (Python refuses to convert past
4,300 and DynamoDB stores at most 38), floats such as ``1e300`` (which pydantic turns into such an integer
where a model wants one) or ``1e999`` (infinity), ``NaN`` and ``Infinity`` (not JSON at all), the same key
twice (which value wins depends on the parser), and ``\\ud800`` escapes that decode to text no UTF-8 encoder
accepts. Each is refused here with its own error code, before anything else looks at the document: numbers
must lie within ±(2**53 - 1), the range every JSON reader represents exactly.
"""

from __future__ import annotations

import json
import math
import re
from http import HTTPStatus
from typing import Any

from video_library.errors import VideoLibraryError

MAX_DEPTH = 32
# The largest integer every JSON reader represents exactly (IEEE 754 doubles; JavaScript's MAX_SAFE_INTEGER).
MAX_SAFE_INTEGER = 2**53 - 1
_MAX_INTEGER_DIGITS = len(str(MAX_SAFE_INTEGER))

# The characters that open or close strings and containers (and the escape that can hide a quote).
_STRUCTURAL = re.compile(r'["\\\[\]{}]')


class JsonRefused(VideoLibraryError):
    """A document that is not JSON this service accepts; each subclass names one reason."""

    status = HTTPStatus.BAD_REQUEST
    code = "invalid_json"


class InvalidJson(JsonRefused):
    code = "invalid_json"


class InvalidUtf8(JsonRefused):
    code = "invalid_utf8"


class TooDeep(JsonRefused):
    code = "too_deep"


class NumberOutOfRange(JsonRefused):
    code = "number_out_of_range"


class DuplicateKey(JsonRefused):
    code = "duplicate_key"


class NotAnObject(JsonRefused):
    code = "not_an_object"


def parse_object(raw: bytes, *, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """The JSON object ``raw`` holds (UTF-8), or a :class:`JsonRefused` saying why it is not acceptable."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidUtf8("the body is not valid UTF-8") from None
    document = loads(text, max_depth=max_depth)
    if not isinstance(document, dict):
        raise NotAnObject(f"a JSON object is expected, not {_kind(document)}")
    return document


def loads(text: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``text`` as JSON within the limits above; :class:`JsonRefused` otherwise."""
    _check_depth(text, max_depth)
    try:
        document = json.loads(
            text,
            parse_int=_bounded_int,
            parse_float=_bounded_float,
            parse_constant=_refuse_constant,
            object_pairs_hook=_object_without_duplicates,
        )
    except json.JSONDecodeError as exc:
        raise InvalidJson(f"the body is not valid JSON ({exc.msg} at character {exc.pos})") from None
    except RecursionError:  # not reachable after _check_depth; kept so that it can never become a 500
        raise TooDeep(f"the JSON is nested more than {max_depth} levels deep") from None
    try:
        # Escapes such as \ud800 decode to lone surrogates: valid JSON syntax, but no Unicode text.
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidUtf8("the JSON holds a \\u escape that is not a Unicode character (a lone surrogate)") from None
    return document


def _check_depth(text: str, max_depth: int) -> None:
    """Refuse nesting deeper than ``max_depth`` by scanning the text, without recursion.

    Brackets inside strings do not count. For valid JSON this is exactly the parser's nesting; where the text
    is not valid JSON, the two agree up to the point where the parser would stop with an error.
    """
    depth = 0
    in_string = False
    escaped_position = -1
    for match in _STRUCTURAL.finditer(text):
        position = match.start()
        if position == escaped_position:
            continue
        char = match.group()
        if in_string:
            if char == "\\":
                escaped_position = position + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                raise TooDeep(f"the JSON is nested more than {max_depth} levels deep")
        elif char in "]}":
            depth -= 1


def _bounded_int(digits: str) -> int:
    # The length check comes first: int() of a very long digit string is slow, or a ValueError past 4,300.
    if len(digits.lstrip("-")) > _MAX_INTEGER_DIGITS:
        raise NumberOutOfRange(f"integers must be within ±{MAX_SAFE_INTEGER}")
    value = int(digits)
    if abs(value) > MAX_SAFE_INTEGER:
        raise NumberOutOfRange(f"integers must be within ±{MAX_SAFE_INTEGER}")
    return value


def _bounded_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or abs(value) > MAX_SAFE_INTEGER:
        raise NumberOutOfRange(f"numbers must be finite and within ±{MAX_SAFE_INTEGER}")
    return value


def _refuse_constant(name: str) -> Any:
    raise InvalidJson(f"{name} is not a JSON value")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise DuplicateKey("an object names the same key twice")
    return document


def _kind(document: Any) -> str:
    if isinstance(document, list):
        return "an array"
    if isinstance(document, str):
        return "a string"
    if document is None:
        return "null"
    if isinstance(document, bool):
        return "a boolean"
    return "a number"
