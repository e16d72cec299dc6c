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
