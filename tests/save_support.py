"""Fixtures for Save to Library: moto over real HTTP for DynamoDB, "R2" and the save queue (SQS), a
misbehaving video source, the worker run on the queue's messages as Lambda's event source mapping would, and a
guard that fails any test whose code tries to connect beyond loopback."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest

from devtools.apigw import http_api_event
from devtools.faulty_proxy import FaultyProxy
from devtools.lambda_context import LocalLambdaContext
from devtools.local_aws import LocalAws
from devtools.queue_poller import QueuePoller
from devtools.video_source import VideoSourceServer
from tests.conftest import make_video
from video_library import db, transfer
from video_library.models import TaskProgress
from video_library.settings import get_settings
from video_library.status import VideoStatus

BUCKET = "video-library-test"
MIB = 1024 * 1024
PART = 8 * MIB


# Addresses inside our own network that a hostile URL aims at, and one public address.
INTERNAL_TARGETS = {"loopback": "127.0.0.1", "private": "10.0.0.1", "metadata": "169.254.169.254"}
PUBLIC_IPV4 = "8.8.8.8"


def _teredo(server: IPv4Address, client: IPv4Address) -> str:
    # RFC 4380: 2001:0:<server>:<flags>:<port, inverted>:<client, inverted>
    inverted_port, inverted_client = ~40000 & 0xFFFF, ~int(client) & 0xFFFFFFFF
    return str(IPv6Address((0x20010000 << 96) | (int(server) << 64) | (inverted_port << 32) | inverted_client))


def embedded_forms(ipv4: str) -> dict[str, str]:
    """``ipv4`` itself and every IPv6 spelling that stands for it (the Teredo forms pair it with a public address)."""
    address, public = IPv4Address(ipv4), IPv4Address(PUBLIC_IPV4)
    value = int(address)
    return {
        "ipv4": ipv4,
        "ipv4-mapped": f"::ffff:{ipv4}",
        "ipv4-mapped-hex": str(IPv6Address((0xFFFF << 32) | value)),
        "ipv4-compatible": str(IPv6Address(value)),
        "ipv4-translated": str(IPv6Address((0xFFFF << 48) | value)),
        "nat64": str(IPv6Address(int(IPv6Address("64:ff9b::")) | value)),
        "6to4": str(IPv6Address((0x2002 << 112) | (value << 80) | 1)),
        "teredo-server": _teredo(address, public),
        "teredo-client": _teredo(public, address),
    }


def url_host(address: str) -> str:
    """An address as a URL writes it: IPv6 in brackets."""
    return f"[{address}]" if ":" in address else address


@pytest.fixture(scope="session")
def local_aws() -> Iterator[LocalAws]:
    with LocalAws() as server:
        yield server


@pytest.fixture(scope="session")
def video_source() -> Iterator[VideoSourceServer]:
    with VideoSourceServer() as server:
        yield server


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Fail loudly, without sending anything, if code under test connects anywhere but loopback."""
    attempts: list[tuple[Any, ...]] = []
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else str(address)
        if host not in ("127.0.0.1", "::1", "localhost"):
            attempts.append(address)
            raise AssertionError(f"test code tried to connect to {address!r}")
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    return attempts


QUEUE = "saves-test"
MAX_ATTEMPTS = 5


@dataclass
class SaveStack:
    aws: LocalAws
    source: VideoSourceServer
    s3: Any
    queue_url: str = ""
    dead_letter_url: str = ""

    def object_bytes(self, key: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return body

    def keys(self) -> list[str]:
        return [item["Key"] for item in self.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]

    def unfinished_uploads(self) -> list[Any]:
        uploads: list[Any] = self.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
        return uploads

    @property
    def sqs(self) -> Any:
        return self.aws.client("sqs")

    def queued(self, url: str | None = None) -> int:
        """Messages in a queue, visible or not (the save queue unless ``url`` says otherwise)."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url or self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def run_worker(self, *, timeout_s: float = 900, rounds: int = 1) -> list[dict[str, Any]]:
        """Deliver what the queue holds to the real worker handler, as the event source mapping would (one
        message per invocation), ``rounds`` times over; returns the handler's answers."""
        from functions.save_worker.handler import handler

        answers: list[dict[str, Any]] = []

        def invoke(event: dict[str, Any]) -> Any:
            answer = handler(event, LocalLambdaContext(function_name="save-worker-test", timeout_s=timeout_s))
            answers.append(answer)
            return answer

        poller = QueuePoller(self.sqs, self.queue_url, [invoke])
        for _ in range(rounds):
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
            ).get("Messages", [])
            for message in messages:
                poller.deliver(invoke, [message])
        return answers

    def save_and_run(self, video_id: str, **worker: Any) -> db.VideoRecord:
        """Ask for the save through the API, run the worker until the queue is empty; the record afterwards."""
        status, body = call_save({"video_id": video_id})
        assert status in (200, 202), body
        for _ in range(MAX_ATTEMPTS + 1):
            if not self.run_worker(**worker):
                break
        record = db.get_video(video_id, consistent=True)
        assert record is not None
        return record


