"""One copy of a video from a local HTTP source into a local S3, done one way; run as its own process so that
its peak RSS is its own (the harness reads it with wait4). The copy's own time, imports excluded (a warm
Lambda has them already), is written to RESULT_FILE.

    python -m benchmarks.save_worker METHOD SOURCE_URL SIZE RESULT_FILE
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import httpx

from devtools.apigw import http_api_event
from devtools.lambda_context import LocalLambdaContext
from devtools.video_source import synthetic_video
from video_library import db
from video_library.models import NewVideo, TaskProgress
from video_library.r2 import r2_client
from video_library.settings import get_settings
from video_library.status import VideoStatus
from video_library.upload import STREAMING_PUT_MAX, stream_put, upload_stream

BENCH_USER = "bench-user"


def save_path(url: str) -> None:
    """The real thing: a completed record, then the save handler with an API Gateway event."""
    from functions.save_to_library.handler import handler

    record = db.create_video(NewVideo(user_id=BENCH_USER, campaign_id="bench", prompt="bench", task_id=url))
    db.apply_task_progress(
        record.video_id,
        TaskProgress(task_id=url, status=VideoStatus.COMPLETED, provider_video_url=url, provider_video_raw_url=url),
    )
    event = http_api_event(
        "POST",
        "/api/video/save-to-library",
        body=json.dumps({"video_id": record.video_id}),
        headers={"content-type": "application/json"},
        claims={"sub": BENCH_USER},
    )
    answer = handler(event, LocalLambdaContext())
    if answer["statusCode"] != 200:
        raise SystemExit(f"save failed: {answer['body']}")


def naive(url: str) -> None:
    """The first design sketch: the whole body in memory, then one PutObject."""
    body = httpx.get(url, timeout=600).raise_for_status().content
    r2_client().put_object(Bucket=get_settings().r2_bucket, Key="naive/video.mp4", Body=body)


def download_only(url: str) -> None:
    with httpx.stream("GET", url, timeout=600) as response:
        for _ in response.iter_bytes():
            pass


def upload_only(size: int) -> None:
    """The upload the save path would make for this size, fed from memory instead of the network."""
    if size <= STREAMING_PUT_MAX:
        stream_put(
            r2_client(),
            bucket=get_settings().r2_bucket,
            key="upload-only/video.mp4",
            chunks=synthetic_video(size),
            size=size,
            content_type="video/mp4",
            metadata={},
        )
        return
    upload_stream(
        r2_client(),
        bucket=get_settings().r2_bucket,
        key="upload-only/video.mp4",
        chunks=synthetic_video(size),
        content_type="video/mp4",
        metadata={},
    )


def main() -> None:
    method, url, size, result_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    r2_client()  # clients are made once per warm Lambda too; keep that out of the copy's time
    started = time.perf_counter()
    if method == "save":
        save_path(url)
    elif method == "naive":
        naive(url)
    elif method == "download":
        download_only(url)
    elif method == "upload":
        upload_only(size)
    else:
        raise SystemExit(f"unknown method {method}")
    result_file.write_text(json.dumps({"seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
