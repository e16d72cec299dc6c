"""Regenerate ``events/``: realistic API Gateway / EventBridge / SQS events for every handler.

Webhook events wrap each PiAPI sample of ``../shared/piapi`` exactly as PiAPI sends it (its JSON body and the
``x-webhook-secret`` header). Run ``make events`` after a sample changes; the files are committed.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from devtools.apigw import http_api_event
from devtools.eventbridge import scheduled_event
from devtools.sqs_events import queue_arn, sqs_event

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
# The secret the samples echo in data.config.webhook_config.secret, sent in the header as PiAPI does.
SAMPLE_WEBHOOK_SECRET = "s3cr3t-from-config"  # noqa: S105 (the samples' made-up value)
WEBHOOK_SAMPLES = (
    "hunyuan_completed",
    "kling_works_completed",
    "kling3_completed",
    "luma_completed",
    "processing",
    "failed",
)
# The purge's schedule, cron(15 3 * * ? *), fired on the day the PiAPI samples were delivered. Fixed ids keep
# regenerated files identical.
PURGE_EVENT_TIME = datetime(2026, 11, 25, 3, 15, tzinfo=UTC)
PURGE_EVENTS = {
    "purge": ("5f6d7c1e-2b3a-4c5d-8e9f-0a1b2c3d4e5f", {}),
    "purge_dry_run": ("9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", {"dry_run": True}),
}


def webhook_event(sample: dict[str, object]) -> dict[str, object]:
    sent_at = datetime.fromtimestamp(int(sample["timestamp"]), UTC)  # type: ignore[call-overload]
    return http_api_event(
        "POST",
        "/webhooks/piapi",
        body=json.dumps(sample, separators=(",", ":")),
        headers={
            "content-type": "application/json",
            "user-agent": "Go-http-client/2.0",
            "x-webhook-secret": SAMPLE_WEBHOOK_SECRET,
            "x-forwarded-for": "198.51.100.23",
            "x-forwarded-proto": "https",
            "host": "api.example.com",
        },
        source_ip="198.51.100.23",
        now=sent_at,
        request_id=f"Webhook{int(sample['timestamp'])}=",  # type: ignore[call-overload]
    )


# The user API Gateway's JWT authorizer verified, as it hands the claims to the function.
SAMPLE_CLAIMS = {
    "sub": "3f1e2d4c-5b6a-4978-8c9d-0e1f2a3b4c5d",
    "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example",
    "aud": "video-library-web",
    "email": "alice@example.com",
    "iat": "1764061000",
    "exp": "1764064600",
}
SAMPLE_VIDEO_ID = "0f8e7d6c5b4a49388271605f4e3d2c1b"


def function_of(event_file: str) -> str:
    """The function of serverless.yml a sample event is for (by its file name in events/)."""
    stem = Path(event_file).stem
    for prefix, function in FUNCTION_OF_SAMPLE.items():
        if stem == prefix or stem.startswith(f"{prefix}_"):
            return function
    raise KeyError(f"events/{stem}.json is for no known function (devtools/make_events.py FUNCTION_OF_SAMPLE)")


# events/<prefix>*.json -> the function it is for.
FUNCTION_OF_SAMPLE = {
    "webhook": "piapiWebhook",
    "save_to_library": "saveToLibrary",
    "save_worker": "saveWorker",
    "library": "libraryApi",
    "purge": "purge",
    "reconcile": "reconcile",
    "sweep": "sweep",
}


def save_to_library_event() -> dict[str, object]:
    """The front end's "Save to Library" click, through API Gateway with a verified user."""
    return http_api_event(
        "POST",
        "/api/video/save-to-library",
        body=json.dumps({"video_id": SAMPLE_VIDEO_ID, "campaign_id": 42}),
        headers={
            "content-type": "application/json",
            "authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.sample.signature",
            "origin": "https://app.example.com",
            "user-agent": "Mozilla/5.0",
            "host": "api.example.com",
        },
        claims=SAMPLE_CLAIMS,
        now=datetime(2026, 11, 25, 9, 5, tzinfo=UTC),
        request_id="SaveSampleReq1=",
    )


