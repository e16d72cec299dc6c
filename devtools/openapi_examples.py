"""The spec's examples, recorded from real answers: requests sent through the local gateway to the real handlers.

Everything runs in this process: moto (``mock_aws``) stands in for DynamoDB and SQS, a fake PiAPI for PiAPI,
and ``devtools.gateway.Gateway`` routes each request as API Gateway would (its JWT check included). Ids and the
clock are fixed while recording (``db.new_video_id``, ``db.utcnow``) so that the same code records the same
examples: ``make openapi`` writes them to ``devtools/openapi_examples.json``, the generator puts them in
``openapi.json``, and a test records them again and fails when they differ (the code's answers changed and the
spec's examples would lie).

An exchange documents its answer under its route and status; those marked ``request_example`` also document
their body as a request example. A new route records examples by adding exchanges to ``EXCHANGES`` (none are
required; a spec without them is still complete).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
from moto import mock_aws

from devtools.fake_piapi import FakePiapi
from devtools.gateway import Gateway, routes_from_serverless
from devtools.local_jwt import DEFAULT_SECRET, mint

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_FILE = Path(__file__).resolve().parent / "openapi_examples.json"
EVENTS = ROOT / "events"
# The recording's "now"; records it creates are dated relative to it.
NOW = datetime(2026, 11, 30, 9, 0, 0, tzinfo=UTC)
USER = "alice"
CAMPAIGN = "42"
WEBHOOK_SECRET = "example-webhook-secret"  # noqa: S105 (a value of the recording only)
PUBLIC_BASE_URL = "https://videos.example.com"
PIAPI_KEY = "example-piapi-key"


def example_id(name: str) -> str:
    """A video id as the service makes them (32 hex digits), the same at every recording."""
    return hashlib.sha256(f"video-library example {name}".encode()).hexdigest()[:32]


# The videos the recording creates, in the order it creates them (db.new_video_id hands these out).
GENERATED = example_id("generated")
COMPLETED = example_id("completed")
SAVED = example_id("saved")
FAILED = example_id("failed")
OLDER = example_id("older")
UNKNOWN = example_id("not in the library")
TASK_IDS = {
    COMPLETED: "c41d9e77-2f60-4b0a-8e55-6a7b8c9d0e12",
    SAVED: "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b",
    FAILED: "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9",
    OLDER: "7f3c2a10-5b1e-4c8e-9d2a-1a2b3c4d5e01",
}


@dataclass(frozen=True)
class Exchange:
    """One request to record, and where its answer documents the route."""

    route: str  # the route key it documents, e.g. "POST /api/video/save-to-library"
    name: str
    summary: str
    path: str = ""  # the concrete path, when it differs from the route's (path parameters)
    query: str = ""
    body: Any = None  # JSON, sent as application/json
    raw_body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    signed_in: bool = True
    request_example: bool = False

    @property
    def method(self) -> str:
        return self.route.split(" ", 1)[0]


def _event_body(name: str, task_id: str) -> dict[str, Any]:
    """A PiAPI delivery from events/ (PiAPI's documented samples), for one of the recording's tasks."""
    body: dict[str, Any] = json.loads(json.loads((EVENTS / f"{name}.json").read_text())["body"])
    body["data"]["task_id"] = task_id
    # The echoed webhook secret is PiAPI's habit, not something the endpoint reads: the example leaves it out.
    body["data"].pop("config", None)
    return body


WEBHOOK = "POST /webhooks/piapi"
SAVE = "POST /api/video/save-to-library"
GENERATE = "POST /api/video/generate"
LIBRARY = "GET /api/video/library"
ONE_VIDEO = "GET /api/video/{video_id}"
USAGE = "GET /api/video/storage-usage"


def exchanges() -> list[Exchange]:
    """What is recorded, in order: later exchanges see what earlier ones did (the seeding happens in between)."""
    completed = _event_body("webhook_kling_works_completed", TASK_IDS[COMPLETED])
    return [
        Exchange(
            GENERATE,
            "generate",
            "A video is requested: PiAPI has the task, the record is pending",
            body={
                "campaign_id": CAMPAIGN,
                "prompt": "a lighthouse at dawn, waves below",
                "model": "kling",
                "task_type": "video_generation",
                "options": {"duration": 5, "aspect_ratio": "16:9"},
            },
            request_example=True,
        ),
        Exchange(
            GENERATE,
            "unsupported_model",
            "A model PiAPI does not document for this task type",
            body={"campaign_id": CAMPAIGN, "prompt": "a lighthouse at dawn", "model": "dall-e"},
        ),
        Exchange(
            GENERATE,
            "no_token",
            "No token: API Gateway's authorizer answers",
            body={"campaign_id": CAMPAIGN, "prompt": "a lighthouse at dawn"},
            signed_in=False,
        ),
        Exchange(
            WEBHOOK,
            "processing",
            "PiAPI reports progress",
            body=_event_body("webhook_processing", TASK_IDS[OLDER]),
            headers={"x-webhook-secret": WEBHOOK_SECRET},
            request_example=True,
        ),
        Exchange(
            WEBHOOK,
            "completed",
            "PiAPI reports a finished Kling video (its works[] layout)",
            body=completed,
            headers={"x-webhook-secret": WEBHOOK_SECRET},
            request_example=True,
        ),
        Exchange(
            WEBHOOK,
            "duplicate",
            "The same delivery again",
            body=completed,
            headers={"x-webhook-secret": WEBHOOK_SECRET},
        ),
        Exchange(
            WEBHOOK,
            "unknown_task",
            "A task this service never created: acknowledged, nothing to retry",
            body=_event_body("webhook_processing", "00000000-0000-4000-8000-000000000000"),
            headers={"x-webhook-secret": WEBHOOK_SECRET},
        ),
        Exchange(
            WEBHOOK,
            "wrong_secret",
            "A wrong x-webhook-secret: nothing is read",
            body=completed,
            headers={"x-webhook-secret": "not-the-secret"},
        ),
        Exchange(
            WEBHOOK,
            "not_a_task",
            "JSON that is not a PiAPI task",
            body={"timestamp": 1764064800, "data": {"status": "completed"}},
            headers={"x-webhook-secret": WEBHOOK_SECRET},
        ),
        Exchange(
            LIBRARY,
            "first_page",
            "The caller's videos in campaign 42, two a page",
            query=f"campaign_id={CAMPAIGN}&limit=2",
        ),
        Exchange(LIBRARY, "tampered_cursor", "A cursor the listing did not issue", query="cursor=eyJ2aWRlb19pZCI6MX0"),
        Exchange(LIBRARY, "limit_out_of_range", "limit beyond 1-100", query="limit=500"),
        Exchange(ONE_VIDEO, "saved_video", "A saved video: it plays from R2", path=f"/api/video/{SAVED}"),
        Exchange(ONE_VIDEO, "failed_video", "A video whose generation failed", path=f"/api/video/{FAILED}"),
        Exchange(ONE_VIDEO, "not_yours", "Absent, or someone else's", path=f"/api/video/{UNKNOWN}"),
        Exchange(ONE_VIDEO, "not_a_path", "A character no video id has (a backtick)", path="/api/video/a`b"),
        Exchange(USAGE, "campaign", "What campaign 42's saved videos take", query=f"campaign_id={CAMPAIGN}"),
        Exchange(USAGE, "bad_campaign_id", "A campaign id that is not one", query="campaign_id=..%2Fother"),
        Exchange(
            SAVE,
            "already_saved",
            "A video that is saved already: nothing to do",
            body={"video_id": SAVED},
        ),
        Exchange(
            SAVE,
            "campaign_ready",
            "Every completed, unsaved video of a campaign",
            body={"campaign_id": CAMPAIGN, "all_ready": True},
            request_example=True,
        ),
        Exchange(
            SAVE,
            "queued",
            "A completed video: its save is queued",
            body={"video_id": COMPLETED, "campaign_id": CAMPAIGN},
            request_example=True,
        ),
        Exchange(
            SAVE,
            "bulk",
            "Several videos at once: each one's outcome",
            body={"video_ids": [SAVED, FAILED, UNKNOWN]},
            request_example=True,
        ),
        Exchange(SAVE, "not_completed", "A video whose generation failed", body={"video_id": FAILED}),
        Exchange(SAVE, "not_yours", "Absent, or someone else's", body={"video_id": UNKNOWN}),
        Exchange(
            SAVE,
            "two_ways",
            "video_id and video_ids together",
            body={"video_id": COMPLETED, "video_ids": [COMPLETED]},
        ),
        Exchange(
            SAVE,
            "array",
            "A one-element array: refused, never unwrapped",
            raw_body=json.dumps([{"video_id": COMPLETED}]).encode(),
        ),
        Exchange(
            SAVE,
            "form",
            "A form body",
            raw_body=f"video_id={COMPLETED}".encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        ),
        Exchange(SAVE, "broken_json", "Not JSON", raw_body=b'{"video_id": '),
    ]


# The videos, as generate stores them: (id, prompt, model, task type, hours before NOW), oldest first.
SEEDED = (
    (OLDER, "a paper boat drifting down a rainy street", "Qubico/hunyuan", "txt2video", 5),
    (COMPLETED, "a fox running through snow, slow motion", "kling", "video_generation", 3),
    (SAVED, "a paper boat drifting down a rainy street", "Qubico/hunyuan", "txt2video", 2),
    (FAILED, "an unsafe prompt that the provider refused", "Qubico/hunyuan", "txt2video", 1),
)
# The order in which the recording creates videos: the generate exchange first, then the seeded ones.
CREATION_ORDER = (GENERATED, *(video_id for video_id, *_ in SEEDED))


def _seed_videos(gateway: Gateway) -> None:
    """Alice's videos in campaign 42, stored as generate stores them, finished by PiAPI's own deliveries."""
    from video_library import db
    from video_library.models import NewVideo
    from video_library.piapi import provider_of

    for video_id, prompt, model, task_type, hours_ago in SEEDED:
        db.create_video(
            NewVideo(
                user_id=USER,
                campaign_id=CAMPAIGN,
                prompt=prompt,
                model=model,
                provider=provider_of(model),
                task_type=task_type,
                task_id=TASK_IDS[video_id],
                created_at=NOW - timedelta(hours=hours_ago),
            )
        )
    for video_id, sample in ((SAVED, "webhook_hunyuan_completed"), (FAILED, "webhook_failed")):
        _send(gateway, WEBHOOK, _event_body(sample, TASK_IDS[video_id]), {"x-webhook-secret": WEBHOOK_SECRET})


def _seed_saved() -> None:
    """One video saved as the worker saves it: queued, claimed under a lease, recorded with its R2 object."""
    from video_library import db

    key = f"campaigns/{CAMPAIGN}/videos/{SAVED}.mp4"
    queued_at = NOW - timedelta(minutes=40)
    if not db.queue_save(SAVED, USER, queued_at):
        raise RuntimeError("the example video could not be queued")
    claimed = db.claim_save(SAVED, "example-lease", queued_at + timedelta(minutes=15), queued_at)
    if claimed is None:
        raise RuntimeError("the example video's save could not be claimed")
    db.record_saved(
        claimed,
        "example-lease",
        r2_key=key,
        url=f"{PUBLIC_BASE_URL}/{key}",
        size_bytes=18_874_368,
        sha256=hashlib.sha256(b"the example video").hexdigest(),
        saved_at=queued_at + timedelta(seconds=21),
    )


def _send(gateway: Gateway, route: str, body: Any, headers: Mapping[str, str]) -> None:
    method, path = route.split(" ", 1)
    answer = gateway.dispatch(
        method, path, "", {"content-type": "application/json", **headers}, json.dumps(body).encode()
    )
    if answer.status != 200:
        raise RuntimeError(f"seeding {route} answered {answer.status}: {answer.body!r}")


# What must exist before an exchange runs (by the exchange's name).
SEEDS: dict[str, Callable[[Gateway], None]] = {
    "processing": _seed_videos,
    "first_page": lambda _: _seed_saved(),
}


@contextmanager
def _recording() -> Iterator[Gateway]:
    """The service in this process, as the local stack runs it, with the recording's fixed ids and clock."""
    from video_library import db
    from video_library.settings import get_settings

    piapi = FakePiapi(PIAPI_KEY, delay_s=3600).start()
    piapi.webhooks_enabled = False  # the recording delivers its own webhooks
    environment = {
        "AWS_ACCESS_KEY_ID": "examples",
        "AWS_SECRET_ACCESS_KEY": "examples",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "VIDEOS_TABLE": "video-library-examples-videos",
        "R2_BUCKET": "video-library",
        "R2_ENDPOINT_URL": "https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com",
        "R2_ACCESS_KEY_ID": "examples",
        "R2_SECRET_ACCESS_KEY": "examples",
        "R2_PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "PIAPI_BASE_URL": piapi.base_url,
        "PIAPI_API_KEY": PIAPI_KEY,
        "PIAPI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "WEBHOOK_PUBLIC_URL": "https://abcdef1234.execute-api.us-east-1.amazonaws.com/webhooks/piapi",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    unset = (
        "DYNAMODB_ENDPOINT_URL",
        "SQS_ENDPOINT_URL",
        "DEV_INSECURE_SOURCE_HOSTS",
        "ALLOWED_SOURCE_HOSTS",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_SESSION_TOKEN",
    )
    ids = iter(CREATION_ORDER)

    def next_id() -> str:
        try:
            return next(ids)
        except StopIteration:
            raise RuntimeError("the recording created more videos than CREATION_ORDER names") from None

    try:
        with (
            mock.patch.dict(os.environ, environment),
            mock_aws(),
            mock.patch.object(db, "utcnow", return_value=NOW),
            mock.patch.object(db, "new_video_id", next_id),
        ):
            for name in unset:
                os.environ.pop(name, None)
            queue = boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="video-library-examples-saves")
            os.environ["SAVE_QUEUE_URL"] = queue["QueueUrl"]
            get_settings.cache_clear()
            db.create_tables()
            yield Gateway(routes_from_serverless(), jwt_secret=DEFAULT_SECRET)
    finally:
        get_settings.cache_clear()
        piapi.stop()


