"""``make demo``: the whole story against the embedded stack, each step printed.

A video is generated → PiAPI's webhook completes it → Save to Library → the object in the bucket matches
the provider's file by sha256 → a purge 31 days ahead deletes the preview nobody saved and keeps the saved
video. Exits non-zero if any step does not turn out as it should.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from devtools.local_jwt import mint
from devtools.local_stack import DEV_BUCKET, LocalStack, StackConfig
from devtools.video_source import synthetic_sha256


class DemoFailed(Exception):
    pass


def step(text: str) -> None:
    print(f"\n▶ {text}", flush=True)


def ok(text: str) -> None:
    print(f"  ✓ {text}", flush=True)


def check(condition: bool, text: str) -> None:
    if not condition:
        raise DemoFailed(text)
    ok(text)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_status(video_id: str, wanted: str, timeout_s: float = 30) -> Any:
    from video_library import db

    deadline = time.monotonic() + timeout_s
    seen = None
    while time.monotonic() < deadline:
        record = db.get_video(video_id, consistent=True)
        if record is not None and record.status != seen:
            seen = record.status
            ok(f"video {video_id[:8]}… is {seen}")
        if record is not None and record.status == wanted:
            return record
        time.sleep(0.2)
    raise DemoFailed(f"video {video_id} did not become {wanted} within {timeout_s:g} s")


def follow_save(api: httpx.Client, headers: dict[str, str], video_id: str, timeout_s: float = 60) -> Any:
    """Poll the video as the page does, printing each save state it passes through, until the save is over."""
    deadline = time.monotonic() + timeout_s
    seen = None
    while time.monotonic() < deadline:
        view = api.get(f"/api/video/{video_id}", headers=headers).json()
        state = (view["save_state"], view.get("bytes_copied"))
        if state != seen:
            ok(
                f"save_state={view['save_state']}"
                + (f"  bytes_copied={view['bytes_copied']}" if view.get("bytes_copied") else "")
            )
            seen = state
        if view["save_state"] in ("saved", "failed"):
            return view
        time.sleep(0.1)
    raise DemoFailed(f"the save of {video_id} did not end within {timeout_s:g} s")


def run(stack: LocalStack) -> None:
    from video_library import db

    api = httpx.Client(base_url=stack.url, timeout=60)
    step("Sign in as alice (a local JWT, as API Gateway's authorizer would verify)")
    headers = {"authorization": f"Bearer {mint('alice')}"}
    ok("token minted")

    step("Generate two videos through PiAPI (the fake one): one to keep, one left as a preview")
    videos = {}
    for name, prompt in (
        ("keeper", "a paper boat drifting down a rainy street"),
        ("preview", "waves crashing on black sand"),
    ):
        answer = api.post("/api/video/generate", headers=headers, json={"campaign_id": "42", "prompt": prompt})
        check(answer.status_code == 202, f"{name}: PiAPI task created, record pending ({answer.status_code})")
        videos[name] = answer.json()["video_id"]

    step("PiAPI calls the webhook: processing, then completed")
    keeper = wait_for_status(videos["keeper"], "completed")
    wait_for_status(videos["preview"], "completed")
    check(bool(keeper.provider_video_url), f"the record plays from the provider: {keeper.provider_video_url}")

    step("Save to Library (the keeper): the request answers at once, the worker copies in the background")
    started = time.monotonic()
    answer = api.post("/api/video/save-to-library", headers=headers, json={"video_id": videos["keeper"]})
    answered_in = time.monotonic() - started
    check(answer.status_code == 202, f"POST /api/video/save-to-library → {answer.status_code} in {answered_in:.2f} s")
    ok(f"save_state={answer.json()['save_state']}")
    saved = follow_save(api, headers, videos["keeper"])
    check(
        saved["save_state"] == "saved",
        f"saved by the worker: r2_key={saved['r2_key']}  size={saved['size_bytes']} bytes",
    )
    ok(f"{saved['duration_s']} s, {saved['width']}x{saved['height']}, read from the file's own header")

    step("The object in the bucket is the provider's file, byte for byte")
    provider_bytes = httpx.get(keeper.provider_video_raw_url).content
    stored = stack.aws.client("s3").get_object(Bucket=DEV_BUCKET, Key=saved["r2_key"])["Body"].read()  # type: ignore[union-attr]
    record = db.get_video(videos["keeper"], consistent=True)
    digest = hashlib.sha256(stored).hexdigest()
    check(digest == hashlib.sha256(provider_bytes).hexdigest(), f"sha256 {digest[:16]}… equals the provider's")
    check(record is not None and record.sha256 == digest, "the record holds the same sha256")
    played = httpx.get(saved["video_url"])
    check(played.status_code == 200 and played.content == stored, "the returned URL plays the saved video")

    big_mib = int(os.environ.get("DEMO_BIG_MIB", "1024"))
    step(f"A big one: {big_mib} MiB, far longer than API Gateway's 30 s would allow inside a request")
    answer = api.post(
        "/api/video/generate",
        headers=headers,
        json={
            "campaign_id": "42",
            "prompt": "a long flight over the alps",
            "options": {"fake_size_bytes": big_mib << 20},
        },
    )
    check(answer.status_code == 202, f"generated ({answer.status_code})")
    big = answer.json()["video_id"]
    wait_for_status(big, "completed")
    started = time.monotonic()
    answer = api.post("/api/video/save-to-library", headers=headers, json={"video_id": big})
    check(
        answer.status_code == 202,
        f"POST /api/video/save-to-library → {answer.status_code} in {time.monotonic() - started:.2f} s",
    )
    view = follow_save(api, headers, big, timeout_s=600)
    took = time.monotonic() - started
    check(
        view["save_state"] == "saved",
        f"saved in {took:.1f} s ({big_mib / took:.0f} MiB/s), progress reported on the way",
    )
    record = db.get_video(big, consistent=True)
    head = stack.aws.client("s3").head_object(Bucket=DEV_BUCKET, Key=view["r2_key"])  # type: ignore[union-attr]
    check(
        record is not None
        and head["ContentLength"] == big_mib << 20
        and record.sha256 == synthetic_sha256(big_mib << 20),
        "byte for byte: the size and sha256 of the provider's file",
    )
    videos["big"] = big

    step("Purge, 31 days from now")
    later = datetime.now(UTC) + timedelta(days=31)
    answer = api.post("/_dev/purge", json={"time": later.isoformat()})
    check(answer.status_code == 200, f"POST /_dev/purge → {answer.status_code}")
    summary = answer.json()
    ok(f"summary: {summary}")
    check(summary["deleted"] == 1 and summary["complete"], "one preview deleted, run complete")
    check(db.get_video(videos["preview"], consistent=True) is None, "the unsaved preview is gone")
    check(db.get_video(videos["keeper"], consistent=True) is not None, "the saved video is kept")
    stack.aws.client("s3").head_object(Bucket=DEV_BUCKET, Key=saved["r2_key"])  # type: ignore[union-attr]
    ok("its object is still in the bucket")


def main() -> None:
    port = int(os.environ.get("PORT", free_port()))
    config = StackConfig(
        port=port,
        aws_port=free_port(),
        piapi_port=free_port(),
        fake_piapi_delay_s=float(os.environ.get("FAKE_PIAPI_DELAY_S", "0.5")),
    )
    stack = LocalStack(config).start()
    print(f"embedded stack on {stack.url}", flush=True)
    try:
        run(stack)
    except DemoFailed as failure:
        print(f"  ✗ {failure}", flush=True)
        sys.exit(1)
    finally:
        stack.stop()
    print("\nThe whole story worked.", flush=True)


if __name__ == "__main__":
    main()
