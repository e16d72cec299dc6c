"""Writing one object into R2 from a stream, in constant memory, surviving what R2 does under load.

The body arrives through ``read(buffer)`` (the download fills a buffer in place; fewer bytes only at the end).
Every byte is sent from memory, so every request can be sent again:

- a body that fits in one part goes up as one PutObject;
- anything longer goes up as a multipart upload in parts of exactly ``part_size`` bytes (R2 rejects uneven
  non-final parts), ``max_in_flight`` of them uploading on threads while the next one fills. Buffers are reused
  from a pool of ``max_in_flight + 1``, so memory stays at that many parts whatever the file's size, and the
  download waits when every buffer is busy;
- each request is retried here, with backoff and jitter, when R2 answers 429 / 5xx / SlowDown or the connection
  fails or the answer is lost — for as long as the transfer's time allows (botocore's own retries are off for
  this client: they could not be bounded by the time left). A CompleteMultipartUpload whose answer was lost
  and whose retry finds the upload gone is checked against the object itself (its ``transfer-id`` metadata);
- any failure aborts the multipart upload. What an abort cannot reach (a killed process) is found by the next
  attempt at the same key, by the sweep, and by the bucket's lifecycle rule.

Why not s3transfer's ``upload_fileobj``: fed a network stream it decides single-PUT vs multipart from one
``read()`` and may buffer a whole file or cut uneven parts (see ../shared/TRAPS.md).
"""

from __future__ import annotations

import math
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

import botocore.exceptions
import botocore.parsers

from video_library.deadline import TimeLimit
from video_library.errors import OutOfTime, StorageUnavailable
from video_library.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

T = TypeVar("T")
MIB = 1024 * 1024
DEFAULT_PART_SIZE = 8 * MIB
MIN_PART_SIZE = 5 * MIB  # S3's and R2's floor for non-final parts
MAX_PARTS = 10_000
# Parts uploading at once. 3 keeps the worker under 150 MiB at any size (4 buffers of 8 MiB) and was as fast
# as 4 in `make bench-save` at 256 and 1,024 MB.
DEFAULT_MAX_IN_FLIGHT = 3
TRANSFER_ID_METADATA = "transfer-id"

# What R2 (and S3) answer when a request may succeed if sent again.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRYABLE_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "TooManyRequests", "RequestTimeout", "InternalError"}
)

Reader = Callable[[bytearray], int]


@dataclass(frozen=True)
class RetryPolicy:
    """How each request to R2 is retried: capped exponential backoff with full jitter, within the time left."""

    attempts: int = 6
    base_s: float = 0.2
    cap_s: float = 5.0
    # Do not start an attempt with less time than this left: it could not finish.
    min_attempt_s: float = 2.0


DEFAULT_RETRY = RetryPolicy()


