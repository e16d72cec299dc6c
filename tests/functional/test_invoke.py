"""`make invoke`: every handler on its sample events, against an embedded stack or against `make dev`'s.

GIVEN the sample events of events/, WHEN each is handed to its function through devtools.invoke, THEN the real
handler answers as it would on Lambda for a fresh stack (nothing to do, nothing found, or the work done); and
`make invoke` itself prints that answer, refuses what it cannot run, and, with `make dev` running, acts on that
stack.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools import make_events
from devtools.invoke import InvokeError, embedded_stack, invoke, load_event
from devtools.local_jwt import mint
from tests.conftest import ROOT
from tests.stack_process import STACK_WEBHOOK_SECRET, free_port, read_its_table, running_stack
from video_library import db

SAMPLES = sorted(path.name for path in make_events.EVENTS.glob("*.json"))


@pytest.fixture(scope="module")
def stack_values() -> Iterator[dict[str, str]]:
    with embedded_stack() as values:
        yield values


def answer_of(name: str, values: dict[str, str]) -> Any:
    return invoke(make_events.function_of(name), load_event(make_events.EVENTS / name), values)


def body(answer: dict[str, Any]) -> Any:
    return json.loads(answer["body"])


@pytest.mark.parametrize("name", [name for name in SAMPLES if name.startswith("webhook_")])
def test_webhook_samples_are_let_in_and_ignored_for_an_unknown_task(name: str, stack_values: dict[str, str]) -> None:
    answer = answer_of(name, stack_values)

    assert (answer["statusCode"], body(answer)) == (200, {"result": "ignored"})


def test_the_save_sample_is_a_404_for_a_video_the_stack_does_not_have(stack_values: dict[str, str]) -> None:
    answer = answer_of("save_to_library.json", stack_values)

    assert (answer["statusCode"], body(answer)["error"]["code"]) == (404, "video_not_found")


def test_the_generate_sample_creates_a_pending_video_that_the_list_sample_shows(stack_values: dict[str, str]) -> None:
    generated = answer_of("library_generate.json", stack_values)
    listed = answer_of("library_list.json", stack_values)

    assert generated["statusCode"] == 202
    assert body(generated)["status"] == "pending"
    assert listed["statusCode"] == 200
    assert body(generated)["video_id"] in [item["video_id"] for item in body(listed)["items"]]


@pytest.mark.parametrize("name", ["purge.json", "purge_dry_run.json"])
def test_the_purge_samples_run_to_completion(name: str, stack_values: dict[str, str]) -> None:
    summary = answer_of(name, stack_values)

    assert summary["complete"] is True
    assert summary["dry_run"] is (name == "purge_dry_run.json")
    assert summary["cutoff"] == "2026-10-26T03:15:00Z"  # the event's time minus 30 days


def test_the_scheduled_samples_of_reconcile_and_sweep_find_nothing_to_do(stack_values: dict[str, str]) -> None:
    reconciled = answer_of("reconcile.json", stack_values)
    swept = answer_of("sweep.json", stack_values)

    assert (reconciled["complete"], reconciled["examined"]) == (True, 0)
    assert (swept["complete"], swept["examined"]) == (True, 0)


def test_the_save_worker_sample_is_consumed_without_work(stack_values: dict[str, str]) -> None:
    # The message names a video the stack does not have: nothing to save, the message is not kept.
    assert answer_of("save_worker.json", stack_values) == {"batchItemFailures": []}


def test_every_sample_has_a_test_above() -> None:
    covered = {"save_to_library.json", "library_generate.json", "library_list.json", "purge.json"}
    covered |= {"purge_dry_run.json", "reconcile.json", "sweep.json", "save_worker.json"}
    assert {name for name in SAMPLES if not name.startswith("webhook_")} == covered


def test_an_unknown_function_or_an_unreadable_event_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvokeError, match=r"no function 'purgeAll' in serverless\.yml; one of: piapiWebhook"):
        invoke("purgeAll", {}, {})
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(InvokeError, match="is not a JSON object"):
        load_event(tmp_path / "list.json")
    with pytest.raises(InvokeError, match="is not a readable JSON event"):
        load_event(tmp_path / "absent.json")


# ---- the make target ----------------------------------------------------------------------------------


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def make_invoke(
    *arguments: str, port: int, aws_port: int | None = None, piapi_port: int | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PORT": str(port),
        "LOCAL_AWS_PORT": str(aws_port or port + 1),
        "FAKE_PIAPI_PORT": str(piapi_port or port + 2),
        # as whoever started the stack would: `make invoke` takes the same PIAPI_WEBHOOK_SECRET as `make dev`
        "PIAPI_WEBHOOK_SECRET": STACK_WEBHOOK_SECRET,
    }
    # The project's own make target, with this test's arguments.
    return subprocess.run(  # noqa: S603
        ["make", "-s", "invoke", *arguments],  # noqa: S607
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_make_invoke_prints_the_answer_and_explains_its_usage() -> None:
    # GIVEN no stack on these ports (never `make dev`'s 8000: someone may be using it)
    port = free_port()

    done = make_invoke("FN=sweep", "EVENT=events/sweep.json", port=port)
    usage = make_invoke("FN=sweep", port=port)
    unknown = make_invoke("FN=nothing", "EVENT=events/sweep.json", port=port)

    assert done.returncode == 0, done.stderr
    assert "against an embedded stack" in done.stderr
    assert json.loads(done.stdout)["complete"] is True
    assert (usage.returncode, unknown.returncode) == (2, 2)
    assert "usage: make invoke FN=" in usage.stderr
    assert "no function 'nothing'" in unknown.stderr


def test_make_invoke_acts_on_the_running_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    with running_stack() as stack:
        # WHEN the generate sample is invoked while `make dev` runs (on these ports)
        done = make_invoke(
            "FN=libraryApi",
            "EVENT=events/library_generate.json",
            port=port_of(stack.url),
            aws_port=port_of(stack.aws_url),
            piapi_port=port_of(stack.piapi_url),
        )

        assert done.returncode == 0, done.stderr
        assert "against the running stack" in done.stderr
        video_id = json.loads(json.loads(done.stdout)["body"])["video_id"]
        # THEN the video is in that stack's table, and its fake PiAPI completes it through that stack's webhook
        # (with the webhook secret that stack was started with)
        read_its_table(stack, monkeypatch)
        deadline = time.monotonic() + 30
        record = db.get_video(video_id, consistent=True)
        while time.monotonic() < deadline and (record is None or record.status != "completed"):
            time.sleep(0.2)
            record = db.get_video(video_id, consistent=True)
        assert record is not None and record.status == "completed", stack.log_tail()
        # and the API of that stack shows it to the sample's user
        token = mint(make_events.SAMPLE_CLAIMS["sub"])
        listing = httpx.get(
            f"{stack.url}/api/video/library", headers={"authorization": f"Bearer {token}"}, timeout=30
        ).json()
        assert video_id in [item["video_id"] for item in listing["items"]]