def record() -> dict[str, Any]:
    """Send every exchange and collect the answers, keyed by route: request examples and answers by status."""
    examples: dict[str, Any] = {}
    with _recording() as gateway:
        token = mint(USER, secret=DEFAULT_SECRET)
        for exchange in exchanges():
            seed = SEEDS.get(exchange.name)
            if seed is not None:
                seed(gateway)
            headers = {k.lower(): v for k, v in exchange.headers.items()}
            if exchange.signed_in:
                headers["authorization"] = f"Bearer {token}"
            body = exchange.raw_body
            if exchange.body is not None:
                body = json.dumps(exchange.body).encode()
            if body is not None:
                headers.setdefault("content-type", "application/json")
            path = exchange.path or exchange.route.split(" ", 1)[1]
            answer = gateway.dispatch(exchange.method, path, exchange.query, headers, body or b"")
            if answer.headers.get("content-type") != "application/json":
                raise RuntimeError(f"{exchange.name}: answered {answer.headers.get('content-type')}, not JSON")
            documented = examples.setdefault(exchange.route, {})
            example = {"summary": exchange.summary, "value": json.loads(answer.body)}
            documented.setdefault("responses", {}).setdefault(str(answer.status), {})[exchange.name] = example
            if exchange.request_example:
                request = {"summary": exchange.summary, "value": exchange.body}
                documented.setdefault("requests", {})[exchange.name] = request
    return examples


def render(examples: Mapping[str, Any]) -> str:
    return json.dumps(examples, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main() -> None:
    EXAMPLES_FILE.write_text(render(record()))
    print(f"wrote {EXAMPLES_FILE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
