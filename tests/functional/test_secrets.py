"""Secrets read at run time from SSM Parameter Store, through Powertools Parameters, against moto's SSM.

GIVEN a function whose environment carries only the names of its SecureString parameters (as serverless.yml
deploys it), WHEN it needs a secret, THEN it reads the decrypted value from SSM on first use, caches it, and
answers as it would with the value in hand; a parameter that cannot be read is a 503, never a 500, and no value
ever reaches a log.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from pydantic import ValidationError

from devtools.apigw import http_api_event
from devtools.fake_piapi import FakePiapi
from devtools.lambda_context import LocalLambdaContext
from functions.library_api.handler import handler as library_handler
from functions.piapi_webhook.handler import handler as webhook_handler
from tests.conftest import WEBHOOK_SECRET, load_event
from video_library import r2
from video_library.errors import StorageUnavailable
from video_library.secrets import Secret, SecretUnavailable, forget_secrets, read_secret
from video_library.settings import get_settings

STAGE_PREFIX = "/video-library/test"
PARAMETERS = {
    Secret.PIAPI_WEBHOOK_SECRET: f"{STAGE_PREFIX}/piapi-webhook-secret",
    Secret.PIAPI_API_KEY: f"{STAGE_PREFIX}/piapi-api-key",
    Secret.R2_ACCESS_KEY_ID: f"{STAGE_PREFIX}/r2-access-key-id",
    Secret.R2_SECRET_ACCESS_KEY: f"{STAGE_PREFIX}/r2-secret-access-key",
}
PIAPI_KEY_IN_SSM = "piapi-key-kept-in-ssm"
R2_KEY_ID_IN_SSM = "R2KEYIDFROMSSM0001"
R2_SECRET_IN_SSM = "r2-secret-from-ssm-never-logged"


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch, aws: None) -> Iterator[Any]:
    """The environment serverless.yml gives a function (parameter names, no values), and the SecureStrings in SSM."""
    for secret, name in PARAMETERS.items():
        monkeypatch.delenv(secret.variable, raising=False)
        monkeypatch.setenv(secret.parameter_variable, name)
    monkeypatch.setenv("R2_ENDPOINT_URL", "https://account-id.r2.cloudflarestorage.com")
    get_settings.cache_clear()
    ssm = boto3.client("ssm", region_name="us-east-1")
    values = {
        Secret.PIAPI_WEBHOOK_SECRET: WEBHOOK_SECRET,
        Secret.PIAPI_API_KEY: PIAPI_KEY_IN_SSM,
        Secret.R2_ACCESS_KEY_ID: R2_KEY_ID_IN_SSM,
        Secret.R2_SECRET_ACCESS_KEY: R2_SECRET_IN_SSM,
    }
    for secret, value in values.items():
        ssm.put_parameter(Name=PARAMETERS[secret], Type="SecureString", Value=value)
    yield ssm
    forget_secrets()


def webhook(secret: str) -> int:
    event = load_event("webhook_processing")
    event["headers"]["x-webhook-secret"] = secret
    status: int = webhook_handler(event, LocalLambdaContext())["statusCode"]
    return status


def presigned_key_id() -> str:
    """The access key id a presigned R2 URL is signed with (its X-Amz-Credential starts with it)."""
    url = r2.playable_url("campaigns/42/videos/v.mp4")
    credential = parse_qs(urlsplit(url).query)["X-Amz-Credential"][0]
    return credential.split("/", 1)[0]


def test_the_webhook_secret_comes_decrypted_from_ssm(deployed: Any) -> None:
    # GIVEN only PIAPI_WEBHOOK_SECRET_PARAMETER in the environment (set by the fixture)
    # WHEN PiAPI calls with the value kept in SSM, and someone calls with anything else
    right, wrong, encrypted_form = (
        webhook(WEBHOOK_SECRET),
        webhook("guess"),
        webhook(f"kms:alias/aws/ssm:{WEBHOOK_SECRET}"),
    )

    # THEN only the decrypted value opens the door
    assert (right, wrong, encrypted_form) == (200, 401, 401)


def test_nothing_is_read_before_first_use_and_a_missing_parameter_is_a_503(deployed: Any, logs: io.StringIO) -> None:
    # GIVEN the parameter is not in SSM (yet): loading the settings and importing the handler read nothing
    deployed.delete_parameter(Name=PARAMETERS[Secret.PIAPI_WEBHOOK_SECRET])
    get_settings()

    # WHEN a delivery comes
    response = webhook_handler(load_event("webhook_processing"), LocalLambdaContext())

    # THEN it is refused as "not available now" (PiAPI delivers again), in the project's error shape
    assert response["statusCode"] == 503
    assert json.loads(response["body"])["error"]["code"] == "secret_unavailable"
    assert PARAMETERS[Secret.PIAPI_WEBHOOK_SECRET] in logs.getvalue()

    # AND once the parameter exists the next delivery is let in (a failure is not cached)
    deployed.put_parameter(Name=PARAMETERS[Secret.PIAPI_WEBHOOK_SECRET], Type="SecureString", Value=WEBHOOK_SECRET)
    assert webhook(WEBHOOK_SECRET) == 200


def test_a_value_is_cached_for_its_max_age_then_read_again(deployed: Any) -> None:
    # GIVEN the secret has been read once
    assert webhook(WEBHOOK_SECRET) == 200

    # WHEN it is rotated in SSM
    deployed.put_parameter(
        Name=PARAMETERS[Secret.PIAPI_WEBHOOK_SECRET], Type="SecureString", Value="rotated-secret", Overwrite=True
    )

    # THEN the warm function keeps the cached value until its max age (300 s) is over...
    assert (webhook(WEBHOOK_SECRET), webhook("rotated-secret")) == (200, 401)
    # ...and reads the new one once the cache is dropped (as when the max age passes)
    forget_secrets()
    assert (webhook(WEBHOOK_SECRET), webhook("rotated-secret")) == (401, 200)


def test_with_a_max_age_of_zero_every_read_asks_ssm(deployed: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRETS_MAX_AGE_S", "0")
    get_settings.cache_clear()
    assert webhook(WEBHOOK_SECRET) == 200

    deployed.put_parameter(
        Name=PARAMETERS[Secret.PIAPI_WEBHOOK_SECRET], Type="SecureString", Value="rotated-secret", Overwrite=True
    )

    assert webhook("rotated-secret") == 200


def test_r2_clients_sign_with_the_keys_from_ssm_and_follow_a_rotation(deployed: Any) -> None:
    # GIVEN R2's keys only in SSM
    # WHEN a saved video's URL is presigned
    first = presigned_key_id()

    # THEN it is signed with the key id kept in SSM
    assert first == R2_KEY_ID_IN_SSM

    # AND after a rotation (and the cache's max age), a new client signs with the new key
    deployed.put_parameter(
        Name=PARAMETERS[Secret.R2_ACCESS_KEY_ID], Type="SecureString", Value="ROTATEDKEYID0002", Overwrite=True
    )
    assert presigned_key_id() == R2_KEY_ID_IN_SSM
    forget_secrets()
    assert presigned_key_id() == "ROTATEDKEYID0002"


def test_unreadable_r2_keys_make_storage_unavailable_not_unconfigured(deployed: Any) -> None:
    # GIVEN the R2 secret's parameter is gone (or not ours to read)
    deployed.delete_parameter(Name=PARAMETERS[Secret.R2_SECRET_ACCESS_KEY])

    # THEN R2 counts as unavailable just now: background work retries it instead of giving up
    with pytest.raises(StorageUnavailable, match="R2's keys could not be read") as raised:
        r2.r2_client()
    assert raised.value.retryable


def test_generate_calls_piapi_with_the_key_and_webhook_secret_from_ssm(deployed: Any) -> None:
    # GIVEN a PiAPI that accepts only the key kept in SSM
    piapi = FakePiapi(PIAPI_KEY_IN_SSM, delay_s=3600).start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PIAPI_BASE_URL", piapi.base_url)
            patch.setenv("WEBHOOK_PUBLIC_URL", "https://api.example.com/webhooks/piapi")
            get_settings.cache_clear()
            event = http_api_event(
                "POST",
                "/api/video/generate",
                body=json.dumps({"campaign_id": "42", "prompt": "a lighthouse at dusk"}),
                headers={"content-type": "application/json"},
                claims={"sub": "alice"},
            )

            # WHEN a signed-in user generates a video
            response = library_handler(event, LocalLambdaContext())

        # THEN PiAPI took the task, and was told to call back with the webhook secret from SSM
        assert response["statusCode"] == 202, response["body"]
        (task,) = piapi.tasks.values()
        assert task["config"]["webhook_config"]["secret"] == WEBHOOK_SECRET
    finally:
        piapi.stop()


def test_no_secret_value_reaches_the_logs(deployed: Any, logs: io.StringIO, capsys: pytest.CaptureFixture[str]) -> None:
    webhook(WEBHOOK_SECRET)
    webhook("wrong")
    presigned_key_id()
    deployed.delete_parameter(Name=PARAMETERS[Secret.R2_SECRET_ACCESS_KEY])
    forget_secrets()
    with pytest.raises(StorageUnavailable):
        r2.r2_client()

    written = logs.getvalue() + capsys.readouterr().out
    for value in (WEBHOOK_SECRET, R2_SECRET_IN_SSM, PIAPI_KEY_IN_SSM):
        assert value not in written


def test_the_plain_variable_wins_locally_and_nothing_configured_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    # No AWS here at all: a plain value never asks SSM, and no value nor parameter is simply "not configured".
    monkeypatch.setenv("PIAPI_API_KEY", "local-key")
    monkeypatch.setenv("PIAPI_API_KEY_PARAMETER", "/never/read")
    monkeypatch.delenv("R2_SECRET_ACCESS_KEY", raising=False)
    get_settings.cache_clear()

    key = read_secret(Secret.PIAPI_API_KEY)
    assert key is not None
    assert key.get_secret_value() == "local-key"
    assert read_secret(Secret.R2_SECRET_ACCESS_KEY) is None


def test_a_parameter_that_does_not_exist_is_unavailable(deployed: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIAPI_API_KEY_PARAMETER", f"{STAGE_PREFIX}/no-such-parameter")
    get_settings.cache_clear()

    with pytest.raises(SecretUnavailable, match="PIAPI_API_KEY could not be read"):
        read_secret(Secret.PIAPI_API_KEY)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("AWS_LAMBDA_FUNCTION_NAME", "video-library-prod-libraryApi"), ("AWS_EXECUTION_ENV", "AWS_Lambda_python3.12")],
)
def test_a_plain_secret_in_a_lambda_environment_stops_start_up(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    # GIVEN a deployed function whose environment carries secret values (someone set them by hand)
    monkeypatch.setenv(variable, value)
    monkeypatch.setenv("R2_SECRET_ACCESS_KEY", "r2-secret-value-never-printed")
    get_settings.cache_clear()

    # THEN the settings refuse to load, naming what to set instead, and print no value
    with pytest.raises(ValidationError) as refused:
        get_settings()

    message = str(refused.value)
    assert "R2_SECRET_ACCESS_KEY, PIAPI_WEBHOOK_SECRET are set in the environment" in message
    assert "R2_SECRET_ACCESS_KEY_PARAMETER" in message
    assert "r2-secret-value-never-printed" not in message
    assert WEBHOOK_SECRET not in message


def test_on_lambda_parameter_names_alone_are_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "video-library-prod-piapiWebhook")
    monkeypatch.delenv("PIAPI_WEBHOOK_SECRET")
    monkeypatch.setenv("PIAPI_WEBHOOK_SECRET_PARAMETER", "/video-library/prod/piapi-webhook-secret")
    get_settings.cache_clear()

    assert get_settings().parameter_of("piapi_webhook_secret") == "/video-library/prod/piapi-webhook-secret"


@pytest.mark.parametrize("name", ["", "has space", "/a//b", "a/b/", "x" * 1012, "/emoji/\u2603"])
def test_a_malformed_parameter_name_stops_start_up(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("R2_ACCESS_KEY_ID_PARAMETER", name)
    get_settings.cache_clear()

    with pytest.raises(ValidationError, match="r2_access_key_id_parameter"):
        get_settings()
