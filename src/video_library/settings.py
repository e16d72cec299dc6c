"""The service's configuration: one validated model of the environment, parsed once.

Nothing else in the project reads ``os.environ``. Importing this module reads nothing either: the
environment is parsed on the first call to :func:`get_settings`, so handler modules import without side
effects (tests and the OpenAPI generator rely on that).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

GIB = 1024**3

# PiAPI's content hosts: the CDNs its result URLs point at (see ../shared/piapi and PiAPI's task docs).
# A leading dot allows the domain's subdomains; an entry without one allows that exact host.
PIAPI_CONTENT_HOSTS = (".theapi.app", ".klingai.com", ".cdn-luma.com", "imagedelivery.net")


def _split_hosts(value: object) -> object:
    """Accept ``a.com, .b.com`` (how an environment variable carries a list) as well as a real list."""
    if isinstance(value, str):
        return [host.strip().lower() for host in value.split(",") if host.strip()]
    return value


HostList = Annotated[tuple[str, ...], NoDecode]


class Settings(BaseSettings):
    """Every setting of the service; the environment variable is the field name in upper case."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    aws_region: str = Field(default="us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"))

    # DynamoDB
    videos_table: str = "videos"
    dynamodb_endpoint_url: str | None = None

    # Cloudflare R2 (S3 API)
    r2_bucket: str = "video-library"
    r2_endpoint_url: str | None = None
    r2_access_key_id: SecretStr | None = None
    r2_secret_access_key: SecretStr | None = None
    r2_public_base_url: str | None = None
    r2_presign_expires_s: int = Field(default=3600, ge=60, le=7 * 24 * 3600)

    # PiAPI
    piapi_base_url: str = "https://api.piapi.ai"
    piapi_api_key: SecretStr | None = None
    # No default on purpose: a deployed webhook with a well-known secret would be an open door, so with
    # nothing configured the webhook refuses every call (the local stack sets its own dev value).
    piapi_webhook_secret: SecretStr | None = None
    webhook_public_url: str | None = None
    # PiAPI bills in points (meta.usage.consume); its price list converts 1 USD to 10,000,000 points.
    piapi_usd_per_point: float = Field(default=1e-7, ge=0)

    # Save to Library
    allowed_source_hosts: HostList = PIAPI_CONTENT_HOSTS
    # Hosts that may be fetched over plain http and at loopback addresses: local development only.
    dev_insecure_source_hosts: HostList = ()
    # Well under R2's 5 TiB object limit; 5 GiB keeps a save within one Lambda invocation at the measured rates.
    max_video_bytes: int = Field(default=2 * GIB, gt=0, le=5 * GIB)
    # The save queue (SQS) between the save API and the worker, and how many attempts a save gets: the worker gives
    # up after this many (the queue's redrive policy moves the message to the dead-letter queue after as many
    # receives, so the two must be equal: serverless.yml sets both from one parameter).
    save_queue_url: str | None = None
    sqs_endpoint_url: str | None = None
    save_max_attempts: int = Field(default=5, ge=1, le=20)

    # Purge
    purge_after_days: int = Field(default=30, ge=1)

    # Library
    # R2 Standard storage price (developers.cloudflare.com/r2/pricing): the storage-usage estimate uses it.
    r2_usd_per_gb_month: float = Field(default=0.015, ge=0)
    # Reconciliation asks PiAPI about tasks still pending/processing this long after they were created.
    reconcile_after_minutes: int = Field(default=10, ge=1)

    _split_allowed = field_validator("allowed_source_hosts", "dev_insecure_source_hosts", mode="before")(_split_hosts)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, parsed from the environment on first use and cached."""
    return Settings()
