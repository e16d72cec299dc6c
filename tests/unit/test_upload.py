"""The streaming uploader: equal parts whatever the source's chunking, bounded buffering, abort on failure.

A fake S3 client (in memory, thread-safe) stands in for R2 so the test can observe exactly which parts
arrive and how many bytes the uploader holds at any moment — no timing involved.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from video_library.errors import SourceUnavailable
from video_library.upload import MIB, part_size_for, stream_put, upload_stream

PART = 5 * MIB


class FakeS3:
    def __init__(self, fail_on_part: int | None = None) -> None:
        self.lock = threading.Lock()
        self.objects: dict[str, bytes] = {}
        self.metadata: dict[str, dict[str, str]] = {}
        self.uploads: dict[str, dict[int, bytes]] = {}
        self.aborted: list[str] = []
        self.completed: list[str] = []
        self.uploaded_bytes = 0
        self.fail_on_part = fail_on_part

    def put_object(
        self, *, Bucket: str, Key: str, Body: Any, ContentType: str, Metadata: dict[str, str], **extra: Any
    ) -> Any:
        if isinstance(Body, bytes):
            self.objects[Key] = Body
        else:  # a stream: read it the way an HTTP client sends a body, block by block
            received = bytearray()
            try:
                while block := Body.read(64 * 1024):
                    received += block
                    self.on_block(len(received))
            except Exception as exc:
                raise ConnectionError("request body failed") from exc  # as botocore reports it
            if len(received) != extra["ContentLength"]:
                raise ConnectionError("body shorter than Content-Length")
            self.objects[Key] = bytes(received)
        self.metadata[Key] = Metadata

    def on_block(self, received: int) -> None:
        """Called as a streamed body arrives; tests observe the sender's buffering through it."""

    def create_multipart_upload(self, *, Bucket: str, Key: str, ContentType: str, Metadata: dict[str, str]) -> Any:
        upload_id = f"upload-{len(self.uploads)}"
        self.uploads[upload_id] = {}
        self.metadata[Key] = Metadata
        return {"UploadId": upload_id}

    def upload_part(self, *, Bucket: str, Key: str, UploadId: str, PartNumber: int, Body: bytes) -> Any:
        if PartNumber == self.fail_on_part:
            raise ConnectionError("R2 went away")
        with self.lock:
            self.uploads[UploadId][PartNumber] = Body
            self.uploaded_bytes += len(Body)
        return {"ETag": f'"{PartNumber}"'}

    def complete_multipart_upload(self, *, Bucket: str, Key: str, UploadId: str, MultipartUpload: Any) -> Any:
        numbers = [part["PartNumber"] for part in MultipartUpload["Parts"]]
        assert numbers == sorted(self.uploads[UploadId])
        self.objects[Key] = b"".join(self.uploads[UploadId][n] for n in numbers)
        self.completed.append(UploadId)

    def abort_multipart_upload(self, *, Bucket: str, Key: str, UploadId: str) -> Any:
        self.aborted.append(UploadId)
        del self.uploads[UploadId]

    def copy_object(self, *, Bucket: str, Key: str, Metadata: dict[str, str], **_: Any) -> Any:
        self.metadata[Key] = Metadata

    def delete_object(self, *, Bucket: str, Key: str) -> Any:
        self.objects.pop(Key, None)


def ragged_chunks(data: bytes, seed: int) -> Iterator[bytes]:
    """The body in irregular pieces, like a network delivers it (short reads included)."""
    rng = random.Random(seed)
    position = 0
    while position < len(data):
        step = rng.choice([1, 7, 1000, 4096, 65536, 300_000])
        yield data[position : position + step]
        position += step


@pytest.mark.parametrize("size", [1, PART - 1, PART, PART + 1, 3 * PART, 3 * PART + 17])
@pytest.mark.parametrize("seed", [1, 2])
def test_parts_are_equal_whatever_the_chunking(size: int, seed: int) -> None:
    data = random.Random(size).randbytes(size)
    s3 = FakeS3()

    result = upload_stream(
        s3,
        bucket="b",
        key="k",
        chunks=ragged_chunks(data, seed),
        content_type="video/mp4",  # type: ignore[arg-type]
        metadata={"video-id": "v"},
        part_size=PART,
    )

    assert s3.objects["k"] == data
    if size <= PART:
        assert result.parts == 0 and not s3.uploads
    else:
        [parts] = s3.uploads.values()
        sizes = [len(parts[n]) for n in sorted(parts)]
        assert set(sizes[:-1]) == {PART}
        assert 0 < sizes[-1] <= PART
        assert result.parts == len(sizes)


