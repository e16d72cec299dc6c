"""The generate quota through the real route: ``POST /api/video/generate`` on the library API's handler.

GIVEN a quota of N generations per user and clock hour, WHEN a user calls more often, THEN the N+1th call in the
hour is ``429`` with ``Retry-After`` and the project's error body, PiAPI is never asked, nothing is stored, other
users are unaffected, and concurrent calls (separate Lambda-like processes racing against the serialised moto
server) never get more than N through.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from devtools.apigw import http_api_event
from devtools.fake_piapi import FakePiapi
from devtools.lambda_context import LocalLambdaContext
from devtools.lambda_process import FunctionInstance
from devtools.local_aws import LocalAws
from functions.library_api.handler import handler
from video_library import db, piapi_client, quota
from video_library.errors import QuotaExceeded
from video_library.listing import Listing, list_videos
from video_library.settings import get_settings

API_KEY = "quota-test-key"
QUOTA = 3
# 09:59:30 UTC: the hour's window ends in 30 s.
NOW = datetime(2026, 11, 25, 9, 59, 30, tzinfo=UTC)


def generate_event(user: str, prompt: str = "a kite over the dunes", **body: Any) -> dict[str, Any]:
    return http_api_event(
        "POST",
        "/api/video/generate",
        body=json.dumps({"campaign_id": "42", "prompt": prompt, **body}),
        headers={"content-type": "application/json"},
        claims={"sub": user},
    )


def generate(user: str, **body: Any) -> tuple[int, dict[str, str], dict[str, Any]]:
    response = handler(generate_event(user, **body), LocalLambdaContext())
    return response["statusCode"], response.get("headers") or {}, json.loads(response["body"])


def stored_videos(user: str) -> int:
    return len(list_videos(Listing(user_id=user, limit=100))[0])


@pytest.fixture
def piapi(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePiapi]:
    server = FakePiapi(API_KEY, delay_s=3600).start()  # no webhook deliveries during these tests
    monkeypatch.setenv("PIAPI_BASE_URL", server.base_url)
    monkeypatch.setenv("PIAPI_API_KEY", API_KEY)
    monkeypatch.setenv("GENERATE_QUOTA_PER_HOUR", str(QUOTA))
    get_settings.cache_clear()
    yield server
    server.stop()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The quota's "now", set by the test (the calls of one test then fall in a known window)."""
    now = [NOW]
    monkeypatch.setattr(quota, "utcnow", lambda: now[0])
    return now


@pytest.mark.usefixtures("aws")
def test_the_call_after_the_quota_is_429_with_retry_after_and_nothing_happens(
    piapi: FakePiapi, clock: list[datetime]
) -> None:
    # GIVEN alice has generated her N videos this hour
    answers = [generate("alice")[0] for _ in range(QUOTA)]
    assert answers == [202] * QUOTA

    # WHEN she asks for one more
    status, headers, body = generate("alice")

    # THEN it is refused with when to come back (the hour ends in 30 s), in the project's error shape
    assert status == 429
    assert headers["Retry-After"] == "30"
    assert body["error"]["code"] == "quota_exceeded"
    assert (body["error"]["limit"], body["error"]["retry_after_s"]) == (QUOTA, 30)
    assert "at most 3 times per hour" in body["error"]["message"]
    # AND PiAPI was not asked, and no record was made
    assert len(piapi.tasks) == QUOTA
    assert stored_videos("alice") == QUOTA


@pytest.mark.usefixtures("aws")
def test_other_users_are_unaffected_and_the_next_hour_starts_afresh(piapi: FakePiapi, clock: list[datetime]) -> None:
    for _ in range(QUOTA):
        generate("alice")
    assert generate("alice")[0] == 429

    # bob has his own quota
    assert [generate("bob")[0] for _ in range(QUOTA)] == [202] * QUOTA

    # and at 10:00 alice has hers back
    clock[0] = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)
    assert generate("alice")[0] == 202
    assert len(piapi.tasks) == 2 * QUOTA + 1


