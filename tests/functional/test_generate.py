"""Generating a video through the real PiAPI client against the fake PiAPI over HTTP."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from devtools.fake_piapi import FakePiapi
from video_library import db
from video_library.errors import ProviderError
from video_library.generate import GenerateRequest, generate_video
from video_library.piapi_client import piapi_client
from video_library.settings import get_settings

API_KEY = "test-piapi-key"


@pytest.fixture
def fake_piapi(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePiapi]:
    server = FakePiapi(API_KEY, delay_s=3600).start()  # no deliveries during these tests
    monkeypatch.setenv("PIAPI_BASE_URL", server.base_url)
    monkeypatch.setenv("PIAPI_API_KEY", API_KEY)
    monkeypatch.setenv("WEBHOOK_PUBLIC_URL", "https://api.example.com/webhooks/piapi")
    get_settings.cache_clear()
    yield server
    server.stop()


@pytest.mark.usefixtures("aws")
def test_generate_creates_the_task_and_a_pending_record(fake_piapi: FakePiapi) -> None:
    request = GenerateRequest(
        campaign_id="42",
        prompt="  a fox in the snow  ",
        model="kling",
        task_type="video_generation",
        options={"duration": 5},
    )

    record = generate_video("alice", request)

    task = fake_piapi.tasks[record.task_id]  # type: ignore[index]
    assert task["input"] == {"duration": 5, "prompt": "a fox in the snow"}
    assert task["config"]["webhook_config"] == {
        "endpoint": "https://api.example.com/webhooks/piapi",
        "secret": "s3cr3t-from-config",
    }
    stored = db.get_video(record.video_id, consistent=True)
    assert stored is not None
    assert (stored.user_id, stored.campaign_id, stored.status, stored.provider, stored.model, stored.task_type) == (
        "alice",
        "42",
        "pending",
        "kling",
        "kling",
        "video_generation",
    )
    assert stored.purge_shard is not None
    assert db.find_video_id_by_task(task["task_id"]) == record.video_id


@pytest.mark.usefixtures("aws")
def test_a_wrong_api_key_is_a_provider_error_and_stores_nothing(
    fake_piapi: FakePiapi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIAPI_API_KEY", "wrong")
    get_settings.cache_clear()

    with pytest.raises(ProviderError, match="Invalid API key") as raised:
        generate_video("alice", GenerateRequest(campaign_id="42", prompt="x"))

    assert raised.value.status == 502
    assert fake_piapi.tasks == {}


def test_piapi_unreachable_is_a_provider_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("PIAPI_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("PIAPI_API_KEY", API_KEY)
    get_settings.cache_clear()

    with pytest.raises(ProviderError, match="could not be reached"):
        piapi_client().get_task("t")


def test_get_task_reads_a_task_back(fake_piapi: FakePiapi) -> None:
    created = fake_piapi.create({"model": "luma", "task_type": "video_generation", "input": {"prompt": "p"}})

    task = piapi_client().get_task(created["task_id"])

    assert (task.task_id, task.model, task.status) == (created["task_id"], "luma", "pending")
    with pytest.raises(ProviderError, match="task not found"):
        piapi_client().get_task("no-such-task")


@pytest.mark.parametrize(
    "body",
    [
        {"campaign_id": "42", "prompt": ""},
        {"campaign_id": "42", "prompt": "   "},
        {"campaign_id": "42", "prompt": "x" * 2501},
        {"campaign_id": "4/2", "prompt": "x"},
        {"campaign_id": "42", "prompt": "x", "model": "dall-e"},
        {"campaign_id": "42", "prompt": "x", "model": "luma", "task_type": "txt2video"},
        {"campaign_id": "42", "prompt": "x", "options": {"prompt": "sneaky"}},
        {"prompt": "x"},
    ],
    ids=[
        "empty",
        "blank",
        "too-long",
        "campaign-with-slash",
        "unknown-model",
        "wrong-pair",
        "prompt-in-options",
        "no-campaign",
    ],
)
def test_requests_outside_what_piapi_documents_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        GenerateRequest.model_validate(body)
