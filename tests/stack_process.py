"""`make dev`'s stack as its own process on free ports, for the end-to-end and browser tests.

The stack's output goes to a log file (a pipe nobody reads would fill up and block the stack); its tail is in
the failure message when the stack does not come up.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from video_library.settings import get_settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningStack:
    url: str
    aws_url: str
    piapi_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


# The stack is given its webhook secret (make dev honours PIAPI_WEBHOOK_SECRET), not left to the environment.
STACK_WEBHOOK_SECRET = "e2e-webhook-secret"


@contextmanager
def running_stack(
    *, fake_piapi_delay_s: float = 0.3, log_path: Path | None = None, webhook_secret: str = STACK_WEBHOOK_SECRET
) -> Iterator[RunningStack]:
    """Start ``python -m devtools.local_stack`` on free ports, wait for /healthz, kill it afterwards."""
    port, aws_port, piapi_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "LOCAL_AWS_PORT": str(aws_port),
        "FAKE_PIAPI_PORT": str(piapi_port),
        "FAKE_PIAPI_DELAY_S": str(fake_piapi_delay_s),
        "PURGE_INTERVAL_S": "3600",
        "PIAPI_WEBHOOK_SECRET": webhook_secret,
        "PYTHONUNBUFFERED": "1",
    }
    if log_path is None:
        log_path = Path(tempfile.mkstemp(prefix="local-stack-", suffix=".log")[1])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "devtools.local_stack"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    running = RunningStack(
        f"http://127.0.0.1:{port}", f"http://127.0.0.1:{aws_port}", f"http://127.0.0.1:{piapi_port}", process, log_path
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{running.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
            if process.poll() is not None:
                pytest.fail(f"the local stack exited early:\n{running.log_tail()}")
        else:
            pytest.fail(f"the local stack did not answer /healthz within 60 s:\n{running.log_tail()}")
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def read_its_table(stack: RunningStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point this process's data-access code at the stack's table, to read records directly."""
    monkeypatch.setenv("DYNAMODB_ENDPOINT_URL", stack.aws_url)
    monkeypatch.setenv("VIDEOS_TABLE", "videos")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    get_settings.cache_clear()
