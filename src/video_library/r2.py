"""The Cloudflare R2 client: boto3's S3 client pointed at R2, configured the way R2 needs.

- region ``auto`` (R2 has no regions; the S3 signature still needs one);
- checksums only when an operation requires them: boto3 >= 1.36 otherwise sends aws-chunked uploads with a
  CRC32 trailer, which R2 has rejected;
- path-style addressing, which R2 and every local S3 stand-in accept;
- unsigned payloads, so a streaming upload body is read once (TLS protects it on the way to R2).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from pydantic import SecretStr

from video_library.errors import ServiceNotConfigured, StorageUnavailable
from video_library.secrets import Secret, SecretUnavailable, read_secret
from video_library.settings import Settings, get_settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

R2_REGION = "auto"


def video_object_key(campaign_id: str, video_id: str) -> str:
    """Where a saved video lives in the bucket. Deterministic, so a retried save overwrites, never duplicates,
    and whatever a failed attempt may have left is found from the record alone."""
    return f"campaigns/{campaign_id}/videos/{video_id}.mp4"


# The thumbnail types kept, and the extension each is stored under.
THUMBNAIL_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/gif": "gif"}


def thumbnail_object_key(campaign_id: str, video_id: str, content_type: str) -> str:
    """Where a saved video's thumbnail lives, beside the video; the extension follows the image's type."""
    return f"campaigns/{campaign_id}/thumbnails/{video_id}.{THUMBNAIL_EXTENSIONS[content_type]}"


def object_keys_of(campaign_id: str, video_id: str) -> list[str]:
    """Every key a video's saves may write (the video, and its thumbnail under any of the kept types): what a
    deletion, or the cleanup of a failed save, must remove. Deleting a key that holds nothing is a no-op."""
    thumbnails = [thumbnail_object_key(campaign_id, video_id, kind) for kind in THUMBNAIL_EXTENSIONS]
    return [video_object_key(campaign_id, video_id), *thumbnails]


def r2_config(max_pool_connections: int = 16, *, total_attempts: int = 4, read_timeout: float = 60) -> Config:
    return Config(
        region_name=R2_REGION,
        signature_version="s3v4",
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        s3={"addressing_style": "path", "payload_signing_enabled": False},
        # total_max_attempts counts the first attempt; botocore's max_attempts would count only the retries.
        retries={"mode": "standard", "total_max_attempts": total_attempts},
        connect_timeout=5,
        read_timeout=read_timeout,
        max_pool_connections=max_pool_connections,
    )


# For transfers: no retries inside botocore (``upload.with_retries`` retries within the time the invocation has
# left, which botocore cannot know), and a read timeout short enough that one stuck request fits in the margin a
# transfer keeps for finishing.
TRANSFER_READ_TIMEOUT_S = 20


def r2_keys(settings: Settings) -> tuple[SecretStr, SecretStr]:
    """R2's access key id and secret (from SSM on AWS, cached there); ServiceNotConfigured when R2 is not set up,
    StorageUnavailable when the keys cannot be read just now (R2 is as good as unreachable then)."""
    try:
        key_id = read_secret(Secret.R2_ACCESS_KEY_ID, settings)
        secret = read_secret(Secret.R2_SECRET_ACCESS_KEY, settings)
    except SecretUnavailable as exc:
        raise StorageUnavailable(f"R2's keys could not be read ({exc.message})") from None
    if not (settings.r2_endpoint_url and key_id and secret):
        raise ServiceNotConfigured("R2 is not configured (R2_ENDPOINT_URL and R2 keys are required)")
    return key_id, secret


def make_r2_client(settings: Settings, config: Config | None = None) -> S3Client:
    key_id, secret = r2_keys(settings)
    return _client_with(settings.r2_endpoint_url, key_id, secret, config or r2_config())


def _client_with(endpoint_url: str | None, key_id: SecretStr, secret: SecretStr, config: Config) -> S3Client:
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=key_id.get_secret_value(),
        aws_secret_access_key=secret.get_secret_value(),
        config=config,
    )


# Keyed on the keys too: once a rotated key comes back from SSM (within SECRETS_MAX_AGE_S), a new client uses it.
# Keyed on what the client is made of, not on the whole settings: a setting that has nothing to do with R2 (read
# again, or changed by a test) does not cost a new client (building one costs ~0.1 s of CPU).
@lru_cache(maxsize=1)
def _client_for(endpoint_url: str | None, key_id: SecretStr, secret: SecretStr) -> S3Client:
    return _client_with(endpoint_url, key_id, secret, r2_config())


@lru_cache(maxsize=1)
def _transfer_client_for(endpoint_url: str | None, key_id: SecretStr, secret: SecretStr) -> S3Client:
    return _client_with(endpoint_url, key_id, secret, r2_config(total_attempts=1, read_timeout=TRANSFER_READ_TIMEOUT_S))


def r2_client() -> S3Client:
    """The process's R2 client, made on first use and reused across warm invocations."""
    settings = get_settings()
    return _client_for(settings.r2_endpoint_url, *r2_keys(settings))


def r2_transfer_client() -> S3Client:
    """The client transfers use: the same R2 settings, but every retry is the caller's (see ``upload``)."""
    settings = get_settings()
    return _transfer_client_for(settings.r2_endpoint_url, *r2_keys(settings))


def stored_object_url(key: str, settings: Settings | None = None) -> str:
    """The permanent URL recorded for a saved object: public when the bucket has a public domain, else the
    object's address on the S3 endpoint (not readable without a signature; the API presigns it on read).
    Nothing that expires is ever stored.
    """
    settings = settings or get_settings()
    if settings.r2_public_base_url:
        return f"{settings.r2_public_base_url.rstrip('/')}/{key}"
    endpoint = (settings.r2_endpoint_url or "").rstrip("/")
    return f"{endpoint}/{settings.r2_bucket}/{key}"


def playable_url(key: str, settings: Settings | None = None, *, content_disposition: str | None = None) -> str:
    """A URL a browser can use now: the public one, or a presigned GET (signing needs no network).

    ``content_disposition`` makes a presigned GET answer with that ``Content-Disposition`` (S3's
    ``response-content-disposition``, signed into the URL). A public URL cannot carry it: there the object's own
    ``Content-Disposition``, set when it was uploaded, is what the browser gets."""
    settings = settings or get_settings()
    if settings.r2_public_base_url:
        return stored_object_url(key, settings)
    params = {"Bucket": settings.r2_bucket, "Key": key}
    if content_disposition is not None:
        params["ResponseContentDisposition"] = content_disposition
    return r2_client().generate_presigned_url("get_object", Params=params, ExpiresIn=settings.r2_presign_expires_s)
