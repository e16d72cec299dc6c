"""The wire: over HTTPS, uploads to R2 carry no aws-chunked body or CRC trailer (R2 has rejected them), and
the source is fetched with full certificate checks while connecting only to the vetted address."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from devtools.local_aws import LocalAws
from devtools.tls import self_signed_certificate
from devtools.video_source import VideoSourceServer, synthetic_sha256
from tests.save_support import BUCKET, MIB, PART, QUEUE, SaveStack, completed_video, point_save_at
from video_library import source
from video_library.settings import get_settings


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"), ["localhost", "cdn.example.test", "127.0.0.1"])


@pytest.fixture(scope="module")
def https_aws(certificate: tuple[str, str]) -> Iterator[LocalAws]:
    with LocalAws(tls=certificate) as server:
        yield server


@pytest.fixture(scope="module")
def https_source(certificate: tuple[str, str]) -> Iterator[VideoSourceServer]:
    with VideoSourceServer(tls=certificate) as server:
        yield server


@pytest.fixture
def https_stack(
    https_aws: LocalAws,
    https_source: VideoSourceServer,
    certificate: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    loopback_only: list[Any],
) -> Iterator[LocalAws]:
    https_aws.reset()
    # boto3 trusts AWS_CA_BUNDLE, the source client the default verify paths (SSL_CERT_FILE): our test CA.
    monkeypatch.setenv("AWS_CA_BUNDLE", certificate[0])
    monkeypatch.setenv("SSL_CERT_FILE", certificate[0])
    # The source listens on a random loopback port, so it can only be a development host:port (port 443 and a
    # public address are required of every other source); the name still resolves through the policy's resolver.
    point_save_at(
        https_aws, monkeypatch, allowed_hosts="cdn.example.test", dev_hosts=f"cdn.example.test:{https_source.port}"
    )
    monkeypatch.setattr(source, "resolve_host", lambda host, port: ["127.0.0.1"])
    yield https_aws
    get_settings.cache_clear()


def upload_requests(aws: LocalAws) -> list[Any]:
    return [r for r in aws.requests if r.method == "PUT" and "/videos/" in r.path]


def save_through_the_worker(aws: LocalAws, source: VideoSourceServer, video_id: str) -> Any:
    """The save request, then the worker on its message; the record afterwards."""
    stack = SaveStack(
        aws, source, aws.client("s3"), queue_url=aws.client("sqs").get_queue_url(QueueName=QUEUE)["QueueUrl"]
    )
    return stack.save_and_run(video_id)


@pytest.mark.parametrize(("size", "requests"), [(PART - 1, 1), (PART + 3 * MIB, 2)], ids=["single-put", "multipart"])
def test_uploads_over_https_carry_no_aws_chunked_body_or_checksum_trailer(
    https_stack: LocalAws, https_source: VideoSourceServer, size: int, requests: int
) -> None:
    video = completed_video(https_source.url(host="cdn.example.test", size=size))

    record = save_through_the_worker(https_stack, https_source, video.video_id)

    assert record.save_state == "saved", record.save_error
    uploads = upload_requests(https_stack)
    assert len(uploads) == requests
    for request in uploads:
        assert "aws-chunked" not in request.headers.get("content-encoding", "")
        assert "x-amz-trailer" not in request.headers
        assert not [h for h in request.headers if h.startswith("x-amz-checksum-")]
    stored = https_stack.client("s3").get_object(Bucket=BUCKET, Key=record.r2_key)["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == synthetic_sha256(size)


def test_the_same_check_catches_boto3_defaults(https_stack: LocalAws) -> None:
    """Control: a client with boto3's default checksum settings does send aws-chunked over HTTPS here."""
    default_client = boto3.client(
        "s3",
        endpoint_url=https_stack.url,
        region_name="auto",
        aws_access_key_id="k",
        aws_secret_access_key="s",
    )
    https_stack.client("s3").create_bucket(Bucket="control-bucket")
    https_stack.requests.clear()

    default_client.put_object(Bucket="control-bucket", Key="x/videos/y.mp4", Body=b"x" * 1024)

    [request] = upload_requests(https_stack)
    assert "aws-chunked" in request.headers.get("content-encoding", "") or "x-amz-trailer" in request.headers


def test_the_source_certificate_is_checked_against_the_host_name(
    https_stack: LocalAws, https_source: VideoSourceServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a client that trusts a different certificate than the one the source presents
    other_cert, _ = self_signed_certificate(tmp_path, ["cdn.example.test"])
    monkeypatch.setenv("SSL_CERT_FILE", other_cert)
    video = completed_video(https_source.url(host="cdn.example.test", size=1024))

    record = save_through_the_worker(https_stack, https_source, video.video_id)

    # THEN the save fails for good (asking again would meet the same certificate), nothing fetched or stored
    assert (record.save_state, record.save_error_code) == ("failed", "source_refused")
    assert "certificate" in (record.save_error or "")
    assert https_stack.client("s3").list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0