def point_save_at(aws: LocalAws, monkeypatch: pytest.MonkeyPatch, *, allowed_hosts: str, dev_hosts: str = "") -> None:
    """Settings for a save against ``aws`` (table and "R2" bucket created, request log emptied)."""
    monkeypatch.setenv("DYNAMODB_ENDPOINT_URL", aws.url)
    monkeypatch.setenv("R2_ENDPOINT_URL", aws.url)
    monkeypatch.setenv("R2_BUCKET", BUCKET)
    monkeypatch.setenv("R2_ACCESS_KEY_ID", "r2-key-id")
    monkeypatch.setenv("R2_SECRET_ACCESS_KEY", "r2-secret")
    monkeypatch.setenv("ALLOWED_SOURCE_HOSTS", allowed_hosts)
    monkeypatch.setenv("DEV_INSECURE_SOURCE_HOSTS", dev_hosts)
    queue_url, _ = aws.create_save_queues(QUEUE, max_receives=MAX_ATTEMPTS, visibility_s=300)
    monkeypatch.setenv("SQS_ENDPOINT_URL", aws.url)
    monkeypatch.setenv("SAVE_QUEUE_URL", queue_url)
    monkeypatch.setenv("SAVE_MAX_ATTEMPTS", str(MAX_ATTEMPTS))
    get_settings.cache_clear()
    db.create_tables()
    aws.client("s3").create_bucket(Bucket=BUCKET)
    aws.requests.clear()


@pytest.fixture
def stack(
    local_aws: LocalAws,
    video_source: VideoSourceServer,
    monkeypatch: pytest.MonkeyPatch,
    loopback_only: list[tuple[Any, ...]],
) -> Iterator[SaveStack]:
    local_aws.reset()
    # The local source is a development host: plain http on exactly its own port, no address check.
    point_save_at(
        local_aws,
        monkeypatch,
        allowed_hosts=".theapi.app,127.0.0.1,cdn.example.test,[::1],::1",
        dev_hosts=f"localhost:{video_source.port}",
    )
    s3 = local_aws.client("s3")
    sqs = local_aws.client("sqs")
    # Retries come back at once here (on AWS: 30 s, 1 min, 2 min, ...), so a test can run the next attempt.
    monkeypatch.setattr(transfer, "backoff_s", lambda attempt: 0)
    yield SaveStack(
        local_aws,
        video_source,
        s3,
        queue_url=sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"],
        dead_letter_url=sqs.get_queue_url(QueueName=f"{QUEUE}-dead-letter")["QueueUrl"],
    )
    get_settings.cache_clear()


def completed_video(
    url: str,
    *,
    user_id: str = "alice",
    campaign_id: str = "42",
    raw_url: str | None = None,
    thumbnail_url: str | None = None,
    prompt: str = "a paper boat drifting down a rainy street",
) -> db.VideoRecord:
    """A video PiAPI has finished, its file at ``url`` (and the unwatermarked one at ``raw_url``, its thumbnail at
    ``thumbnail_url``)."""
    record = make_video(
        f"task-{url}-{raw_url}-{thumbnail_url}-{prompt}", user_id=user_id, campaign_id=campaign_id, prompt=prompt
    )
    assert record.task_id is not None
    db.apply_task_progress(
        record.video_id,
        TaskProgress(
            task_id=record.task_id,
            status=VideoStatus.COMPLETED,
            provider_video_url=url,
            provider_video_raw_url=raw_url or url,
            thumbnail_url=thumbnail_url,
        ),
    )
    saved = db.get_video(record.video_id, consistent=True)
    assert saved is not None
    return saved


def save_event(body: Any, *, user: str | None = "alice", raw: str | None = None) -> dict[str, Any]:
    claims = {"sub": user, "iss": "https://issuer.example.com", "aud": "video-library"} if user else None
    return http_api_event(
        "POST",
        "/api/video/save-to-library",
        body=raw if raw is not None else json.dumps(body),
        headers={"content-type": "application/json", "authorization": "Bearer eyJ..."},
        claims=claims,
    )


def call_save(
    body: Any, *, user: str | None = "alice", raw: str | None = None, timeout_s: float = 900
) -> tuple[int, dict[str, Any]]:
    from functions.save_to_library.handler import handler

    response = handler(save_event(body, user=user, raw=raw), LocalLambdaContext(timeout_s=timeout_s))
    return response["statusCode"], json.loads(response["body"])


@pytest.fixture(scope="session")
def faulty_proxy(local_aws: LocalAws) -> Iterator[FaultyProxy]:
    with FaultyProxy(local_aws.url) as proxy:
        yield proxy


@pytest.fixture
def faults(faulty_proxy: FaultyProxy) -> Iterator[FaultyProxy]:
    """A FaultyProxy in front of ``local_aws``, without rules and with an empty log: point R2_ENDPOINT_URL
    and/or DYNAMODB_ENDPOINT_URL at ``faults.url`` and add rules. Whatever a test leaves stalled is dropped."""
    faulty_proxy.clear()
    yield faulty_proxy
    faulty_proxy.clear()