def test_buffering_is_bounded_by_parts_in_flight() -> None:
    """Pulled-but-not-yet-uploaded bytes never exceed (in flight + 1) parts plus one chunk."""
    size, chunk, in_flight = 12 * PART + 5, 64 * 1024, 2
    s3 = FakeS3()
    real_upload_part = s3.upload_part
    running = 0
    most_running = 0

    def slow_upload_part(**kwargs: Any) -> Any:
        # Uploads far slower than the in-memory source, so the source would race ahead if nothing held it.
        nonlocal running, most_running
        with s3.lock:
            running += 1
            most_running = max(most_running, running)
        time.sleep(0.02)
        try:
            return real_upload_part(**kwargs)
        finally:
            with s3.lock:
                running -= 1

    s3.upload_part = slow_upload_part  # type: ignore[method-assign]
    pulled = 0
    worst_outstanding = 0

    def source() -> Iterator[bytes]:
        nonlocal pulled, worst_outstanding
        for offset in range(0, size, chunk):
            piece = b"\0" * min(chunk, size - offset)
            pulled += len(piece)
            with s3.lock:
                worst_outstanding = max(worst_outstanding, pulled - s3.uploaded_bytes)
            yield piece

    upload_stream(
        s3,
        bucket="b",
        key="k",
        chunks=source(),
        content_type="video/mp4",  # type: ignore[arg-type]
        metadata={},
        part_size=PART,
        max_in_flight=in_flight,
    )

    assert len(s3.objects["k"]) == size
    assert most_running == in_flight  # parts did upload concurrently...
    assert worst_outstanding <= (in_flight + 1) * PART + chunk  # ...and the source waited for them


def test_a_failing_part_aborts_the_upload_and_propagates() -> None:
    s3 = FakeS3(fail_on_part=2)
    data = bytes(4 * PART)

    with pytest.raises(ConnectionError):
        upload_stream(
            s3,
            bucket="b",
            key="k",
            chunks=ragged_chunks(data, 3),
            content_type="video/mp4",  # type: ignore[arg-type]
            metadata={},
            part_size=PART,
        )

    assert s3.aborted == ["upload-0"]
    assert s3.completed == []
    assert "k" not in s3.objects


def test_a_failing_source_aborts_the_upload() -> None:
    s3 = FakeS3()

    def broken_source() -> Iterator[bytes]:
        yield bytes(2 * PART)
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        upload_stream(
            s3,
            bucket="b",
            key="k",
            chunks=broken_source(),
            content_type="video/mp4",  # type: ignore[arg-type]
            metadata={},
            part_size=PART,
        )

    assert s3.aborted == ["upload-0"]
    assert "k" not in s3.objects


def test_part_size_grows_to_fit_the_cap_in_ten_thousand_parts() -> None:
    assert part_size_for(2 * 1024**3) == 8 * MIB
    assert part_size_for(100 * 1024**3) == 11 * MIB
    assert part_size_for(100 * 1024**3) * 10_000 >= 100 * 1024**3


def test_parts_below_the_s3_minimum_are_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        upload_stream(
            FakeS3(),
            bucket="b",
            key="k",
            chunks=[b"x"],
            content_type="video/mp4",  # type: ignore[arg-type]
            metadata={},
            part_size=MIB,
        )


def test_stream_put_sends_the_body_as_it_arrives() -> None:
    """One request whose body is the source itself: what is held is a read buffer, never the file."""
    size, chunk = 40 * MIB, 64 * 1024
    s3 = FakeS3()
    pulled = 0
    worst_ahead = 0

    def observe(received: int) -> None:
        nonlocal worst_ahead
        worst_ahead = max(worst_ahead, pulled - received)

    s3.on_block = observe  # type: ignore[method-assign]

    def source() -> Iterator[bytes]:
        nonlocal pulled
        for _ in range(size // chunk):
            pulled += chunk
            yield bytes(chunk)

    result = stream_put(
        s3,
        bucket="b",
        key="k",
        chunks=source(),
        size=size,
        content_type="video/mp4",  # type: ignore[arg-type]
        metadata={"video-id": "v"},
    )

    assert result.parts == 0
    assert len(s3.objects["k"]) == size
    # the read buffer, the prefetched chunks, and the chunk in hand: a few MiB at most, whatever the size
    assert worst_ahead <= 256 * 1024 + (16 + 2) * chunk


def test_stream_put_reports_the_source_failure_not_the_http_client_error() -> None:
    s3 = FakeS3()

    def broken_source() -> Iterator[bytes]:
        yield bytes(1000)
        raise SourceUnavailable("the source stopped sending")

    with pytest.raises(SourceUnavailable, match="stopped sending"):
        stream_put(
            s3,
            bucket="b",
            key="k",
            chunks=broken_source(),
            size=5000,
            content_type="video/mp4",  # type: ignore[arg-type]
            metadata={},
        )

    assert "k" not in s3.objects
