"""Build the events Lambda's SQS event source mapping hands to a function, from messages SQS returned.

Used by the local queue poller, the tests and the sample event in ``events/``, so the worker always sees the
shape AWS sends: https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


def queue_arn(queue_url: str, region: str = REGION, account_id: str = ACCOUNT_ID) -> str:
    return f"arn:aws:sqs:{region}:{account_id}:{queue_url.rstrip('/').rsplit('/', 1)[-1]}"


def sqs_record(message: Mapping[str, Any], arn: str, region: str = REGION) -> dict[str, Any]:
    """One record as the event source mapping delivers it (``message`` as ReceiveMessage returned it)."""
    attributes = dict(message.get("Attributes") or {})
    attributes.setdefault("ApproximateReceiveCount", "1")
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attributes,
        "messageAttributes": dict(message.get("MessageAttributes") or {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    }


def sqs_event(messages: Iterable[Mapping[str, Any]], arn: str) -> dict[str, Any]:
    return {"Records": [sqs_record(message, arn) for message in messages]}
