"""What the page needs from the local stack, over HTTP: its files at /, and local sign-in at /_dev/token."""

from __future__ import annotations

import httpx

from devtools.local_jwt import DEFAULT_SECRET, verify
from tests.stack_process import RunningStack


def test_the_stack_serves_the_page_and_its_files(stack: RunningStack) -> None:
    page = httpx.get(f"{stack.url}/")
    script = httpx.get(f"{stack.url}/web/app.js")
    missing = httpx.get(f"{stack.url}/web/nothing-here.js")

    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script src="app.js" defer></script>' in page.text
    assert script.status_code == 200 and script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert missing.status_code == 404


def test_local_sign_in_mints_a_token_the_gateway_accepts(stack: RunningStack) -> None:
    answer = httpx.post(f"{stack.url}/_dev/token", json={"user": "dora"})
    token = answer.json()["token"]

    assert answer.status_code == 200
    assert verify(f"Bearer {token}", secret=DEFAULT_SECRET)["sub"] == "dora"
    library = httpx.get(f"{stack.url}/api/video/library", headers={"authorization": f"Bearer {token}"})
    assert library.status_code == 200, library.text
    assert library.json()["items"] == []


def test_local_sign_in_refuses_a_missing_or_bad_user(stack: RunningStack) -> None:
    for body in (
        b"",
        b"not json",
        b"[]",
        b'{"user": ""}',
        b'{"user": "   "}',
        b'{"user": 7}',
        b'{"user": "' + b"x" * 65 + b'"}',
    ):
        answer = httpx.post(f"{stack.url}/_dev/token", content=body)
        assert answer.status_code == 400, body
        assert answer.json()["error"]["code"] == "invalid_user"
    assert httpx.get(f"{stack.url}/api/video/library").status_code == 401
