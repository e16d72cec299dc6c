"""Secrets, read where they are kept: SSM Parameter Store on AWS, the environment on a developer's machine.

On AWS a function's environment carries only the *names* of the SecureString parameters it may read
(``R2_SECRET_ACCESS_KEY_PARAMETER=/video-library/prod/r2-secret-access-key``), never a value: a value in the
environment is in the CloudFormation template, in the deployment bucket and in ``GetFunctionConfiguration``. The
value is fetched on first use through Powertools Parameters (``GetParameter`` with decryption), so importing a
handler touches nothing, and it is cached for ``SECRETS_MAX_AGE_S`` (300 s): a warm function asks SSM at most once
per secret in that time, and a rotated value is in use everywhere within it. The IAM role of each function allows
``ssm:GetParameter`` on its own parameters only, and KMS decryption only through SSM.

Locally (``make dev``, the tests) the plain variable (``R2_SECRET_ACCESS_KEY``) is used as before; on Lambda the
settings refuse to load if one is set.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from http import HTTPStatus

import boto3
from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.config import Config
from pydantic import SecretStr

from video_library.errors import VideoLibraryError
from video_library.observability import logger
from video_library.settings import Settings, get_settings


class Secret(StrEnum):
    """The service's secrets, by the name of their setting."""

    R2_ACCESS_KEY_ID = "r2_access_key_id"
    R2_SECRET_ACCESS_KEY = "r2_secret_access_key"  # noqa: S105 (a setting's name, not a secret)
    PIAPI_API_KEY = "piapi_api_key"
    PIAPI_WEBHOOK_SECRET = "piapi_webhook_secret"  # noqa: S105

    @property
    def variable(self) -> str:
        """The environment variable that carries the value itself (local use)."""
        return self.value.upper()

    @property
    def parameter_variable(self) -> str:
        """The environment variable that carries the name of its SSM parameter (on AWS)."""
        return f"{self.value.upper()}_PARAMETER"


class SecretUnavailable(VideoLibraryError):
    """SSM did not give a secret (unreachable, throttled, parameter missing or not ours to read). Nothing was done;
    another attempt may succeed, so background work retries it."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "secret_unavailable"
    retryable = True


# SSM answers within milliseconds; a stuck call must not eat an API request's 30 s.
_SSM_CONFIG = Config(connect_timeout=3, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 3})


@lru_cache(maxsize=1)
def _provider_for(settings: Settings) -> SSMProvider:
    # One provider (and so one cache of values) per settings object: made on first use, never at import.
    client = boto3.client("ssm", region_name=settings.aws_region, config=_SSM_CONFIG)
    return SSMProvider(boto3_client=client)


def read_secret(secret: Secret, settings: Settings | None = None) -> SecretStr | None:
    """The secret's value: the plain variable if set (local), else its SSM parameter (cached); None when neither
    is configured. Raises :class:`SecretUnavailable` when the parameter cannot be read."""
    settings = settings or get_settings()
    plain: SecretStr | None = getattr(settings, secret.value)
    if plain is not None:
        return plain
    name = settings.parameter_of(secret.value)
    if name is None:
        return None
    try:
        value = _provider_for(settings).get(name, max_age=settings.secrets_max_age_s, decrypt=True)
    except GetParameterError as exc:
        # Powertools' message is the SDK's (error code, parameter name): never a value.
        logger.error("a secret could not be read from SSM", extra={"parameter": name, "reason": str(exc)})
        raise SecretUnavailable(f"{secret.variable} could not be read from SSM Parameter Store") from None
    if not isinstance(value, str) or not value:
        logger.error("an SSM parameter holding a secret is empty", extra={"parameter": name})
        raise SecretUnavailable(f"{secret.variable} is empty in SSM Parameter Store")
    return SecretStr(value)


def forget_secrets() -> None:
    """Drop every cached value: the next read asks SSM again (after a SnapStart restore, for instance)."""
    _provider_for.cache_clear()
