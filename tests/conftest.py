"""Shared fixtures: a moto-backed AWS, settings from a clean environment, records and handler events.

Every test runs offline. Fake credentials are set before any client exists, and each test that touches
AWS runs wholly inside ``mock_aws`` with the table made by the same ``create_tables()`` production uses.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from devtools.lambda_context import LocalLambdaContext
from video_library import db
from video_library.models import NewVideo
from video_library.observability import logger
from video_library.settings import get_settings

pytest_plugins = ["tests.save_support"]

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
WEBHOOK_SECRET = "s3cr3t-from-config"  # the value the samples in events/ carry

BASE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "VIDEOS_TABLE": "videos-test",
    "PIAPI_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "VideoLibraryTest",
}


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A known environment for every test; settings are re-read from it."""
    for name in (
        "DYNAMODB_ENDPOINT_URL",
        "R2_ENDPOINT_URL",
        "R2_PUBLIC_BASE_URL",
        "ALLOWED_SOURCE_HOSTS",
        "DEV_INSECURE_SOURCE_HOSTS",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def aws() -> Iterator[None]:
    """moto's in-memory AWS with the video table created."""
    with mock_aws():
        db.create_tables()
        yield


@pytest.fixture
def lambda_context() -> LocalLambdaContext:
    return LocalLambdaContext()


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Everything the service's Powertools logger writes, as the JSON lines CloudWatch would receive."""
    buffer = io.StringIO()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(previous)


def log_records(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def emitted_metrics(stdout: str) -> dict[str, float]:
    """The metrics Powertools wrote (CloudWatch EMF lines on stdout), summed by name."""
    emitted: dict[str, float] = {}
    for line in stdout.splitlines():
        if '"_aws"' not in line:
            continue
        blob = json.loads(line)
        for metric in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            value = blob[metric["Name"]]
            emitted[metric["Name"]] = emitted.get(metric["Name"], 0) + (
                sum(value) if isinstance(value, list) else value
            )
    return emitted


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


def task_of(event: dict[str, Any]) -> dict[str, Any]:
    """The PiAPI task object inside a webhook event's body."""
    task: dict[str, Any] = json.loads(event["body"])["data"]
    return task


def make_video(
    task_id: str | None = None,
    *,
    user_id: str = "alice",
    campaign_id: str = "42",
    prompt: str = "a paper boat drifting down a rainy street",
    **fields: Any,
) -> db.VideoRecord:
    return db.create_video(NewVideo(user_id=user_id, campaign_id=campaign_id, prompt=prompt, task_id=task_id, **fields))
