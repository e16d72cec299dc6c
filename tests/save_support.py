"""Fixtures for Save to Library: moto over real HTTP for DynamoDB and "R2", a misbehaving video source,
and a guard that fails any test whose code tries to connect beyond loopback."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from devtools.apigw import http_api_event
from devtools.lambda_context import LocalLambdaContext
from devtools.local_aws import LocalAws
from devtools.video_source import VideoSourceServer
from tests.conftest import make_video
from video_library import db
from video_library.models import TaskProgress
from video_library.settings import get_settings
from video_library.status import VideoStatus

BUCKET = "video-library-test"
MIB = 1024 * 1024
PART = 8 * MIB


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


@dataclass
class SaveStack:
    aws: LocalAws
    source: VideoSourceServer
    s3: Any

    def object_bytes(self, key: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return body

    def keys(self) -> list[str]:
        return [item["Key"] for item in self.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]

    def unfinished_uploads(self) -> list[Any]:
        uploads: list[Any] = self.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
        return uploads


def point_save_at(aws: LocalAws, monkeypatch: pytest.MonkeyPatch, *, allowed_hosts: str, dev_hosts: str = "") -> None:
    """Settings for a save against ``aws`` (table and "R2" bucket created, request log emptied)."""
    monkeypatch.setenv("DYNAMODB_ENDPOINT_URL", aws.url)
    monkeypatch.setenv("R2_ENDPOINT_URL", aws.url)
    monkeypatch.setenv("R2_BUCKET", BUCKET)
    monkeypatch.setenv("R2_ACCESS_KEY_ID", "r2-key-id")
    monkeypatch.setenv("R2_SECRET_ACCESS_KEY", "r2-secret")
    monkeypatch.setenv("ALLOWED_SOURCE_HOSTS", allowed_hosts)
    monkeypatch.setenv("DEV_INSECURE_SOURCE_HOSTS", dev_hosts)
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
    point_save_at(
        local_aws, monkeypatch, allowed_hosts=".theapi.app,127.0.0.1,cdn.example.test,[::1],::1", dev_hosts="localhost"
    )
    s3 = local_aws.client("s3")
    yield SaveStack(local_aws, video_source, s3)
    get_settings.cache_clear()


def completed_video(
    url: str, *, user_id: str = "alice", campaign_id: str = "42", raw_url: str | None = None
) -> db.VideoRecord:
    """A video PiAPI has finished, its file at ``url`` (and the unwatermarked one at ``raw_url``)."""
    record = make_video(f"task-{url}-{raw_url}", user_id=user_id, campaign_id=campaign_id)
    assert record.task_id is not None
    db.apply_task_progress(
        record.video_id,
        TaskProgress(
            task_id=record.task_id,
            status=VideoStatus.COMPLETED,
            provider_video_url=url,
            provider_video_raw_url=raw_url or url,
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


# Faults on the wire: appended after the save fixtures above, hence the late import.
from devtools.faulty_proxy import FaultyProxy  # noqa: E402


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
