"""Domain errors. Each one knows the HTTP answer it becomes; handlers map them in one place (``http.py``)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, ClassVar


class VideoLibraryError(Exception):
    """Base of every error a caller may see. ``code`` is stable and machine-readable, ``message`` is for people."""

    status: ClassVar[HTTPStatus] = HTTPStatus.INTERNAL_SERVER_ERROR
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.details}}


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


class SourceUnavailable(VideoLibraryError):
    """The provider's file could not be fetched whole: gone, erroring, too slow, or cut short."""

    status = HTTPStatus.BAD_GATEWAY
    code = "source_unavailable"


class ProviderError(VideoLibraryError):
    """PiAPI refused or failed a request."""

    status = HTTPStatus.BAD_GATEWAY
    code = "provider_error"