def is_transient(exc: BaseException) -> bool:
    """Whether R2's failure may go away if the request is sent again."""
    if isinstance(exc, botocore.exceptions.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = exc.response.get("Error", {}).get("Code")
        return status in RETRYABLE_STATUSES or code in RETRYABLE_CODES
    return isinstance(
        exc,
        (
            botocore.exceptions.ConnectionError,  # refused, reset, connect timeout, DNS
            botocore.exceptions.HTTPClientError,  # read timeout, connection closed (an answer lost on the way)
            botocore.parsers.ResponseParserError,  # a garbled answer
        ),
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return f"{error.get('Code', 'error')} (HTTP {status})"
    return type(exc).__name__


def with_retries(
    call: Callable[[], T],
    *,
    what: str,
    limit: TimeLimit,
    retry: RetryPolicy = DEFAULT_RETRY,
    cancelled: threading.Event | None = None,
) -> T:
    """Run one R2 request, sending it again after transient failures while the time limit allows (and until
    ``cancelled`` is set: a part of an upload being aborted is not worth another attempt)."""
    jitter = random.Random()  # noqa: S311 (jitter, not security)
    attempt = 0
    while True:
        if limit.remaining() < retry.min_attempt_s:
            raise OutOfTime(f"no time left to {what}")
        if cancelled is not None and cancelled.is_set():
            raise StorageUnavailable(f"the upload was abandoned before it could {what}")
        attempt += 1
        try:
            return call()
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            if not is_transient(exc):
                raise StorageUnavailable(f"R2 refused to {what}: {_describe(exc)}") from exc
            if attempt >= retry.attempts:
                raise StorageUnavailable(f"R2 failed to {what} {attempt} times: {_describe(exc)}") from exc
            delay = jitter.uniform(0, min(retry.cap_s, retry.base_s * 2**attempt))
            logger.info("R2 request will be retried", extra={"what": what, "attempt": attempt, "error": _describe(exc)})
            if limit.remaining() - delay < retry.min_attempt_s:
                raise OutOfTime(f"no time left to {what} again after {_describe(exc)}") from exc
            time.sleep(delay)


def part_size_for(max_bytes: int, preferred: int = DEFAULT_PART_SIZE) -> int:
    """The smallest whole-MiB part size ≥ ``preferred`` that fits ``max_bytes`` in 10,000 parts."""
    needed = math.ceil(max_bytes / MAX_PARTS / MIB) * MIB
    return max(preferred, needed, MIN_PART_SIZE)


@dataclass(frozen=True)
class UploadedObject:
    key: str
    size: int
    parts: int  # 0: a single PutObject


class _BufferPool:
    """A fixed number of part buffers, handed out and given back: the upload's whole memory.

    The buffers outlive the upload (``_spare``): a warm Lambda's next transfer reuses them instead of asking the
    kernel for fresh zeroed pages again (at 14 % of a core, faulting in 40 MiB costs a tenth of a second)."""

    _spare: ClassVar[dict[int, list[bytearray]]] = {}
    _spare_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, part_size: int, count: int) -> None:
        self.part_size = part_size
        self._free: queue.Queue[bytearray] = queue.Queue()
        with self._spare_lock:
            spare = self._spare.pop(part_size, [])
        for buffer in spare[:count]:
            self._free.put(buffer)
        self._unmade = count - min(count, len(spare))
        self._count = count

    def take(self, limit: TimeLimit) -> bytearray:
        try:
            return self._free.get_nowait()
        except queue.Empty:
            pass
        if self._unmade > 0:
            self._unmade -= 1
            return bytearray(self.part_size)
        try:
            return self._free.get(timeout=max(0.0, limit.remaining()))
        except queue.Empty:
            raise OutOfTime("the upload to R2 could not keep up within the time left") from None

    def give_back(self, buffer: bytearray) -> None:
        self._free.put(buffer)

    def keep_for_next_time(self) -> None:
        """Hand the buffers that are back (not one a stuck part still holds) to the next upload of this size."""
        kept = []
        while True:
            try:
                kept.append(self._free.get_nowait())
            except queue.Empty:
                break
        with self._spare_lock:
            self._spare[self.part_size] = kept


class _Parts:
    """Uploads numbered parts on a thread pool; each part's buffer goes back to the pool once R2 has it."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        key: str,
        upload_id: str,
        buffers: _BufferPool,
        max_in_flight: int,
        limit: TimeLimit,
        retry: RetryPolicy,
    ) -> None:
        self._client, self._bucket, self._key, self._upload_id = client, bucket, key, upload_id
        self._buffers, self._limit, self._retry = buffers, limit, retry
        self._pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="r2-part")
        self._futures: list[Future[CompletedPartTypeDef]] = []
        self._cancelled = threading.Event()

    def submit(self, buffer: bytearray, length: int) -> None:
        self.raise_first_failure()
        number = len(self._futures) + 1
        self._futures.append(self._pool.submit(self._upload, number, buffer, length))

    def _upload(self, number: int, buffer: bytearray, length: int) -> CompletedPartTypeDef:
        # botocore sends a bytearray as it is (and again on a retry); only a short final part is copied.
        body = buffer if length == len(buffer) else bytes(memoryview(buffer)[:length])
        try:
            answer = with_retries(
                lambda: self._client.upload_part(
                    Bucket=self._bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    PartNumber=number,
                    Body=cast(bytes, body),
                ),
                what=f"upload part {number}",
                limit=self._limit,
                retry=self._retry,
                cancelled=self._cancelled,
            )
        finally:
            self._buffers.give_back(buffer)
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def raise_first_failure(self) -> None:
        for future in self._futures:
            if future.done() and (error := future.exception()) is not None:
                raise error

    def wait_all(self) -> list[CompletedPartTypeDef]:
        parts = []
        for future in self._futures:
            try:
                parts.append(future.result(timeout=max(0.0, self._limit.remaining())))
            except TimeoutError:
                raise OutOfTime("the upload to R2 did not finish within the time left") from None
        return parts

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    def cancel(self) -> None:
        """Stop: parts not started are dropped, parts uploading get no retry and are waited for (so the abort
        that follows leaves nothing behind) — but never past the time limit: a part stuck on a dead connection
        must not hold the invocation, its socket timeout ends it later and the sweep aborts what it leaves."""
        self._cancelled.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        for future in self._futures:
            try:
                future.exception(timeout=max(0.0, self._limit.remaining()))
            except (TimeoutError, CancelledError):
                continue


def upload_object(
    read: Reader,
    client: S3Client,
    *,
    bucket: str,
    key: str,
    content_type: str,
    metadata: Mapping[str, str],
    limit: TimeLimit,
    part_size: int = DEFAULT_PART_SIZE,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    retry: RetryPolicy = DEFAULT_RETRY,
    content_disposition: str | None = None,
) -> UploadedObject:
    """Upload what ``read`` delivers to ``bucket/key``; on any failure nothing is left behind and it propagates.

    ``metadata`` should carry ``transfer-id``: it tells this upload's object from any other at the same key.
    ``content_disposition`` is stored on the object and sent with it on every GET (e.g. ``attachment; ...``)."""
    if part_size < MIN_PART_SIZE:
        raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes")
    headers: dict[str, Any] = {"ContentType": content_type, "Metadata": dict(metadata)}
    if content_disposition is not None:
        headers["ContentDisposition"] = content_disposition
    buffers = _BufferPool(part_size, max_in_flight + 1)
    try:
        return _upload(read, client, bucket, key, headers, metadata, limit, max_in_flight, retry, buffers)
    finally:
        buffers.keep_for_next_time()


def _upload(
    read: Reader,
    client: S3Client,
    bucket: str,
    key: str,
    headers: dict[str, Any],
    metadata: Mapping[str, str],
    limit: TimeLimit,
    max_in_flight: int,
    retry: RetryPolicy,
    buffers: _BufferPool,
) -> UploadedObject:
    part_size = buffers.part_size
    first = buffers.take(limit)
    length = read(first)
    if length < part_size:
        body = bytes(memoryview(first)[:length])
        buffers.give_back(first)
        with_retries(
            lambda: client.put_object(Bucket=bucket, Key=key, Body=body, **headers),
            what=f"store {key}",
            limit=limit,
            retry=retry,
        )
        return UploadedObject(key=key, size=length, parts=0)

    creates = 0

    def create() -> str:
        nonlocal creates
        creates += 1
        return client.create_multipart_upload(Bucket=bucket, Key=key, **headers)["UploadId"]

    upload_id = with_retries(create, what="start a multipart upload", limit=limit, retry=retry)
    parts = _Parts(client, bucket, key, upload_id, buffers, max_in_flight, limit, retry)
    size = length
    try:
        parts.submit(first, length)
        while length == part_size:  # a short part is the last one; an empty read means the body ended on a boundary
            buffer = buffers.take(limit)
            length = read(buffer)
            if length == 0:
                buffers.give_back(buffer)
                break
            size += length
            parts.submit(buffer, length)
        completed = parts.wait_all()
        _complete(client, bucket, key, upload_id, completed, metadata, size, limit, retry)
    except BaseException:
        parts.cancel()
        abort_upload(client, bucket, key, upload_id)
        raise
    parts.close()
    if creates > 1:
        # A create whose answer was lost made an upload nobody will use: abort it now (ours is complete).
        try:
            abort_unfinished_uploads(client, bucket, key)
        except Exception:
            logger.warning("could not abort a lost create's upload; the sweep will", extra={"key": key}, exc_info=True)
    return UploadedObject(key=key, size=size, parts=len(completed))


def _complete(
    client: S3Client,
    bucket: str,
    key: str,
    upload_id: str,
    completed: list[CompletedPartTypeDef],
    metadata: Mapping[str, str],
    size: int,
    limit: TimeLimit,
    retry: RetryPolicy,
) -> None:
    def complete() -> None:
        try:
            client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": completed}
            )
        except botocore.exceptions.ClientError as exc:
            # An earlier attempt completed the upload but its answer was lost: the upload is gone, the object is
            # there. Only our own object (same transfer id, same size) counts as done.
            if exc.response.get("Error", {}).get("Code") != "NoSuchUpload" or not _is_ours(
                client, bucket, key, metadata, size
            ):
                raise

    with_retries(complete, what="complete the multipart upload", limit=limit, retry=retry)


def _is_ours(client: S3Client, bucket: str, key: str, metadata: Mapping[str, str], size: int) -> bool:
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except botocore.exceptions.ClientError:
        return False
    transfer_id = metadata.get(TRANSFER_ID_METADATA)
    return (
        transfer_id is not None
        and head.get("Metadata", {}).get(TRANSFER_ID_METADATA) == transfer_id
        and head.get("ContentLength") == size
    )


def abort_upload(client: S3Client, bucket: str, key: str, upload_id: str) -> bool:
    """Abort a multipart upload, once; False (logged) if R2 could not be told."""
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception:
        # The original failure matters more; the next attempt at this key, the sweep and the lifecycle rule
        # abort what is left.
        logger.exception("could not abort a multipart upload", extra={"key": key, "upload_id": upload_id})
        return False
    return True


def abort_unfinished_uploads(client: S3Client, bucket: str, key: str) -> int:
    """Abort every unfinished multipart upload at exactly ``key`` (left by a killed attempt, or by a create
    whose answer was lost); the caller holds the key's lease, so none of them is live. Returns how many."""
    aborted = 0
    answer: Any = client.list_multipart_uploads(Bucket=bucket, Prefix=key)
    for upload in answer.get("Uploads", []):
        if upload.get("Key") == key and abort_upload(client, bucket, key, upload["UploadId"]):
            aborted += 1
    return aborted


def delete_objects(client: S3Client, bucket: str, keys: list[str], limit: TimeLimit) -> None:
    """Delete objects one by one (deleting a missing key succeeds), retried within ``limit``; raises
    StorageUnavailable (or OutOfTime) if R2 keeps refusing."""
    for key in keys:
        with_retries(_deleting(client, bucket, key), what=f"delete {key}", limit=limit)


def _deleting(client: S3Client, bucket: str, key: str) -> Callable[[], object]:
    return lambda: client.delete_object(Bucket=bucket, Key=key)


__all__ = [
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_PART_SIZE",
    "MIN_PART_SIZE",
    "TRANSFER_ID_METADATA",
    "RetryPolicy",
    "UploadedObject",
    "abort_unfinished_uploads",
    "abort_upload",
    "delete_objects",
    "is_transient",
    "part_size_for",
    "upload_object",
    "with_retries",
]
