"""The uploader: equal parts, bounded buffers, retries of what R2 throws under load, abort on failure.

A fake S3 client (in memory, thread-safe) stands in for R2 so the test can observe exactly which parts arrive,
which buffers the uploader handed out, and inject R2's failures as botocore raises them — no timing involved.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from video_library.deadline import Deadline
from video_library.errors import OutOfTime, SourceUnavailable, StorageUnavailable
from video_library.upload import (
    MIB,
    RetryPolicy,
    is_transient,
    part_size_for,
    upload_object,
    with_retries,
)

PART = 5 * MIB
FAST_RETRY = RetryPolicy(attempts=4, base_s=0.0, cap_s=0.0, min_attempt_s=0.0)
METADATA = {"video-id": "v1", "transfer-id": "t1"}


def client_error(status: int, code: str, operation: str = "UploadPart") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


class FakeS3:
    """R2 in memory. ``faults[operation]`` is a list of exceptions raised by that operation's next calls."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.objects: dict[str, bytes] = {}
        self.metadata: dict[str, dict[str, str]] = {}
        self.uploads: dict[str, dict[int, bytes]] = {}
        self.aborted: list[str] = []
        self.calls: list[str] = []
        self.faults: dict[str, list[BaseException | Callable[[], BaseException]]] = {}

    def _call(self, operation: str) -> None:
        with self.lock:
            self.calls.append(operation)
            pending = self.faults.get(operation)
            fault = pending.pop(0) if pending else None
        if fault is not None:
            raise fault() if callable(fault) else fault

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, ContentType: str, Metadata: dict[str, str]) -> Any:
        self._call("PutObject")
        self.objects[Key] = bytes(Body)
        self.metadata[Key] = Metadata

    def create_multipart_upload(self, *, Bucket: str, Key: str, ContentType: str, Metadata: dict[str, str]) -> Any:
        self._call("CreateMultipartUpload")
        upload_id = f"upload-{len(self.uploads)}"
        self.uploads[upload_id] = {}
        self.metadata[upload_id] = Metadata
        return {"UploadId": upload_id}

    def upload_part(self, *, Bucket: str, Key: str, UploadId: str, PartNumber: int, Body: bytes) -> Any:
        self._call("UploadPart")
        with self.lock:
            if UploadId not in self.uploads:
                raise client_error(404, "NoSuchUpload")
            self.uploads[UploadId][PartNumber] = bytes(Body)
        return {"ETag": f'"{PartNumber}"'}

    def complete_multipart_upload(self, *, Bucket: str, Key: str, UploadId: str, MultipartUpload: Any) -> Any:
        if UploadId not in self.uploads:
            self._call("CompleteMultipartUpload")
            raise client_error(404, "NoSuchUpload", "CompleteMultipartUpload")
        numbers = [part["PartNumber"] for part in MultipartUpload["Parts"]]
        assert numbers == sorted(self.uploads[UploadId])
        # The object is made before any fault: a fault here is an answer lost after the upload completed.
        parts = self.uploads.pop(UploadId)
        self.objects[Key] = b"".join(parts[n] for n in numbers)
        self.metadata[Key] = self.metadata[UploadId]
        self._call("CompleteMultipartUpload")

    def head_object(self, *, Bucket: str, Key: str) -> Any:
        self._call("HeadObject")
        if Key not in self.objects:
            raise client_error(404, "NotFound", "HeadObject")
        return {"ContentLength": len(self.objects[Key]), "Metadata": self.metadata[Key]}

    def abort_multipart_upload(self, *, Bucket: str, Key: str, UploadId: str) -> Any:
        self._call("AbortMultipartUpload")
        self.aborted.append(UploadId)
        self.uploads.pop(UploadId, None)


class Reader:
    """The download as the uploader sees it: fills each buffer it is given, fewer bytes only at the end."""

    def __init__(self, data: bytes, fail_after: int | None = None) -> None:
        self.data = data
        self.position = 0
        self.fail_after = fail_after
        self.buffers: set[int] = set()

    def __call__(self, buffer: bytearray) -> int:
        self.buffers.add(id(buffer))
        if self.fail_after is not None and self.position >= self.fail_after:
            raise SourceUnavailable("the source stopped sending")
        piece = self.data[self.position : self.position + len(buffer)]
        buffer[: len(piece)] = piece
        self.position += len(piece)
        return len(piece)


def upload(s3: FakeS3, reader: Reader, **options: Any) -> Any:
    options.setdefault("limit", Deadline.after(60))
    options.setdefault("retry", FAST_RETRY)
    return upload_object(
        reader,
        s3,  # type: ignore[arg-type]
        bucket="b",
        key="k",
        content_type="video/mp4",
        metadata=METADATA,
        part_size=PART,
        **options,
    )


