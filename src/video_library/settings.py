"""The service's configuration: one validated model of the environment, parsed once.

Nothing else in the project reads ``os.environ``. Importing this module reads nothing either: the
environment is parsed on the first call to :func:`get_settings`, so handler modules import without side
effects (tests and the OpenAPI generator rely on that).
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Annotated, NamedTuple

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
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


class HostPort(NamedTuple):
    """One ``host:port`` a development source may be fetched from (plain http allowed, no address check)."""

    host: str  # lower case, an IPv6 literal without its brackets
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


HostPortList = Annotated[tuple[HostPort, ...], NoDecode]

_HOST_PORT = re.compile(r"(?:\[(?P<ipv6>[0-9a-fA-F:.]+)\]|(?P<name>[A-Za-z0-9.-]+)):(?P<port>[0-9]{1,5})")
_HOST_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
HOST_PORT_EXAMPLE = "127.0.0.1:8002 or [::1]:8443"


def parse_host_port(entry: str) -> HostPort:
    """``host:port`` (``[v6]:port`` for IPv6) as a :class:`HostPort`; ValueError naming the entry otherwise."""
    match = _HOST_PORT.fullmatch(entry.strip())
    problem = f"DEV_INSECURE_SOURCE_HOSTS entry {entry.strip()!r} is not host:port (e.g. {HOST_PORT_EXAMPLE})"
    if match is None or not 1 <= int(match["port"]) <= 65535:
        raise ValueError(problem)
    if match["ipv6"] is not None:
        try:
            return HostPort(str(ipaddress.IPv6Address(match["ipv6"])), int(match["port"]))
        except ValueError:
            raise ValueError(problem) from None
    name = match["name"].lower().removesuffix(".")
    if not (len(name) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in name.split("."))):
        raise ValueError(problem)
    return HostPort(name, int(match["port"]))


def _parse_host_ports(value: object) -> object:
    if isinstance(value, str):
        return tuple(parse_host_port(entry) for entry in value.split(",") if entry.strip())
    return value


# The environment AWS Lambda gives every function (docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html).
LAMBDA_EXECUTION_ENV_PREFIX = "AWS_Lambda_"

# The settings that are secrets. Each has a twin ``<name>_parameter``: the name of the SSM SecureString that holds
# it on AWS (video_library.secrets reads it at run time); the plain variable is for local use only.
SECRET_SETTINGS = ("r2_access_key_id", "r2_secret_access_key", "piapi_api_key", "piapi_webhook_secret")
PARAMETER_SUFFIX = "_parameter"
# What SSM accepts as a parameter name (letters, digits, _ . - and / for the hierarchy), at most 1011 characters.
ParameterName = Annotated[str, Field(pattern=r"^/?[A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-]+)*$", max_length=1011)]


class Settings(BaseSettings):
    """Every setting of the service; the environment variable is the field name in upper case."""

    # hide_input_in_errors: a validation error must not print the environment it read (R2 keys, secrets).
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True, hide_input_in_errors=True)

    aws_region: str = Field(default="us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"))

    # DynamoDB
    videos_table: str = "videos"
    # Per-user and per-campaign counters (videos, saved videos, bytes kept in R2): one item read per usage answer.
    usage_table: str = "video-usage"
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
    # ``host:port`` entries fetched over http or https without the public-address check: the local fake PiAPI.
    # Refused on AWS Lambda (see running_on_lambda).
    dev_insecure_source_hosts: HostPortList = ()
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
    # How long the provider keeps a result file after the task completes. PiAPI does not publish it (other
    # aggregators keep 7 days): an estimate, shown to users as the preview's expiry when it comes before the purge.
    provider_retention_days: int = Field(default=7, ge=1, le=365)

    # Library
    # R2 Standard storage price (developers.cloudflare.com/r2/pricing): the storage-usage estimate uses it.
    r2_usd_per_gb_month: float = Field(default=0.015, ge=0)
    # Reconciliation asks PiAPI about tasks still pending/processing this long after they were created.
    reconcile_after_minutes: int = Field(default=10, ge=1)

    # Secrets on AWS: the names of the SSM SecureStrings holding the values above (never the values themselves, which
    # would be readable in the template and in GetFunctionConfiguration). Read on first use, decrypted, and cached
    # for ``secrets_max_age_s``, so a rotated value is picked up within that time.
    r2_access_key_id_parameter: ParameterName | None = None
    r2_secret_access_key_parameter: ParameterName | None = None
    piapi_api_key_parameter: ParameterName | None = None
    piapi_webhook_secret_parameter: ParameterName | None = None
    secrets_max_age_s: int = Field(default=300, ge=0, le=24 * 3600)

    # Generating spends money at PiAPI: each user may start at most this many generations per clock hour (UTC).
    quotas_table: str = "quotas"
    generate_quota_per_hour: int = Field(default=20, ge=1, le=100_000)

    # Set by AWS Lambda itself; read only to know where we run.
    aws_lambda_function_name: str | None = None
    aws_execution_env: str | None = None

    _split_allowed = field_validator("allowed_source_hosts", mode="before")(_split_hosts)
    _parse_dev_hosts = field_validator("dev_insecure_source_hosts", mode="before")(_parse_host_ports)

    @property
    def running_on_lambda(self) -> bool:
        return bool(self.aws_lambda_function_name) or (self.aws_execution_env or "").startswith(
            LAMBDA_EXECUTION_ENV_PREFIX
        )

    @model_validator(mode="after")
    def _nothing_local_on_lambda(self) -> Settings:
        if not self.running_on_lambda:
            return self
        problems = []
        # A dev entry turns the address check off for its host: on a deployed function it would open a way
        # into our own network, so a deploy that carries one must not start at all.
        if self.dev_insecure_source_hosts:
            problems.append(
                "DEV_INSECURE_SOURCE_HOSTS is set but this process runs on AWS Lambda: it is for local "
                "development only (it turns the source address check off); remove it from the function's environment"
            )
        # A secret in the environment is readable by anyone who may read the function's configuration.
        plain = [name.upper() for name in SECRET_SETTINGS if getattr(self, name) is not None]
        if plain:
            problems.append(
                f"{', '.join(plain)} {'is' if len(plain) == 1 else 'are'} set in the environment but this process runs "
                "on AWS Lambda: secrets come from SSM Parameter Store there; set "
                f"{', '.join(name + PARAMETER_SUFFIX.upper() for name in plain)} to the parameter's name instead"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def parameter_of(self, secret: str) -> str | None:
        """The SSM parameter name configured for one of :data:`SECRET_SETTINGS` (None when there is none)."""
        if secret not in SECRET_SETTINGS:
            raise ValueError(f"{secret} is not a secret setting")
        name: str | None = getattr(self, secret + PARAMETER_SUFFIX)
        return name


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, parsed from the environment on first use and cached."""
    return Settings()
