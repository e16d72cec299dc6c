"""Streaming a body of unknown length into R2 in constant memory.

We drive CreateMultipartUpload / UploadPart / CompleteMultipartUpload ourselves rather than boto3's
``upload_fileobj``: s3transfer decides single-PUT vs multipart from one ``read()`` and, fed a network
stream, may buffer a whole file or cut uneven parts, which R2 refuses. Here:

- every part but the last is exactly ``part_size`` bytes (R2 rejects uneven non-final parts);
- a body no larger than one part goes up as a single PutObject;
- parts upload on a small thread pool while the download goes on, with at most ``max_in_flight`` parts
  buffered at once, so memory stays near ``(max_in_flight + 1) * part_size`` whatever the file's size;
- any failure aborts the multipart upload, so nothing is left in the bucket.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from video_library.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

MIB = 1024 * 1024
DEFAULT_PART_SIZE = 8 * MIB
MIN_PART_SIZE = 5 * MIB  # S3's and R2's floor for non-final parts
MAX_PARTS = 10_000
DEFAULT_MAX_IN_FLIGHT = 4


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

    def submit(self, data: bytes) -> None:
        self.raise_first_failure()
        self._slots.acquire()  # back-pressure: the download waits while every slot is uploading
        number = len(self._futures) + 1
        future = self._pool.submit(self._upload, number, data)
        future.add_done_callback(lambda _: self._slots.release())
        self._futures.append(future)

    def _upload(self, number: int, data: bytes) -> CompletedPartTypeDef:
        answer = self._client.upload_part(
            Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=data
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
    metadata: Callable[[], Mapping[str, str]],
    part_size: int = DEFAULT_PART_SIZE,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
) -> UploadedObject:
    """Upload ``chunks`` to ``bucket/key``; on any failure nothing is left behind and the error propagates.

    ``metadata`` is asked when the object is written, so it may describe the content (e.g. its digest). A
    multipart upload starts before the content is known: once complete, the object is copied onto itself
    with the final metadata (server-side, in one request).
    """
    if part_size < MIN_PART_SIZE:
        raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes")
    body = iter(chunks)
    buffer = bytearray()
    # Read one byte past a part: only then do we know whether a single PutObject will do.
    for chunk in body:
        buffer += chunk
        if len(buffer) > part_size:
            break
    else:
        client.put_object(
            Bucket=bucket, Key=key, Body=bytes(buffer), ContentType=content_type, Metadata=dict(metadata())
        )
        return UploadedObject(key=key, parts=0)

    initial_metadata = dict(metadata())
    upload_id = client.create_multipart_upload(
        Bucket=bucket, Key=key, ContentType=content_type, Metadata=initial_metadata
    )["UploadId"]
    pipeline = _PartPipeline(client, bucket, key, upload_id, max_in_flight)
    try:
        for chunk in body:
            buffer += chunk
            # Cut a part only when more bytes follow it, so the final part is never empty.
            while len(buffer) > part_size:
                pipeline.submit(bytes(memoryview(buffer)[:part_size]))
                del buffer[:part_size]
        while len(buffer) > part_size:  # what the first loop read beyond one part
            pipeline.submit(bytes(memoryview(buffer)[:part_size]))
            del buffer[:part_size]
        pipeline.submit(bytes(buffer))
        buffer.clear()
        parts = pipeline.finish()
        client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    except BaseException:
        pipeline.close()
        _abort(client, bucket, key, upload_id)
        raise
    pipeline.close()
    final_metadata = dict(metadata())
    if final_metadata != initial_metadata:
        try:
            client.copy_object(
                Bucket=bucket,
                Key=key,
                CopySource={"Bucket": bucket, "Key": key},
                MetadataDirective="REPLACE",
                Metadata=final_metadata,
                ContentType=content_type,
            )
        except BaseException:
            client.delete_object(Bucket=bucket, Key=key)
            raise
    return UploadedObject(key=key, parts=len(parts))


def _abort(client: S3Client, bucket: str, key: str, upload_id: str) -> None:
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception:
        # The original failure matters more; R2 also aborts unfinished uploads after 7 days by default.
        logger.exception("could not abort a multipart upload", extra={"key": key, "upload_id": upload_id})
