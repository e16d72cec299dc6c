"""The spec's examples are real: the requests they document, sent again to the real handlers, get exactly the
recorded answers (devtools/openapi_examples.py)."""

from __future__ import annotations

import json

from devtools import openapi_examples
from devtools.openapi import load_examples


def test_recorded_examples_are_what_the_handlers_answer_now() -> None:
    # GIVEN the examples committed with the spec
    committed = load_examples()

    # WHEN every recorded exchange is sent again through the gateway to the real handlers
    recorded = json.loads(openapi_examples.render(openapi_examples.record()))

    # THEN each answer is the one documented, status and body
    assert recorded == committed, "the handlers' answers changed: run `make openapi` and review the diff"


def test_examples_cover_every_route_with_a_success_and_a_refusal() -> None:
    examples = load_examples()

    for route, documented in examples.items():
        statuses = {int(status) for status in documented["responses"]}
        assert any(status < 300 for status in statuses), route
        assert any(status >= 400 for status in statuses), route
