"""A fake PiAPI speaking its unified task API over HTTP, for the local stack, the demo and the tests.

- ``POST /api/v1/task`` (``x-api-key`` required) answers as PiAPI does, then, after ``delay_s``, calls the
  task's ``config.webhook_config.endpoint`` with its secret in ``x-webhook-secret``: ``processing``, then
  ``completed`` — or ``failed`` when the prompt contains "fail" — in PiAPI's documented body layout, with
  each model's own output layout (Hunyuan/WanX/Hailuo ``video_url``, Kling ``works``, Kling omni ``video``,
  Luma ``video``/``video_raw``/``thumbnail``).
- ``GET /api/v1/task/{task_id}``: the task as it stands.
- ``GET /files/{task_id}.mp4``: the result, a small real playable MP4 (``devtools/media/sample.mp4``); a task
  created with ``input.fake_size_bytes = N`` serves N synthetic bytes instead, for size tests.
  ``GET /files/{task_id}.jpg``: its thumbnail. ``GET /files/synthetic/{N}.mp4``: N synthetic bytes.
- Test controls: ``POST /_fake/webhooks {"enabled": false}`` stops webhook deliveries (as when PiAPI's
  delivery fails); ``POST /_fake/expire/{task_id}`` deletes a result file (404 from then on), as PiAPI does, and
  ``POST /_fake/unexpire/{task_id}`` brings it back (to see a retry succeed); ``POST /_fake/flaky/{task_id}
  {"failures": N}`` answers the next N downloads of the video with 503, a transient failure the save retries
  (``"status": 401`` answers them with that status instead: a refusal, which a save does not retry).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from devtools.video_source import synthetic_video

MEDIA = Path(__file__).resolve().parent / "media"
SAMPLE_MP4 = (MEDIA / "sample.mp4").read_bytes()
THUMBNAIL = (MEDIA / "thumbnail.jpg").read_bytes()
# What each model family charges in PiAPI points (see the samples in ../shared/piapi).
POINTS = {"Qubico/hunyuan": 300_000, "Qubico/wanx": 280_000, "kling": 2_600_000, "luma": 400_000, "hailuo": 450_000}
NOT_YET = "0001-01-01T00:00:00Z"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakePiapi(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api_key: str, host: str = "127.0.0.1", port: int = 0, delay_s: float = 1.0) -> None:
        super().__init__((host, port), _Handler)
        self.api_key = api_key
        self.delay_s = delay_s
        self.webhooks_enabled = True
        self.tasks: dict[str, dict[str, Any]] = {}
        self.expired: set[str] = set()
        # task_id -> (downloads still to fail, the HTTP status they are answered with)
        self.failures_left: dict[str, tuple[int, int]] = {}
        self.deliveries: list[tuple[str, str, int]] = []  # (task_id, status, HTTP status of our webhook)
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.server_address[0]}:{self.server_address[1]}"

    def start(self) -> FakePiapi:
        self._thread = threading.Thread(target=self.serve_forever, name="fake-piapi", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    # -- tasks ---------------------------------------------------------------------------------------------

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        task_id = str(uuid.uuid4())
        task: dict[str, Any] = {
            "task_id": task_id,
            "model": body["model"],
            "task_type": body["task_type"],
            "status": "pending",
            "config": {"service_mode": "public", **(body.get("config") or {})},
            "input": body.get("input") or {},
            "output": {},
            "meta": {
                "created_at": _now(),
                "started_at": NOT_YET,
                "ended_at": NOT_YET,
                "usage": {"type": "point", "frozen": POINTS.get(body["model"], 500_000), "consume": 0},
                "is_using_private_pool": False,
            },
            "detail": None,
            "logs": [],
            "error": {"code": 0, "raw_message": "", "message": "", "detail": None},
        }
        with self.lock:
            self.tasks[task_id] = task
        threading.Thread(target=self._run, args=(task_id,), name=f"fake-task-{task_id[:8]}", daemon=True).start()
        return json.loads(json.dumps(task))

    def _run(self, task_id: str) -> None:
        time.sleep(self.delay_s)
        self._advance(task_id, "processing")
        time.sleep(self.delay_s)
        task = self.tasks[task_id]
        if "fail" in str(task["input"].get("prompt", "")).lower():
            self._advance(task_id, "failed")
        else:
            self._advance(task_id, "completed")

    def _advance(self, task_id: str, status: str) -> None:
        with self.lock:
            task = self.tasks[task_id]
            task["status"] = status
            meta = task["meta"]
            if status == "processing":
                meta["started_at"] = _now()
            else:
                meta["ended_at"] = _now()
            if status == "completed":
                task["output"] = self._output(task)
                meta["usage"]["consume"] = meta["usage"]["frozen"]
            elif status == "failed":
                task["error"] = {
                    "code": 10000,
                    "raw_message": "the fake PiAPI was asked to fail",
                    "message": "task failed",
                    "detail": None,
                }
            snapshot = json.loads(json.dumps(task))
        self._deliver(snapshot)

    def _output(self, task: dict[str, Any]) -> dict[str, Any]:
        files = f"{self.base_url}/files/{task['task_id']}"
        video, watermarked, thumbnail = f"{files}.mp4", f"{files}.mp4?watermark=1", f"{files}.jpg"
        model, task_type = task["model"], task["task_type"]
        if model == "kling" and task_type == "video_generation":
            return {
                "type": "m2v_txt2video",
                "status": 99,
                "works": [
                    {
                        "content_type": "video",
                        "status": 99,
                        "cover": {"resource": thumbnail, "resource_without_watermark": ""},
                        "video": {"resource": watermarked, "resource_without_watermark": video, "duration": 3000},
                    }
                ],
            }
        if model == "kling":
            return {"video": video}
        if model == "luma":
            return {"video": {"url": watermarked}, "video_raw": {"url": video}, "thumbnail": {"url": thumbnail}}
        if model == "hailuo":
            return {"video_url": video, "cover_url": thumbnail}
        return {"video_url": video}

    def _deliver(self, task: dict[str, Any]) -> None:
        webhook = (task.get("config") or {}).get("webhook_config") or {}
        endpoint, secret = webhook.get("endpoint"), webhook.get("secret", "")
        if not endpoint or not self.webhooks_enabled:
            return
        body = {"timestamp": int(time.time()), "data": task}
        for attempt in range(3):  # PiAPI retries deliveries answered with non-2xx
            try:
                answer = httpx.post(endpoint, json=body, headers={"x-webhook-secret": secret}, timeout=10)
                self.deliveries.append((task["task_id"], task["status"], answer.status_code))
                if answer.is_success:
                    return
            except httpx.HTTPError:
                self.deliveries.append((task["task_id"], task["status"], 0))
            time.sleep(0.5 * (attempt + 1))


class _Handler(BaseHTTPRequestHandler):
    server: FakePiapi
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"null")

    def _authorised(self) -> bool:
        if self.headers.get("x-api-key") == self.server.api_key:
            return True
        self._json(401, {"code": 401, "data": None, "message": "Invalid API key"})
        return False

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/api/v1/task":
            # Read before answering anything: a body left unread on a kept-alive connection would be taken for
            # the next request.
            body = self._read_json()
            if not self._authorised():
                return
            if not isinstance(body, dict) or not body.get("model") or not body.get("task_type"):
                self._json(400, {"code": 400, "data": None, "message": "model and task_type are required"})
                return
            self._json(200, {"code": 200, "data": self.server.create(body), "message": "success"})
        elif path == "/_fake/webhooks":
            self.server.webhooks_enabled = bool(self._read_json().get("enabled", True))
            self._json(200, {"webhooks_enabled": self.server.webhooks_enabled})
        elif path.startswith("/_fake/expire/"):
            self.server.expired.add(path.rsplit("/", 1)[-1])
            self._json(200, {"expired": path.rsplit("/", 1)[-1]})
        elif path.startswith("/_fake/unexpire/"):
            self.server.expired.discard(path.rsplit("/", 1)[-1])
            self._json(200, {"unexpired": path.rsplit("/", 1)[-1]})
        elif path.startswith("/_fake/flaky/"):
            body = self._read_json() or {}
            task_id = path.rsplit("/", 1)[-1]
            failures, status = int(body.get("failures", 1)), int(body.get("status", 503))
            with self.server.lock:
                self.server.failures_left[task_id] = (failures, status)
            self._json(200, {"task_id": task_id, "failures": failures, "status": status})
        else:
            self._json(404, {"code": 404, "data": None, "message": "not found"})

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith("/api/v1/task/"):
            if not self._authorised():
                return
            task = self.server.tasks.get(path.rsplit("/", 1)[-1])
            if task is None:
                self._json(404, {"code": 404, "data": None, "message": "task not found"})
            else:
                self._json(200, {"code": 200, "data": task, "message": "success"})
        elif path.startswith("/files/synthetic/") and path.endswith(".mp4"):
            self._video(int(path.rsplit("/", 1)[-1].removesuffix(".mp4")))
        elif path.startswith("/files/"):
            name = path.rsplit("/", 1)[-1]
            task_id, _, extension = name.rpartition(".")
            task = self.server.tasks.get(task_id)
            if task is None or task_id in self.server.expired:
                self._json(404, {"message": "file not found"})
            elif extension == "mp4" and (failure := self._failure_now(task_id)):
                self._json(failure, {"message": "the fake PiAPI was asked to fail this download"})
            elif extension == "jpg":
                self._bytes(THUMBNAIL, "image/jpeg")
            elif "fake_size_bytes" in task["input"]:
                self._video(int(task["input"]["fake_size_bytes"]))
            else:
                self._bytes(SAMPLE_MP4, "video/mp4")
        else:
            self._json(404, {"message": "not found"})

    def _failure_now(self, task_id: str) -> int | None:
        """The HTTP status this download of the video fails with, or None when it is served."""
        with self.server.lock:
            left, status = self.server.failures_left.get(task_id, (0, 503))
            if left <= 0:
                return None
            self.server.failures_left[task_id] = (left - 1, status)
            return status

    def _bytes(self, data: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Accept-Ranges", "none")
        self.end_headers()
        self.wfile.write(data)

    def _video(self, size: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        for block in synthetic_video(size):
            self.wfile.write(block)
