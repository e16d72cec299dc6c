"""A path parameter the resolver's own pattern does not take is a 404 with the error body, never a 500.

API Gateway routes ``/api/video/{video_id}`` whatever the segment holds; Powertools' route patterns take fewer
characters, and its "no route" used to fall through to the catch-all handler (500 ``internal_error``)."""

from __future__ import annotations

import json

import pytest

from devtools.apigw import http_api_event
from devtools.lambda_context import LocalLambdaContext
from functions.library_api.handler import handler


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize("video_id", ["a`b", 'a"b', "a#b", "a\\b", "a€b", "a\x01b"])
def test_a_video_id_the_pattern_does_not_take_is_not_found(video_id: str) -> None:
    # GIVEN a signed-in request whose path holds a character no video id has
    path = f"/api/video/{video_id}"
    event = http_api_event(
        "GET", path, route_key="GET /api/video/{video_id}", path_parameters={"video_id": video_id}, claims={"sub": "a"}
    )

    # WHEN the library API answers it
    answer = handler(event, LocalLambdaContext())

    # THEN 404 with the project's error body
    assert answer["statusCode"] == 404
    assert json.loads(answer["body"])["error"]["code"] == "not_found"