def library_events() -> dict[str, dict[str, object]]:
    """The library page's requests: its listing, and a Generate click."""
    headers = {
        "authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.sample.signature",
        "origin": "https://app.example.com",
        "user-agent": "Mozilla/5.0",
        "host": "api.example.com",
    }
    when = datetime(2026, 11, 25, 9, 1, tzinfo=UTC)
    return {
        "library_list": http_api_event(
            "GET",
            "/api/video/library",
            query="campaign_id=42&limit=24",
            headers=headers,
            claims=SAMPLE_CLAIMS,
            now=when,
            request_id="LibraryListReq1=",
        ),
        "library_generate": http_api_event(
            "POST",
            "/api/video/generate",
            body=json.dumps(
                {
                    "campaign_id": "42",
                    "prompt": "a paper boat drifting down a rainy street",
                    "model": "Qubico/hunyuan",
                    "task_type": "txt2video",
                    "options": {"aspect_ratio": "16:9"},
                }
            ),
            headers={**headers, "content-type": "application/json"},
            claims=SAMPLE_CLAIMS,
            now=when,
            request_id="LibraryGenerateReq1=",
        ),
    }


def reconcile_event() -> dict[str, object]:
    """The reconciliation schedule's event (every 10 minutes)."""
    return scheduled_event(
        datetime(2026, 11, 25, 9, 30, tzinfo=UTC),
        event_id="3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a99",
        rule_name="video-library-dev-ReconcileEventsRuleSchedule1-7A6B5C4D3E2F1",
    )


def sweep_event() -> dict[str, object]:
    """The sweep schedule's event (every 15 minutes)."""
    return scheduled_event(
        datetime(2026, 11, 25, 9, 45, tzinfo=UTC),
        event_id="7d6c5b4a-3e2f-4a1b-8c9d-0e1f2a3b4c5e",
        rule_name="video-library-dev-SweepEventsRuleSchedule1-2B3C4D5E6F7A8",
    )


def save_worker_event() -> dict[str, object]:
    """What the save queue's event source mapping hands the worker: one message naming the video to save."""
    body = json.dumps({"video_id": SAMPLE_VIDEO_ID, "requested_at": "2026-11-25T09:05:00Z"})
    message = {
        "MessageId": "5b1c9e2a-6d7f-4c3b-9a8e-1f2d3c4b5a69",
        "ReceiptHandle": "AQEBsample+receipt+handle+of+the+save+queue+message==",
        "Body": body,
        "Attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1764061500000",
            "SenderId": "AROAEXAMPLEROLEID:video-library-dev-saveToLibrary",
            "ApproximateFirstReceiveTimestamp": "1764061500120",
        },
        "MD5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
    }
    return sqs_event([message], queue_arn("https://sqs.us-east-1.amazonaws.com/123456789012/video-library-dev-saves"))


def purge_event(name: str) -> dict[str, object]:
    """The daily schedule's event; ``purge_dry_run`` is the same with ``detail: {"dry_run": true}``."""
    event_id, detail = PURGE_EVENTS[name]
    return scheduled_event(PURGE_EVENT_TIME, detail=detail, event_id=event_id)


def write(name: str, event: dict[str, object]) -> None:
    path = EVENTS / f"{name}.json"
    path.write_text(json.dumps(event, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


def main(samples_dir: Path) -> None:
    EVENTS.mkdir(exist_ok=True)
    for name in WEBHOOK_SAMPLES:
        sample = json.loads((samples_dir / f"{name}.json").read_text())
        write(f"webhook_{name}", webhook_event(sample))
    for name in PURGE_EVENTS:
        write(name, purge_event(name))
    write("save_to_library", save_to_library_event())
    for name, event in library_events().items():
        write(name, event)
    write("reconcile", reconcile_event())
    write("sweep", sweep_event())
    write("save_worker", save_worker_event())


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "piapi")
