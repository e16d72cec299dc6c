"""One measured run of the save, in a process of its own so that its peak RSS is its own (the harness reads it
with wait4) and so that it can be confined to a Lambda's CPU share and memory. The copy's own time (imports and
clients excluded: a warm Lambda has them) and its CPU time (every thread's) go to RESULT_FILE as JSON.

    python -m benchmarks.save_worker copy SOURCE_URL RESULT_FILE     the worker's attempt: claim, copy, record
                                                                     (after one small save: a warm Lambda)
    python -m benchmarks.save_worker request SOURCE_URL RESULT_FILE  the save request's answer (API function)
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from devtools.apigw import http_api_event
from devtools.lambda_context import LocalLambdaContext
from video_library import db, transfer
from video_library.models import NewVideo, TaskProgress
from video_library.r2 import r2_transfer_client
from video_library.settings import get_settings
from video_library.status import VideoStatus

BENCH_USER = "bench-user"
WARM_UP_BYTES = 17 * 1024 * 1024  # three parts: the multipart path, every operation of it


def completed(url: str) -> db.VideoRecord:
    record = db.create_video(NewVideo(user_id=BENCH_USER, campaign_id="bench", prompt="bench", task_id=url))
    db.apply_task_progress(
        record.video_id,
        TaskProgress(task_id=url, status=VideoStatus.COMPLETED, provider_video_url=url, provider_video_raw_url=url),
    )
    return record


def copy(url: str) -> dict[str, float]:
    """The worker's code path for one message: claim the lease, copy under it, record the save."""
    record = completed(url)
    assert db.queue_save(record.video_id, BENCH_USER, db.utcnow())
    started, cpu_started = time.perf_counter(), time.process_time()
    result = transfer.attempt_save(record.video_id, receive_count=1, remaining_ms=lambda: 900_000)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    if result.outcome is not transfer.Outcome.SAVED:
        raise SystemExit(f"save failed: {result}")
    saved = db.get_video(record.video_id, consistent=True)
    assert saved is not None and saved.size_bytes is not None
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "bytes": float(saved.size_bytes)}


def request(url: str) -> dict[str, float]:
    """POST /api/video/save-to-library through its handler: the answer's time (median of 10, after a warm-up)."""
    from functions.save_to_library.handler import handler

    def one() -> float:
        record = completed(url)
        event = http_api_event(
            "POST",
            "/api/video/save-to-library",
            body=json.dumps({"video_id": record.video_id}),
            headers={"content-type": "application/json"},
            claims={"sub": BENCH_USER},
        )
        started = time.perf_counter()
        answer = handler(event, LocalLambdaContext(timeout_s=29))
        took = time.perf_counter() - started
        if answer["statusCode"] != 202:
            raise SystemExit(f"save request failed: {answer['body']}")
        return took

    one()
    times = [one() for _ in range(10)]
    return {"seconds": statistics.median(times), "max_seconds": max(times)}


def warm_up(url: str) -> None:
    """A warm Lambda has saved before: its clients have made their first call of each operation (botocore
    resolves the endpoint and builds the operation's model then), its connections are open and its part buffers
    allocated. One small multipart save from the same source does all that, so the measured copy is the
    steady state; the first save in a fresh process costs ~0.4 s of CPU more, whatever its size."""
    parts = urlsplit(url)
    query = urlencode({**dict(parse_qsl(parts.query)), "size": str(WARM_UP_BYTES)})
    copy(urlunsplit(parts._replace(query=query)))


def main() -> None:
    mode, url, result_file = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    get_settings()
    r2_transfer_client()  # made once per warm Lambda: not part of the copy
    db.bind()
    if mode == "copy":
        warm_up(url)
    result = copy(url) if mode == "copy" else request(url)
    result_file.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
