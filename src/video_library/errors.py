"""Domain errors. Each one knows the HTTP answer it becomes; handlers map them in one place (``http.py``)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, ClassVar


class VideoLibraryError(Exception):
    """Base of every error a caller may see. ``code`` is stable and machine-readable, ``message`` is for people."""

    status: ClassVar[HTTPStatus] = HTTPStatus.INTERNAL_SERVER_ERROR
    code: ClassVar[str] = "internal_error"
    # For background work (the save worker): worth another attempt later (network, 5xx, throttling, out of time),
    # or final (the file is gone, too large, not a video, not allowed).
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.details}}

    def headers(self) -> dict[str, str]:
        """HTTP headers the answer carries besides its JSON body (none, but for a few errors)."""
        return {}


class Unauthorized(VideoLibraryError):
    status = HTTPStatus.UNAUTHORIZED
    code = "unauthorized"


class BadRequest(VideoLibraryError):
    status = HTTPStatus.BAD_REQUEST
    code = "bad_request"


class VideoNotFound(VideoLibraryError):
    status = HTTPStatus.NOT_FOUND
    code = "video_not_found"


class WrongState(VideoLibraryError):
    status = HTTPStatus.CONFLICT
    code = "wrong_state"


class ServiceNotConfigured(VideoLibraryError):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "not_configured"


class SaveInProgress(VideoLibraryError):
    status = HTTPStatus.CONFLICT
    code = "save_in_progress"


class PreviewExpired(VideoLibraryError):
    """The provider no longer has the preview's file (found by a save or a check): it can never be saved."""

    status = HTTPStatus.CONFLICT
    code = "preview_expired"


class VideoBusy(VideoLibraryError):
    """Background work holds the video for a moment (e.g. the sweep removing a failed save's leftovers)."""

    status = HTTPStatus.CONFLICT
    code = "video_busy"


class SourceNotAllowed(VideoLibraryError):
    """The video's URL points somewhere we must not fetch from (scheme, host or address)."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "source_not_allowed"


class SourceTooLarge(VideoLibraryError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "source_too_large"


class SourceNotVideo(VideoLibraryError):
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    code = "source_not_video"


class SourceNotImage(VideoLibraryError):
    """A thumbnail's source is not a raster image we keep (JPEG, PNG, WebP, GIF)."""

    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    code = "source_not_image"


class SourceUnavailable(VideoLibraryError):
    """The provider's file could not be fetched whole this time: erroring, too slow, unreachable or cut short."""

    status = HTTPStatus.BAD_GATEWAY
    code = "source_unavailable"
    retryable = True


class SourceGone(VideoLibraryError):
    """The provider no longer has the file (403, 404 or 410): PiAPI deletes results after a while. Final."""

    status = HTTPStatus.BAD_GATEWAY
    code = "source_gone"


class SourceRefused(VideoLibraryError):
    """The provider answers the file's URL with another client error (400, 401, ...): asking again will not help."""

    status = HTTPStatus.BAD_GATEWAY
    code = "source_refused"


class StorageUnavailable(VideoLibraryError):
    """R2 kept failing (errors, throttling, no answer) after the retries this attempt could afford."""

    status = HTTPStatus.BAD_GATEWAY
    code = "storage_unavailable"
    retryable = True


class OutOfTime(VideoLibraryError):
    """This invocation's time (or its lease) ran out before the transfer finished; another attempt follows."""

    status = HTTPStatus.GATEWAY_TIMEOUT
    code = "timed_out"
    retryable = True


class DependencyTimeout(VideoLibraryError):
    """A call to DynamoDB or SQS did not answer within the time this invocation had left."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "dependency_timeout"
    retryable = True


class SaveQueueUnavailable(VideoLibraryError):
    """The save could not be queued (SQS failed): nothing was started; asking again is safe."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "save_queue_unavailable"


class ProviderError(VideoLibraryError):
    """PiAPI refused or failed a request."""

    status = HTTPStatus.BAD_GATEWAY
    code = "provider_error"


class ProviderUnreachable(ProviderError):
    """No connection to PiAPI could be made: the request was never sent (the caller sees a provider_error)."""


class QuotaExceeded(VideoLibraryError):
    """The caller used up a quota (e.g. generations per hour); ``retry_after_s`` says when the next unit is free."""

    status = HTTPStatus.TOO_MANY_REQUESTS
    code = "quota_exceeded"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.details["retry_after_s"])}
