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
