"""strict_json: the JSON this service accepts from outside, and the precise reason for everything else."""

from __future__ import annotations

import json

import pytest

from video_library.strict_json import MAX_DEPTH, MAX_SAFE_INTEGER, JsonRefused, loads, parse_object


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def refusal_code(text: str | bytes) -> str:
    with pytest.raises(JsonRefused) as refused:
        parse_object(text.encode() if isinstance(text, str) else text)
    assert refused.value.status == 400
    return refused.value.code


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('  {"a": [1, 2.5, -0, true, false, null, "x"]}\n', {"a": [1, 2.5, 0, True, False, None, "x"]}),
        ('{"emoji": "\\ud83c\\udf0a", "text": "Grüße"}', {"emoji": "🌊", "text": "Grüße"}),
        (f'{{"max": {MAX_SAFE_INTEGER}, "min": {-MAX_SAFE_INTEGER}}}', {"max": 2**53 - 1, "min": -(2**53 - 1)}),
        ('{"small": 1e-300, "big": 9.0e15}', {"small": 1e-300, "big": 9.0e15}),
        ("{}", {}),
    ],
)
def test_json_objects_within_the_limits_are_parsed(text: str, expected: dict[str, object]) -> None:
    assert parse_object(text.encode()) == expected


def test_nesting_is_allowed_up_to_the_cap_and_refused_one_level_beyond() -> None:
    assert loads(nested(MAX_DEPTH)) == json.loads(nested(MAX_DEPTH))
    with pytest.raises(JsonRefused) as refused:
        loads(nested(MAX_DEPTH + 1))
    assert refused.value.code == "too_deep"


@pytest.mark.parametrize(
    "text",
    [
        "[" * 1_000_000,  # never closed: a recursive parser would fail far later (or overflow the stack)
        '{"a":' * 100_000,
        "[{" * 50_000 + "}]" * 50_000,
        # an escaped backslash does not escape the quote after it: the brackets that follow are structure
        '{"s": "\\\\", "deep": ' + nested(MAX_DEPTH) + "}",
    ],
)
def test_deep_nesting_is_refused_from_the_text_without_recursion(text: str) -> None:
    assert refusal_code(text) == "too_deep"


@pytest.mark.parametrize(
    "text",
    [
        '{"s": "' + "[" * 10_000 + '"}',
        '{"s": "\\"' + "{" * 10_000 + '"}',  # an escaped quote does not end the string
        '{"' + "[" * 100 + '": 1}',
    ],
)
def test_brackets_inside_strings_are_not_nesting(text: str) -> None:
    assert isinstance(parse_object(text.encode()), dict)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (f'{{"n": {2**53}}}', "number_out_of_range"),
        (f'{{"n": {-(2**53)}}}', "number_out_of_range"),
        ('{"n": 1' + "0" * 5000 + "}", "number_out_of_range"),  # past Python's 4,300-digit conversion limit
        ('{"n": -' + "9" * 100_000 + "}", "number_out_of_range"),
        ('{"n": 1e300}', "number_out_of_range"),
        ('{"n": 1E400}', "number_out_of_range"),
        ('{"n": -1e999}', "number_out_of_range"),
        ('{"n": NaN}', "invalid_json"),
        ('{"n": Infinity}', "invalid_json"),
        ('{"n": -Infinity}', "invalid_json"),
        ('{"a": 1, "a": 2}', "duplicate_key"),
        ('{"outer": {"a": 1, "b": 2, "a": 1}}', "duplicate_key"),
        ('{"s": "\\ud800"}', "invalid_utf8"),
        ('{"\\udfff": 1}', "invalid_utf8"),
        ('{"s": "\\udc00\\ud800"}', "invalid_utf8"),  # a pair in the wrong order is two lone surrogates
        ("[]", "not_an_object"),
        ('[{"a": 1}]', "not_an_object"),
        ('"text"', "not_an_object"),
        ("42", "not_an_object"),
        ("null", "not_an_object"),
        ("false", "not_an_object"),
        ("", "invalid_json"),
        ("{", "invalid_json"),
        ('{"a": 1} {"b": 2}', "invalid_json"),
        ("{'a': 1}", "invalid_json"),
        ('{"a": "tab\tinside"}', "invalid_json"),  # control characters must be escaped
        ("\ufeff{}", "invalid_json"),
    ],
)
def test_each_kind_of_unacceptable_document_has_its_own_code(text: str, code: str) -> None:
    assert refusal_code(text) == code


@pytest.mark.parametrize(
    "raw",
    [b'{"a": "\xff"}', b'{"a": "\xc0\xaf"}', b'{"a": "\xed\xa0\x80"}', '{"a": 1}'.encode("utf-16"), b'{"a": "\xe2\x82'],
    ids=["invalid-byte", "overlong", "encoded-surrogate", "utf-16", "truncated-sequence"],
)
def test_bytes_that_are_not_utf8_are_refused(raw: bytes) -> None:
    assert refusal_code(raw) == "invalid_utf8"


def test_the_refusal_is_the_projects_error_body() -> None:
    with pytest.raises(JsonRefused) as refused:
        parse_object(b"[1]")

    assert refused.value.to_body() == {
        "error": {"code": "not_an_object", "message": "a JSON object is expected, not an array"}
    }
