"""Streaming a body into R2 in constant memory, two ways.

A body of known length up to ``STREAMING_PUT_MAX`` goes up as one PutObject whose request body *is* the
download (``stream_put``): one request, nothing buffered but the chunk in hand, nothing stored unless the
whole body arrives. Anything else — longer, or of unknown length — goes through ``upload_stream``.

For that, we drive CreateMultipartUpload / UploadPart / CompleteMultipartUpload ourselves rather than boto3's
``upload_fileobj``: s3transfer decides single-PUT vs multipart from one ``read()`` and, fed a network
stream, may buffer a whole file or cut uneven parts, which R2 refuses. Here:

- every part but the last is exactly ``part_size`` bytes (R2 rejects uneven non-final parts);
- a body no larger than one part goes up as a single PutObject;
- parts upload on a small thread pool while the download goes on, with at most ``max_in_flight`` parts
  buffered at once, so memory stays near ``(max_in_flight + 1) * part_size`` whatever the file's size;
- any failure aborts the multipart upload, so nothing is left in the bucket.
"""

from __future__ import annotations

import io
import math
import queue
import threading
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from video_library.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

MIB = 1024 * 1024
DEFAULT_PART_SIZE = 8 * MIB
MIN_PART_SIZE = 5 * MIB  # S3's and R2's floor for non-final parts
MAX_PARTS = 10_000
DEFAULT_MAX_IN_FLIGHT = 4


# Like rclone's upload cutoff: below it one streaming request beats parallel parts (the download is a single
# stream anyway); above it, parts upload in parallel and a failure costs less to redo.
STREAMING_PUT_MAX = 200 * MIB


class _ChunkReader(io.RawIOBase):
    """A read-only, forward-only file over an iterator of chunks, for botocore to send as a request body."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")
        self.failure: BaseException | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._pending:
            try:
                chunk = next(self._chunks, None)
            except BaseException as exc:
                # botocore would take this for a network error and try to rewind; keep the real cause.
                self.failure = exc
                raise
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        count = min(len(target), len(self._pending))
        target[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


_END = object()


def prefetch(chunks: Iterable[bytes], *, max_chunks: int = 16) -> Iterator[bytes]:
    """Pull ``chunks`` on a thread of their own, at most ``max_chunks`` ahead, so that receiving the next
    bytes overlaps with sending the last ones. The source's exceptions surface here, in order."""
    handoff: queue.Queue[object] = queue.Queue(maxsize=max_chunks)
    stop = threading.Event()

    def pull() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        handoff.put(chunk, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            handoff.put(_END)
        except BaseException as exc:  # handed to the consumer, which raises it
            handoff.put(exc)

    puller = threading.Thread(target=pull, name="source-prefetch", daemon=True)
    puller.start()
    try:
        while (item := handoff.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        puller.join(timeout=5)


def stream_put(
    client: S3Client,
    *,
    bucket: str,
    key: str,
    chunks: Iterable[bytes],
    size: int,
    content_type: str,
    metadata: Mapping[str, str],
) -> UploadedObject:
    """One PutObject whose body streams from ``chunks`` (exactly ``size`` bytes). If the body fails or falls
    short, the request fails and S3/R2 store nothing. Needs an unsigned payload (see ``r2.r2_config``): a
    signed one would make botocore read the body twice."""
    reader = _ChunkReader(prefetch(chunks))
    body = io.BufferedReader(reader, buffer_size=256 * 1024)
    try:
        client.put_object(
            Bucket=bucket, Key=key, Body=body, ContentLength=size, ContentType=content_type, Metadata=dict(metadata)
        )
    except Exception as exc:
        if reader.failure is not None and reader.failure is not exc:
            raise reader.failure from exc  # the source failed, not R2
        raise
    return UploadedObject(key=key, parts=0)


def part_size_for(max_bytes: int, preferred: int = DEFAULT_PART_SIZE) -> int:
    """The smallest whole-MiB part size ≥ ``preferred`` that fits ``max_bytes`` in 10,000 parts."""
    needed = math.ceil(max_bytes / MAX_PARTS / MIB) * MIB
    return max(preferred, needed, MIN_PART_SIZE)


@dataclass(frozen=True)
class UploadedObject:
    key: str
    parts: int  # 0: a single PutObject


class _PartPipeline:
    """Uploads numbered parts on a thread pool, never holding more than ``max_in_flight`` at once."""

    def __init__(self, client: S3Client, bucket: str, key: str, upload_id: str, max_in_flight: int) -> None:
        self._client, self._bucket, self._key, self._upload_id = client, bucket, key, upload_id
        self._pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="r2-part")
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._futures: list[Future[CompletedPartTypeDef]] = []

    def submit(self, data: bytearray) -> None:
        """Hand one part over; its buffer is the pipeline's from now on (no copy is made)."""
        self.raise_first_failure()
        self._slots.acquire()  # back-pressure: the download waits while every slot is uploading
        number = len(self._futures) + 1
        future = self._pool.submit(self._upload, number, data)
        future.add_done_callback(lambda _: self._slots.release())
        self._futures.append(future)

    def _upload(self, number: int, data: bytearray) -> CompletedPartTypeDef:
        answer = self._client.upload_part(
            # botocore sends any bytes-like body as is; a bytearray spares copying each part.
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=cast(bytes, data),
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def raise_first_failure(self) -> None:
        for future in self._futures:
            if future.done() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]

    def finish(self) -> list[CompletedPartTypeDef]:
        return [future.result() for future in self._futures]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def upload_stream(
    client: S3Client,
    *,
    bucket: str,
    key: str,
    chunks: Iterable[bytes],
    content_type: str,
    metadata: Mapping[str, str],
    part_size: int = DEFAULT_PART_SIZE,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
) -> UploadedObject:
    """Upload ``chunks`` to ``bucket/key``; on any failure nothing is left behind and the error propagates."""
    if part_size < MIN_PART_SIZE:
        raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes")
    body = iter(chunks)
    part = bytearray()
    # Read one byte past a part: only then do we know whether a single PutObject will do.
    for chunk in body:
        part += chunk
        if len(part) > part_size:
            break
    else:
        client.put_object(Bucket=bucket, Key=key, Body=bytes(part), ContentType=content_type, Metadata=dict(metadata))
        return UploadedObject(key=key, parts=0)

    upload_id = client.create_multipart_upload(
        Bucket=bucket, Key=key, ContentType=content_type, Metadata=dict(metadata)
    )["UploadId"]
    pipeline = _PartPipeline(client, bucket, key, upload_id, max_in_flight)
    try:
        # Each part is filled in a buffer of its own, handed to the pipeline when full, so that what is held
        # is the parts in flight plus the one filling, and nothing is copied on the way.
        overflow = bytes(part[part_size:])  # at most one network chunk
        del part[part_size:]
        for chunk in _chain(overflow, body):
            view = memoryview(chunk)
            while view:
                room = part_size - len(part)
                if room == 0:  # full, and more bytes follow: the final part is never empty
                    pipeline.submit(part)
                    part = bytearray()
                    room = part_size
                part += view[:room]
                view = view[room:]
        pipeline.submit(part)
        del part
        parts = pipeline.finish()
        client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    except BaseException:
        pipeline.close()
        _abort(client, bucket, key, upload_id)
        raise
    pipeline.close()
    return UploadedObject(key=key, parts=len(parts))


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _abort(client: S3Client, bucket: str, key: str, upload_id: str) -> None:
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception:
        # The original failure matters more; R2 also aborts unfinished uploads after 7 days by default.
        logger.exception("could not abort a multipart upload", extra={"key": key, "upload_id": upload_id})
