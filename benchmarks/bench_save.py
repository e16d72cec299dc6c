"""Save to Library benchmark: copy 100 MiB and 1 GiB from a local HTTP server into a local S3 server.

Ways compared, each in its own process (its peak RSS is measured with wait4):
- ``save``: this project's save path, through the real handler (record in DynamoDB, lease, stream, record);
- ``naive``: the first design sketch (whole body in memory, then put_object);
- ``rclone``: ``rclone copyurl`` (Debian's rclone), the outside reference;
- ``download`` alone (stream to nowhere) and ``upload`` alone (our uploader fed from memory), whose max is
  the floor any copy can reach.

Servers (moto, the video source) run as separate processes so they are not part of anyone's RSS.

    python -m benchmarks.bench_save [--sizes 100,1024] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
BUCKET = "video-library-bench"
KEYS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


@contextmanager
def background(command: list[str], port: int) -> Iterator[None]:
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass
class Run:
    method: str
    size_mib: int
    seconds: float  # the copy itself (rclone: its whole run, a Go binary starts in milliseconds)
    wall_seconds: float  # the whole process, interpreter start and imports included
    peak_rss_mib: float


def measure(command: list[str], env: dict[str, str], result_file: Path | None) -> tuple[float, float, float]:
    """The copy's own time, the process's wall time, and its peak RSS (MiB)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{command[:4]} failed with {os.waitstatus_to_exitcode(status)}")
    own = json.loads(result_file.read_text())["seconds"] if result_file else elapsed
    return own, elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1024", help="sizes in MiB")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rclone = shutil.which("rclone")

    s3_port, source_port = free_port(), free_port()
    s3_url = f"http://127.0.0.1:{s3_port}"
    moto = [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)]
    source = [sys.executable, "-m", "devtools.video_source", "--port", str(source_port)]
    env = {
        **os.environ,
        **KEYS,
        "DYNAMODB_ENDPOINT_URL": s3_url,
        "R2_ENDPOINT_URL": s3_url,
        "R2_BUCKET": BUCKET,
        "R2_ACCESS_KEY_ID": "bench",
        "R2_SECRET_ACCESS_KEY": "bench",
        "VIDEOS_TABLE": "videos-bench",
        "ALLOWED_SOURCE_HOSTS": "127.0.0.1",
        "DEV_INSECURE_SOURCE_HOSTS": f"127.0.0.1:{source_port}",
        "MAX_VIDEO_BYTES": str(5 * 1024 * MIB),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "PYTHONPATH": f"{ROOT}:{ROOT / 'src'}",
    }
    runs: list[Run] = []
    with background(moto, s3_port), background(source, source_port):
        admin = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", **_keys())
        admin.create_bucket(Bucket=BUCKET)
        subprocess.run(
            [sys.executable, "-c", "from video_library import db; db.create_tables()"], cwd=ROOT, env=env, check=True
        )
        for size_mib in sizes:
            size = size_mib * MIB
            url = f"http://127.0.0.1:{source_port}/video.mp4?size={size}"
            methods = ["download", "upload", "save", "naive"] + (["rclone"] if rclone else [])
            for _ in range(args.repeat):
                for method in methods:
                    if method == "rclone":
                        command = [
                            str(rclone),
                            "copyurl",
                            url,
                            f":s3:{BUCKET}/rclone/video-{size_mib}.mp4",
                            "--s3-provider",
                            "Other",
                            "--s3-endpoint",
                            s3_url,
                            "--s3-access-key-id",
                            "bench",
                            "--s3-secret-access-key",
                            "bench",
                            "--s3-no-head",
                            "--s3-chunk-size",
                            "8M",
                            "--s3-upload-concurrency",
                            "4",
                            "--s3-force-path-style",
                        ]
                        # rclone refuses this machine's AWS_CA_BUNDLE (see TRAPS.md); it needs none here.
                        child_env = {k: v for k, v in env.items() if k != "AWS_CA_BUNDLE"}
                        result_file = None
                    else:
                        result_file = Path(tempfile.mkstemp(prefix="bench-save-")[1])
                        command = [
                            sys.executable,
                            "-m",
                            "benchmarks.save_worker",
                            method,
                            url,
                            str(size),
                            str(result_file),
                        ]
                        child_env = env
                    seconds, wall, rss = measure(command, child_env, result_file)
                    runs.append(Run(method, size_mib, seconds, wall, rss))
                    print(
                        f"{method:>9} {size_mib:>5} MiB  {seconds:7.2f} s (wall {wall:6.2f} s)  {rss:6.1f} MiB peak",
                        flush=True,
                    )
    print()
    print(report(runs, sizes))


def _keys() -> dict[str, str]:
    return {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}


def report(runs: list[Run], sizes: list[int]) -> str:
    def best(method: str, size: int) -> Run | None:
        matching = [r for r in runs if r.method == method and r.size_mib == size]
        return min(matching, key=lambda r: r.seconds) if matching else None

    lines = [
        "| size | way | copy time | process wall time | peak RSS | vs max(download, upload) | vs rclone |",
        "|---|---|---|---|---|---|---|",
    ]
    for size in sizes:
        download, upload, rclone = best("download", size), best("upload", size), best("rclone", size)
        floor = max(download.seconds, upload.seconds) if download and upload else None
        for method in ("save", "naive", "rclone", "download", "upload"):
            run = best(method, size)
            if run is None:
                continue
            vs_floor = f"{run.seconds / floor:.2f}x" if floor and method in ("save", "naive", "rclone") else ""
            vs_rclone = f"{run.seconds / rclone.seconds:.2f}x" if rclone and method in ("save", "naive") else ""
            label = f"{size} MiB" if size < 1024 else f"{size // 1024} GiB"
            lines.append(
                f"| {label} | {method} | {run.seconds:.2f} s | {run.wall_seconds:.2f} s | {run.peak_rss_mib:.0f} MiB "
                f"| {vs_floor} | {vs_rclone} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
