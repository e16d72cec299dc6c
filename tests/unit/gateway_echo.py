"""A handler for the gateway tests: answers with the event it received."""

from __future__ import annotations

import json
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(event),
        "cookies": ["seen=1; Path=/"],
    }


def slow_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answers after the number of seconds in the query's ``sleep`` (the gateway's timeout is under test)."""
    import time

    time.sleep(float((event.get("queryStringParameters") or {}).get("sleep", "0")))
    return handler(event, context)