@pytest.mark.parametrize("size", [0, 1, PART - 1, PART, PART + 1, 3 * PART, 3 * PART + 17])
def test_the_object_is_the_body_in_equal_parts(size: int) -> None:
    data = random.Random(size).randbytes(size)
    s3 = FakeS3()

    uploaded = upload(s3, Reader(data))

    assert s3.objects["k"] == data
    assert uploaded.size == size
    if size < PART:
        assert uploaded.parts == 0 and s3.calls == ["PutObject"]
    else:
        assert uploaded.parts == -(-size // PART)
        assert s3.calls.count("UploadPart") == uploaded.parts


def test_buffers_are_reused_so_memory_is_bounded_by_the_parts_in_flight() -> None:
    s3 = FakeS3()
    reader = Reader(random.Random(1).randbytes(20 * PART + 3))

    upload(s3, reader, max_in_flight=2)

    assert len(reader.buffers) <= 3  # two uploading, one filling: whatever the file's size


@pytest.mark.parametrize(
    "fault",
    [
        client_error(503, "SlowDown"),
        client_error(429, "TooManyRequests"),
        client_error(500, "InternalError"),
        ConnectionClosedError(endpoint_url="https://r2"),
        ReadTimeoutError(endpoint_url="https://r2"),
    ],
    ids=["slow-down", "429", "500", "reset", "read-timeout"],
)
@pytest.mark.parametrize("operation", ["UploadPart", "PutObject", "CreateMultipartUpload"])
def test_a_transient_failure_is_sent_again_and_the_object_completes(fault: Exception, operation: str) -> None:
    size = 2 * PART + 1 if operation != "PutObject" else 100
    data = random.Random(2).randbytes(size)
    s3 = FakeS3()
    s3.faults[operation] = [fault]

    upload(s3, Reader(data))

    assert s3.objects["k"] == data
    assert s3.calls.count(operation) == (2 if operation != "UploadPart" else 4)  # one of them twice


def test_a_lost_answer_to_complete_is_settled_by_the_object_itself() -> None:
    data = random.Random(3).randbytes(2 * PART)
    s3 = FakeS3()
    s3.faults["CompleteMultipartUpload"] = [ConnectionClosedError(endpoint_url="https://r2")]

    upload(s3, Reader(data))

    assert s3.objects["k"] == data
    assert s3.calls[-3:] == ["CompleteMultipartUpload", "CompleteMultipartUpload", "HeadObject"]
    assert s3.aborted == []


def test_an_upload_gone_for_another_reason_is_not_taken_for_ours() -> None:
    data = random.Random(4).randbytes(2 * PART)
    s3 = FakeS3()
    # another transfer's object sits at the key: our complete's retry must not claim it
    s3.objects["k"], s3.metadata["k"] = b"other", {"transfer-id": "someone-else"}

    def complete_vanished(*, UploadId: str, **_: Any) -> Any:
        # the upload disappears without making an object (aborted elsewhere), and the answer is lost
        if s3.uploads.pop(UploadId, None) is None:
            raise client_error(404, "NoSuchUpload", "CompleteMultipartUpload")
        raise ConnectionClosedError(endpoint_url="https://r2")

    s3.complete_multipart_upload = complete_vanished  # type: ignore[method-assign]

    with pytest.raises(StorageUnavailable, match="refused"):
        upload(s3, Reader(data))
    assert s3.objects["k"] == b"other"


@pytest.mark.parametrize("fault", [client_error(403, "AccessDenied"), client_error(404, "NoSuchBucket")])
def test_a_refusal_is_not_retried_and_the_upload_is_aborted(fault: Exception) -> None:
    s3 = FakeS3()
    s3.faults["UploadPart"] = [fault]

    with pytest.raises(StorageUnavailable, match="refused"):
        upload(s3, Reader(random.Random(5).randbytes(3 * PART)))

    assert s3.aborted == ["upload-0"] and "k" not in s3.objects
    assert s3.uploads == {}


def test_a_failure_that_keeps_coming_gives_up_after_the_attempts_and_aborts() -> None:
    s3 = FakeS3()
    s3.faults["UploadPart"] = [client_error(503, "SlowDown") for _ in range(50)]

    with pytest.raises(StorageUnavailable, match="4 times"):
        upload(s3, Reader(random.Random(6).randbytes(2 * PART)))

    assert s3.aborted == ["upload-0"] and "k" not in s3.objects


def test_a_failing_source_aborts_the_upload() -> None:
    s3 = FakeS3()

    with pytest.raises(SourceUnavailable):
        upload(s3, Reader(random.Random(7).randbytes(4 * PART), fail_after=2 * PART))

    assert s3.aborted == ["upload-0"] and "k" not in s3.objects


def test_no_request_starts_without_time_for_it() -> None:
    s3 = FakeS3()

    with pytest.raises(OutOfTime):
        upload(s3, Reader(b"x" * 100), limit=Deadline.after(0.5), retry=RetryPolicy(min_attempt_s=1.0))

    assert s3.calls == []


def test_retries_stop_when_the_time_is_up() -> None:
    calls = []

    def always_throttled() -> None:
        calls.append(1)
        raise client_error(503, "SlowDown")

    with pytest.raises(OutOfTime):
        with_retries(
            always_throttled,
            what="store",
            limit=Deadline.after(0.3),
            retry=RetryPolicy(attempts=100, base_s=0.2, cap_s=0.2, min_attempt_s=0.1),
        )

    assert 1 <= len(calls) < 100


def test_what_counts_as_transient() -> None:
    assert is_transient(client_error(503, "SlowDown"))
    assert is_transient(client_error(429, "Anything"))
    assert is_transient(client_error(400, "RequestTimeout"))
    assert not is_transient(client_error(403, "AccessDenied"))
    assert not is_transient(ValueError("a bug"))


def test_part_size_grows_to_fit_the_cap_in_ten_thousand_parts() -> None:
    assert part_size_for(2 * 1024 * MIB) == 8 * MIB
    assert part_size_for(100 * 1024 * MIB) == 11 * MIB


def test_parts_below_the_s3_minimum_are_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        upload_object(
            Reader(b""),
            FakeS3(),  # type: ignore[arg-type]
            bucket="b",
            key="k",
            content_type="video/mp4",
            metadata={},
            limit=Deadline.after(10),
            part_size=MIB,
        )
