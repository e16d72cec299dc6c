"""A saved video keeps its picture: the provider's thumbnail is copied into R2 beside the video when it is saved.

The provider's thumbnail dies with the preview, so a saved card would lose its picture. The save's worker copies
it, after the video, through the same guarded download as the video (the source policy, redirects checked, the
address checked where the socket connects, a size cap, a time limit), accepting raster images only — JPEG, PNG,
WebP, GIF, recognised by their first bytes, never what the source merely claims: the object is served from our
bucket, and an SVG or an HTML page must not get there as an "image".

Best effort: a thumbnail that cannot be copied (none given, refused, too large, not an image, the provider or R2
failing) does not fail the save. It is logged, the record keeps no thumbnail key, and the view falls back to the
provider's thumbnail URL (or, without one, the page shows the video's first frame).
"""

from __future__ import annotations

from dataclasses import dataclass

from video_library.deadline import Deadline, TimeLimit
from video_library.download import IMAGES, open_download
from video_library.observability import logger
from video_library.r2 import r2_transfer_client, thumbnail_object_key
from video_library.settings import get_settings
from video_library.source import SourcePolicy
from video_library.upload import TRANSFER_ID_METADATA, upload_object

# A thumbnail is tens of KiB; anything near this is not one. Under one upload part, so always a single PutObject.
MAX_THUMBNAIL_BYTES = 4 * 1024 * 1024
# At most this long for the thumbnail: the video is what the attempt is for.
THUMBNAIL_TIME_S = 30.0


@dataclass(frozen=True)
class StoredThumbnail:
    key: str
    size: int
    content_type: str


class _Earliest:
    def __init__(self, *limits: TimeLimit) -> None:
        self._limits = limits

    def remaining(self) -> float:
        return min(limit.remaining() for limit in self._limits)


def copy_thumbnail(
    source_url: str | None, *, campaign_id: str, video_id: str, transfer_id: str, limit: TimeLimit
) -> StoredThumbnail | None:
    """Copy the thumbnail at ``source_url`` to ``campaigns/{campaign_id}/thumbnails/{video_id}.<ext>``; None (and
    a log line saying why) when there is none or it cannot be copied."""
    if not source_url:
        return None
    settings = get_settings()
    deadline = _Earliest(limit, Deadline.after(THUMBNAIL_TIME_S))
    try:
        with open_download(
            source_url,
            policy=SourcePolicy.from_settings(settings),
            max_bytes=MAX_THUMBNAIL_BYTES,
            deadline=deadline,
            accept=IMAGES,
        ) as download:
            key = thumbnail_object_key(campaign_id, video_id, download.content_type)
            uploaded = upload_object(
                download.readinto,
                r2_transfer_client(),
                bucket=settings.r2_bucket,
                key=key,
                content_type=download.content_type,
                metadata={"video-id": video_id, TRANSFER_ID_METADATA: transfer_id},
                limit=deadline,
            )
            content_type = download.content_type
    except Exception as exc:  # best effort: whatever went wrong, the video is saved without its picture
        reason = getattr(exc, "code", type(exc).__name__)
        detail = getattr(exc, "message", None)
        logger.warning(
            "the thumbnail could not be copied; the video is saved without it",
            extra={"video_id": video_id, "reason": reason, "detail": detail},
        )
        return None
    return StoredThumbnail(key=key, size=uploaded.size, content_type=content_type)
