"""Speaking to PiAPI's unified task API: create a task, read one back.

``POST /api/v1/task`` and ``GET /api/v1/task/{task_id}``, authenticated with ``x-api-key``; every answer is
``{"code", "data": <task>, "message"}``. PiAPI's own failures (an error status, ``code`` other than 200, a
malformed answer, a timeout) become :class:`ProviderError` (502) carrying PiAPI's message, never its key.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from video_library.errors import ProviderError, ProviderUnreachable, ServiceNotConfigured
from video_library.piapi import Task
from video_library.secrets import Secret, read_secret
from video_library.settings import Settings, get_settings

TIMEOUT = httpx.Timeout(20.0, connect=5.0)


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: int
    data: Task | None = None
    message: str | None = None


class PiapiClient:
    def __init__(
        self, settings: Settings, transport: httpx.BaseTransport | None = None, *, api_key: SecretStr | None = None
    ) -> None:
        api_key = api_key or read_secret(Secret.PIAPI_API_KEY, settings)
        if api_key is None or not api_key.get_secret_value():
            raise ServiceNotConfigured("PiAPI is not configured (PIAPI_API_KEY is required)")
        self._settings = settings
        self._http = httpx.Client(
            base_url=settings.piapi_base_url.rstrip("/"),
            headers={"x-api-key": api_key.get_secret_value(), "accept": "application/json"},
            timeout=TIMEOUT,
            transport=transport,
            trust_env=False,
        )

    def create_task(self, *, model: str, task_type: str, task_input: dict[str, Any]) -> Task:
        """Start a generation; PiAPI will call our webhook with the shared secret as it progresses."""
        body: dict[str, Any] = {"model": model, "task_type": task_type, "input": task_input}
        settings = self._settings
        webhook_secret = read_secret(Secret.PIAPI_WEBHOOK_SECRET, settings) if settings.webhook_public_url else None
        if settings.webhook_public_url and webhook_secret:
            body["config"] = {
                "webhook_config": {
                    "endpoint": settings.webhook_public_url,
                    "secret": webhook_secret.get_secret_value(),
                }
            }
        return self._call("POST", "/api/v1/task", json=body)

    def get_task(self, task_id: str) -> Task:
        return self._call("GET", f"/api/v1/task/{task_id}")

    def _call(self, method: str, path: str, **kwargs: Any) -> Task:
        try:
            response = self._http.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ProviderUnreachable(f"PiAPI could not be reached ({type(exc).__name__})") from exc
        except httpx.TimeoutException as exc:
            raise ProviderError("PiAPI did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise ProviderError(f"PiAPI could not be reached ({type(exc).__name__})") from exc
        try:
            envelope = _Envelope.model_validate_json(response.content)
        except ValidationError:
            raise ProviderError(f"PiAPI answered HTTP {response.status_code} without a task") from None
        if response.status_code != 200 or envelope.code != 200 or envelope.data is None:
            message = envelope.message or (
                envelope.data.error.describe() if envelope.data and envelope.data.error else None
            )
            raise ProviderError(
                f"PiAPI refused the request: {message or 'no reason given'}", provider_status=response.status_code
            )
        return envelope.data


# Keyed on the key too: once a rotated key comes back from SSM (within SECRETS_MAX_AGE_S), a new client uses it.
@lru_cache(maxsize=1)
def _client_for(settings: Settings, api_key: SecretStr | None) -> PiapiClient:
    return PiapiClient(settings, api_key=api_key)


def piapi_client() -> PiapiClient:
    """The process's PiAPI client, made on first use (its connections are reused while the Lambda is warm)."""
    settings = get_settings()
    return _client_for(settings, read_secret(Secret.PIAPI_API_KEY, settings))
