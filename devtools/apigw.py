"""Build the events API Gateway HTTP APIs (payload format 2.0) hand to Lambda.

Used by the sample events in ``events/``, by the tests, and by the local gateway, so that all three send
handlers the same shape AWS does:
https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

API_ID = "a1b2c3d4e5"
ACCOUNT_ID = "123456789012"


def http_api_event(
    method: str,
    path: str,
    *,
    route_key: str | None = None,
    body: bytes | str | None = None,
    headers: Mapping[str, str] | None = None,
    query: str = "",
    path_parameters: Mapping[str, str] | None = None,
    claims: Mapping[str, Any] | None = None,
    source_ip: str = "203.0.113.10",
    now: datetime | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """One request as API Gateway delivers it: lower-cased headers, cookies split out, binary bodies base64."""
    now = now or datetime.now(UTC)
    lower_headers = {k.lower(): v for k, v in (headers or {}).items()}
    cookies = [c.strip() for c in lower_headers.pop("cookie", "").split(";") if c.strip()]
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key or f"{method.upper()} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": lower_headers,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": f"{API_ID}.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": API_ID,
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lower_headers.get("user-agent", ""),
            },
            "requestId": request_id or uuid.uuid4().hex[:16] + "=",
            "routeKey": route_key or f"{method.upper()} {path}",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000) if now else int(time.time() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        params: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            # API Gateway joins repeated parameters with commas.
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": dict(claims), "scopes": None}}
    if body is not None:
        if isinstance(body, bytes):
            try:
                event["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"] = base64.b64encode(body).decode("ascii")
                event["isBase64Encoded"] = True
        else:
            event["body"] = body
    return event
