"""A function instance as Lambda runs one: its own process, one event at a time, killed at its timeout.

The local stack runs the save worker this way, so what matters on AWS happens here too: a transfer that
outlives its timeout is killed mid-flight (SIGKILL, no cleanup, like Lambda), its memory is its own, several
instances run at once, and a killed instance is replaced by a cold one. With ``confine=True`` (root and cgroups
v1, see devtools/lambda_share.py) the instance also gets the CPU share and memory limit of a Lambda of its size.

The child (``python -m devtools.lambda_process HANDLER``) reads one JSON line per invocation on stdin and writes
the answer on file descriptor 3; its stdout and stderr are the parent's, so the function's logs show as they do.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

from devtools.lambda_context import LocalLambdaContext
from devtools.lambda_share import LambdaShare, available

ROOT = Path(__file__).resolve().parent.parent
# Lambda's init phase (imports, module-level code) has its own limit, apart from the invocation's timeout. Lambda
# allows 10 s; a local machine compiling .pyc on first import may need more.
INIT_TIMEOUT_S = 60.0


class FunctionError(Exception):
    """The invocation failed: the handler raised, or the instance was killed (timeout, out of memory)."""


class FunctionInstance:
    """One warm instance of a handler (``functions/save_worker/handler.handler``), started on first use."""

    def __init__(
        self, handler: str, *, function_name: str, timeout_s: float, memory_mb: int, confine: bool = False
    ) -> None:
        self.handler = handler
        self.function_name = function_name
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.confine = confine and available()
        self._process: subprocess.Popen[bytes] | None = None
        self._answers: Any = None
        self._share: LambdaShare | None = None
        self.cold_starts = 0
        self.kills = 0

    def _start(self) -> None:
        read_answer, write_answer = os.pipe()
        if self.confine:
            self._share = LambdaShare(self.memory_mb).__enter__()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "devtools.lambda_process", self.handler, self.function_name, str(self.memory_mb)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            pass_fds=(write_answer,),
            env={**os.environ, "LAMBDA_ANSWER_FD": str(write_answer)},
            preexec_fn=self._share.enter if self._share is not None else None,
        )
        os.close(write_answer)
        self._answers = os.fdopen(read_answer, "rb")
        self.cold_starts += 1
        ready, _ = self._read_answer(INIT_TIMEOUT_S)
        if not ready or json.loads(ready).get("ready") is not True:
            self._stop()
            raise FunctionError("the instance did not initialise")

    def _read_answer(self, timeout_s: float) -> tuple[bytes, bool]:
        """The child's next line on the answer pipe (empty if it died), and whether the time ran out first."""
        answer: list[bytes] = []
        reader = threading.Thread(target=lambda: answer.append(self._answers.readline()), daemon=True)
        reader.start()
        reader.join(timeout_s)
        if reader.is_alive():
            return b"", True
        return (answer[0] if answer else b""), False

    def invoke(self, event: dict[str, Any]) -> Any:
        """Run one event; the handler's answer, or FunctionError. Kills the instance at its timeout."""
        if self._process is None or self._process.poll() is not None:
            self._stop()
            self._start()
        assert self._process is not None and self._process.stdin is not None
        request = {"event": event, "timeout_s": self.timeout_s, "request_id": str(uuid.uuid4())}
        self._process.stdin.write(json.dumps(request).encode() + b"\n")
        self._process.stdin.flush()
        answer, timed_out = self._read_answer(self.timeout_s)
        if not answer:
            self.kills += timed_out
            self._stop()
            raise FunctionError("Task timed out" if timed_out else "the instance exited (out of memory?)")
        outcome = json.loads(answer)
        if "error" in outcome:
            raise FunctionError(outcome["error"])
        return outcome["result"]

    def kill(self) -> None:
        """SIGKILL the instance now, as when it runs out of memory or the runtime crashes: nothing of it runs on."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()

    def _stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None
        if self._answers is not None:
            self._answers.close()
            self._answers = None
        if self._share is not None:
            self._share.__exit__(None, None, None)
            self._share = None

    def close(self) -> None:
        self._stop()


def _serve(handler_path: str, function_name: str, memory_mb: int) -> None:
    if os.environ.get("LOCAL_READABLE_LOGS"):
        from devtools.readable_logs import use_readable_logs

        use_readable_logs()
    module_path, _, attribute = handler_path.rpartition(".")
    handler = getattr(importlib.import_module(module_path.replace("/", ".")), attribute)
    answers = os.fdopen(int(os.environ["LAMBDA_ANSWER_FD"]), "wb")
    answers.write(b'{"ready": true}\n')
    answers.flush()
    for line in sys.stdin.buffer:
        request = json.loads(line)
        context = LocalLambdaContext(
            function_name=function_name,
            timeout_s=float(request["timeout_s"]),
            memory_limit_in_mb=memory_mb,
            aws_request_id=request["request_id"],
        )
        try:
            outcome: dict[str, Any] = {"result": handler(request["event"], context)}
        except Exception as exc:  # Lambda reports the error; the instance stays warm
            import traceback

            traceback.print_exc()
            outcome = {"error": f"{type(exc).__name__}: {exc}"}
        answers.write(json.dumps(outcome, default=str).encode() + b"\n")
        answers.flush()


if __name__ == "__main__":
    _serve(sys.argv[1], sys.argv[2], int(sys.argv[3]))
