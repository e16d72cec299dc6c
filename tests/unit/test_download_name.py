"""download_name: the file name a saved video downloads under, made from its prompt, safe whatever the prompt."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from video_library.download_name import MAX_STEM_CHARS, attachment, download_filename

VIDEO_ID = "0f8e7d6c5b4a49388271605f4e3d2c1b"
SAFE_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*\.(?:mp4|mov|webm|mkv)")


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("A paper boat drifting down a rainy street", "a-paper-boat-drifting-down-a-rainy-street.mp4"),
        ('  "Quoted"; filename=evil.exe\r\nX-Header: 1 ', "quoted-filename-evil-exe-x-header-1.mp4"),
        ("../../etc/passwd", "etc-passwd.mp4"),
        ("Crème brûlée at dawn", "creme-brulee-at-dawn.mp4"),
        ("", f"video-{VIDEO_ID[:12]}.mp4"),
        (None, f"video-{VIDEO_ID[:12]}.mp4"),
        ("纸船在雨中漂流", f"video-{VIDEO_ID[:12]}.mp4"),
        ("!!! ??? ...", f"video-{VIDEO_ID[:12]}.mp4"),
    ],
    ids=["words", "header-injection", "path", "accents", "empty", "none", "other-script", "punctuation-only"],
)
def test_the_name_keeps_the_prompts_words_and_nothing_else(prompt: str | None, expected: str) -> None:
    assert download_filename(prompt, VIDEO_ID) == expected


def test_a_long_prompt_is_cut_at_a_word_boundary() -> None:
    prompt = "a slow cinematic aerial shot of a lighthouse on a rocky coast at dusk with waves crashing below"

    name = download_filename(prompt, VIDEO_ID)

    stem = name.removesuffix(".mp4")
    assert len(stem) <= MAX_STEM_CHARS
    assert prompt.replace(" ", "-").startswith(stem)
    assert stem == "a-slow-cinematic-aerial-shot-of-a-lighthouse-on-a-rocky"  # "-coast" would pass 60


def test_one_overlong_word_is_cut_to_the_limit() -> None:
    assert download_filename("x" * 500, VIDEO_ID) == "x" * MAX_STEM_CHARS + ".mp4"


@pytest.mark.parametrize(
    ("content_type", "extension"),
    [("video/mp4", "mp4"), ("video/quicktime", "mov"), ("video/webm", "webm"), (None, "mp4"), ("video/x-odd", "mp4")],
)
def test_the_extension_follows_the_saved_type(content_type: str | None, extension: str) -> None:
    assert download_filename("a fox", VIDEO_ID, content_type) == f"a-fox.{extension}"


def test_an_ascii_prompt_gets_one_plain_filename() -> None:
    assert attachment("A fox, running", VIDEO_ID) == 'attachment; filename="a-fox-running.mp4"'


def test_a_prompt_in_another_script_also_gets_its_own_words_utf8_encoded() -> None:
    value = attachment("纸船 在雨中", VIDEO_ID)

    plain, encoded = value.split("; filename*=")
    assert plain == f'attachment; filename="video-{VIDEO_ID[:12]}.mp4"'
    assert encoded.startswith("UTF-8''") and encoded.isascii()
    assert unquote(encoded.removeprefix("UTF-8''")) == "纸船-在雨中.mp4"


@given(st.text(max_size=3000))
def test_any_prompt_gives_a_safe_ascii_header_value(prompt: str) -> None:
    value = attachment(prompt, VIDEO_ID, "video/mp4")

    assert value.isascii()
    assert not any(char in value for char in "\r\n\x00\\")
    name = value.split('filename="', 1)[1].split('"', 1)[0]
    assert SAFE_NAME.fullmatch(name)
    assert len(name) <= MAX_STEM_CHARS + len(".mp4")
    if "filename*=" in value:
        encoded = value.split("filename*=UTF-8''", 1)[1]
        assert re.fullmatch(r"[A-Za-z0-9%._~-]+", encoded)
        assert "/" not in unquote(encoded) and "\\" not in unquote(encoded)
