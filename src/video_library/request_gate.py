"""The front door every HTTP handler runs before Powertools' resolver: request bodies are JSON objects, or refused.

The resolver is lenient in ways an API must not be: it parses form and multipart bodies into the route's
model, unwraps a one-element JSON array, and lets ``json.loads`` meet whatever nesting or number it is sent.
So before it runs, a request that carries a body must have

- content type ``application/json`` (optionally ``; charset=utf-8``, any case) and no content encoding — 415;
- at most ``max_bytes`` bytes, after base64 decoding where API Gateway encoded a binary body — 413;
- UTF-8 text holding one JSON object within :mod:`video_library.strict_json`'s limits — 400.

What passes is handed on as plain text with a canonical content type, so the resolver parses exactly the
document checked here. Methods without a body (GET, HEAD, OPTIONS, DELETE) have any body removed instead:
no route reads one, and none can start to by accident.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from video_library.errors import VideoLibraryError
from video_library.strict_json import InvalidJson, InvalidUtf8, parse_object

MAX_BODY_BYTES = 64 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON_CONTENT_TYPE = "application/json"
_CONTENT_HEADERS = frozenset({"content-type", "content-encoding", "content-length"})


class UnsupportedMediaType(VideoLibraryError):
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    code = "unsupported_media_type"


class PayloadTooLarge(VideoLibraryError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "payload_too_large"


class EmptyBody(VideoLibraryError):
    status = HTTPStatus.BAD_REQUEST
    code = "empty_body"


class InvalidBase64(VideoLibraryError):
    status = HTTPStatus.BAD_REQUEST
    code = "invalid_base64"


def admit_json_body(event: Mapping[str, Any], *, max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The event to hand the resolver, or a :class:`VideoLibraryError` (4xx) saying why the request is refused.

    Never changes ``event``; the answer is a new event whose body, if any, is the checked JSON object's text.
    """
    if _method(event) not in BODY_METHODS:
        return {**event, "body": None, "isBase64Encoded": False}
    body = event.get("body")
    if body is None or body == "":
        raise EmptyBody("the request needs a body: a JSON object")
    headers = _headers(event)
    _check_content_type(headers)
    raw = _body_bytes(body, base64_encoded=event.get("isBase64Encoded") is True, max_bytes=max_bytes)
    if not raw:
        raise EmptyBody("the request needs a body: a JSON object")
    parse_object(raw)
    canonical_headers = {name: value for name, value in headers.items() if name.lower() not in _CONTENT_HEADERS}
    canonical_headers["content-type"] = JSON_CONTENT_TYPE
    return {**event, "headers": canonical_headers, "body": raw.decode("utf-8"), "isBase64Encoded": False}


def _method(event: Mapping[str, Any]) -> str:
    http = (event.get("requestContext") or {}).get("http") or {}
    method = http.get("method") if isinstance(http, Mapping) else None
    # An event without a method is not one API Gateway sends; checking its body is the safe reading.
    return method.upper() if isinstance(method, str) else "POST"


def _headers(event: Mapping[str, Any]) -> dict[str, str]:
    headers = event.get("headers")
    if not isinstance(headers, Mapping):
        return {}
    return {name: value for name, value in headers.items() if isinstance(name, str) and isinstance(value, str)}


def _check_content_type(headers: Mapping[str, str]) -> None:
    # API Gateway lower-cases header names; hand-made events may not, and may even repeat one in two cases.
    content_types = [value for name, value in headers.items() if name.lower() == "content-type"]
    if not content_types or not all(_is_json_utf8(value) for value in content_types):
        raise UnsupportedMediaType(
            "send the body as application/json (UTF-8)",
            accepted=[JSON_CONTENT_TYPE, f"{JSON_CONTENT_TYPE}; charset=utf-8"],
        )
    encodings = [value.strip().lower() for name, value in headers.items() if name.lower() == "content-encoding"]
    if any(encoding not in ("", "identity") for encoding in encodings):
        raise UnsupportedMediaType("send the body uncompressed: no content encoding is accepted")


def _is_json_utf8(value: str) -> bool:
    media_type, *parameters = (part.strip().lower() for part in value.split(";"))
    if media_type != JSON_CONTENT_TYPE:
        return False
    if not parameters:
        return True
    if len(parameters) != 1:
        return False
    name, _, charset = parameters[0].partition("=")
    return name.strip() == "charset" and charset.strip().strip('"') == "utf-8"


def _body_bytes(body: object, *, base64_encoded: bool, max_bytes: int) -> bytes:
    if not isinstance(body, str):
        raise InvalidJson("the request body is not text")
    too_large = PayloadTooLarge(f"the body is larger than {max_bytes} bytes", max_bytes=max_bytes)
    if base64_encoded:
        # Four base64 characters carry three bytes: anything longer than this cannot decode within the cap.
        if len(body) > 4 * (max_bytes // 3 + 1):
            raise too_large
        try:
            raw = base64.b64decode(body, validate=True)
        except binascii.Error:
            raise InvalidBase64("the body is marked base64 but is not valid base64") from None
    else:
        if len(body) > max_bytes:  # every character is at least one byte
            raise too_large
        try:
            raw = body.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: the text did not come from valid UTF-8
            raise InvalidUtf8("the body is not valid UTF-8") from None
    if len(raw) > max_bytes:
        raise too_large
    return raw