@pytest.mark.usefixtures("aws")
def test_requests_refused_before_piapi_or_by_piapi_give_their_unit_back(
    piapi: FakePiapi, clock: list[datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN requests that never start a task: invalid bodies (422 before the route), PiAPI refusing the key (502)
    for _ in range(QUOTA + 1):
        assert generate("alice", model="no-such-model")[0] == 422
    monkeypatch.setenv("PIAPI_API_KEY", "wrong-key")
    get_settings.cache_clear()
    for _ in range(QUOTA + 1):
        status, _, body = generate("alice")
        assert (status, body["error"]["code"]) == (502, "provider_error")

    # WHEN the key is right again
    monkeypatch.setenv("PIAPI_API_KEY", API_KEY)
    get_settings.cache_clear()

    # THEN the whole quota is still there
    assert [generate("alice")[0] for _ in range(QUOTA + 1)] == [202] * QUOTA + [429]


@pytest.mark.usefixtures("aws")
def test_an_unreachable_piapi_gives_the_unit_back(
    piapi: FakePiapi, clock: list[datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("PIAPI_BASE_URL", f"http://127.0.0.1:{port}")  # nothing listens there
    get_settings.cache_clear()
    assert [generate("alice")[0] for _ in range(QUOTA + 1)] == [502] * (QUOTA + 1)

    monkeypatch.setenv("PIAPI_BASE_URL", piapi.base_url)
    get_settings.cache_clear()
    assert [generate("alice")[0] for _ in range(QUOTA)] == [202] * QUOTA


@pytest.mark.usefixtures("aws")
def test_a_request_whose_fate_at_piapi_is_unknown_keeps_its_unit(
    piapi: FakePiapi, clock: list[datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a PiAPI that takes the request and never answers (the task may exist and be billed)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    monkeypatch.setattr(piapi_client, "TIMEOUT", piapi_client.httpx.Timeout(0.2, connect=2.0))
    monkeypatch.setenv("PIAPI_BASE_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
    get_settings.cache_clear()
    try:
        status, _, body = generate("alice")
    finally:
        silent.close()
    assert (status, body["error"]["message"]) == (502, "PiAPI did not answer in time")

    # THEN that unit stays taken
    monkeypatch.setenv("PIAPI_BASE_URL", piapi.base_url)
    get_settings.cache_clear()
    assert [generate("alice")[0] for _ in range(QUOTA)] == [202] * (QUOTA - 1) + [429]


# ---- the race ------------------------------------------------------------------------------------------------

INSTANCES = 4
CALLS_PER_INSTANCE = 3


@pytest.fixture
def racing_instances(monkeypatch: pytest.MonkeyPatch, piapi: FakePiapi) -> Iterator[tuple[list[FunctionInstance], Any]]:
    """Instances of the library API, each its own process as on Lambda, sharing the serialised moto server."""
    with LocalAws() as aws:
        monkeypatch.setenv("DYNAMODB_ENDPOINT_URL", aws.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
        get_settings.cache_clear()
        db.create_tables()
        instances = [
            FunctionInstance(
                "functions/library_api/handler.handler",
                function_name=f"video-library-test-libraryApi-{index}",
                timeout_s=29,
                memory_mb=256,
            )
            for index in range(INSTANCES)
        ]
        try:
            yield instances, aws
        finally:
            for instance in instances:
                instance.close()


def test_concurrent_calls_never_get_more_than_the_quota_through(
    racing_instances: tuple[list[FunctionInstance], Any], piapi: FakePiapi
) -> None:
    instances, aws = racing_instances
    # GIVEN every instance warm (its cold start done), so that the calls below really meet
    warm_up = http_api_event("GET", "/api/video/library", claims={"sub": "nobody"})
    with ThreadPoolExecutor(INSTANCES) as pool:
        assert [answer["statusCode"] for answer in pool.map(lambda i: i.invoke(warm_up), instances)] == [200] * 4

    # WHEN they all generate for the same user at once
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(INSTANCES)

    def race(instance: FunctionInstance) -> None:
        start.wait()
        for call in range(CALLS_PER_INSTANCE):
            answer = instance.invoke(generate_event("alice", prompt=f"race {call}"))
            with lock:
                statuses.append(answer["statusCode"])

    threads = [threading.Thread(target=race, args=(instance,)) for instance in instances]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN no hour's counter went past the quota, and exactly what the counters say got through
    accepted = statuses.count(202)
    assert accepted + statuses.count(429) == INSTANCES * CALLS_PER_INSTANCE
    dynamodb = boto3.client(
        "dynamodb", endpoint_url=aws.url, region_name="us-east-1", aws_access_key_id="l", aws_secret_access_key="l"
    )
    counters = [
        int(item["used"]["N"])
        for item in dynamodb.scan(TableName=get_settings().quotas_table)["Items"]
        if item["counter_id"]["S"].startswith("generate#alice#")
    ]
    assert counters and all(used <= QUOTA for used in counters)
    assert accepted == sum(counters) == len(piapi.tasks)
    if len(counters) == 1:  # all in one hour (unless the race straddled one)
        assert accepted == QUOTA


def test_many_threads_taking_at_once_never_take_more_than_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the serialised moto server (DynamoDB applies one request at a time, as real DynamoDB does per item)
    with LocalAws() as aws:
        monkeypatch.setenv("DYNAMODB_ENDPOINT_URL", aws.url)
        get_settings.cache_clear()
        db.create_tables()
        quota.take(quota.GENERATE, "warm-up", QUOTA, NOW)  # the model's connection is made before the threads
        start = threading.Barrier(16)

        def take() -> bool:
            start.wait()
            try:
                quota.take(quota.GENERATE, "alice", QUOTA, NOW)
            except QuotaExceeded:
                return False
            return True

        # WHEN 16 threads take a unit at the same moment
        with ThreadPoolExecutor(16) as pool:
            taken = list(pool.map(lambda _: take(), range(16)))

    # THEN exactly the limit got one
    assert taken.count(True) == QUOTA
