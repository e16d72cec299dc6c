"""Save to Library on Lambda's CPU: the worker's copy vs ``rclone copyurl``, each confined to the CPU share and
memory of a Lambda function of a given size (devtools/lambda_share.py: CPU quota = size / 1,769 MB of one core,
memory limit = size), at 100 MiB and 1 GiB, over plain HTTP and over HTTPS on both legs.

Each run is a process of its own, confined; the servers (moto for DynamoDB, S3 as R2 and SQS; the synthetic
video source) run in processes of their own, unconfined, as R2 and the provider's CDN are not on the function's
CPU either. The save's time is its own copy (claim, download, upload, record: the worker's code path, imports
and clients excluded as on a warm Lambda); rclone (Go) starts in milliseconds, so its wall time is its copy.
Peak RSS comes from wait4. US$ per GiB is Lambda's arm64 price for the time at that size.

    python -m benchmarks.bench_save [--memory 256,512,1024,1769,3008] [--sizes 100,1024] [--protocols http,https]

Needs root (cgroups) and Debian's rclone; prints a Markdown table for the README.
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
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3

from devtools.lambda_share import LambdaShare, available
from devtools.tls import self_signed_certificate

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
BUCKET = "video-library-bench"
TABLE = "videos-bench"
# Lambda's arm64 price per GB-second (us-east-1, first 7.5 billion GB-s a month).
USD_PER_GB_SECOND = 0.0000133334


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


@contextmanager
def server(kind: str, port: int, tls: tuple[str, str] | None) -> Iterator[None]:
    command = [sys.executable, "-m", "benchmarks.bench_servers", kind, "--port", str(port)]
    if tls:
        command += ["--tls", *tls]
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
    protocol: str
    memory_mb: int
    size_mib: int
    seconds: float
    peak_rss_mib: float
    cpu_seconds: float  # user + system of the copy (rclone: its whole process): what the CPU share limits

    @property
    def mib_per_s(self) -> float:
        return self.size_mib / self.seconds

    @property
    def usd_per_gib(self) -> float:
        return self.seconds * (1024 / self.size_mib) * (self.memory_mb / 1024) * USD_PER_GB_SECOND


def measure(
    command: list[str], env: dict[str, str], share: LambdaShare | None, result_file: Path | None
) -> tuple[float, float, float]:
    """The run's own time (rclone: its wall time), its peak RSS (MiB) and its CPU time, confined to ``share``."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, preexec_fn=share.enter if share else None)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{command[:4]} failed with {os.waitstatus_to_exitcode(status)}")
    cpu = usage.ru_utime + usage.ru_stime
    if result_file:  # the save's own copy, as on a warm Lambda (Python's start-up and imports are not in it)
        own = json.loads(result_file.read_text())
        return own["seconds"], usage.ru_maxrss / 1024, own.get("cpu_seconds", cpu)
    return elapsed, usage.ru_maxrss / 1024, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memory", default="256,512,1024,1769,3008", help="Lambda sizes in MB")
    parser.add_argument("--sizes", default="100,1024", help="file sizes in MiB")
    parser.add_argument("--protocols", default="http,https")
    parser.add_argument(
        "--methods",
        default="save,rclone",
        help="save, rclone (its defaults: one PUT up to 200 MiB), rclone-multipart (multipart at every size, as the"
        " save does above 8 MiB: the same server-side work)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell; the best is reported")
    parser.add_argument("--request", action="store_true", help="also time the save request's answer at 256 MB")
    args = parser.parse_args()
    if not available():
        raise SystemExit("bench-save confines processes with cgroups v1: it needs root on this kind of machine")
    rclone = shutil.which("rclone")
    methods = [m for m in args.methods.split(",") if not m.startswith("rclone") or rclone]
    memories = [int(m) for m in args.memory.split(",")]
    sizes = [int(s) for s in args.sizes.split(",")]
    runs: list[Run] = []
    requests: list[tuple[str, float, float]] = []
    workdir = Path(tempfile.mkdtemp(prefix="bench-save-"))
    cert, key = self_signed_certificate(workdir, ["localhost", "127.0.0.1"])
    for protocol in args.protocols.split(","):
        tls = (cert, key) if protocol == "https" else None
        aws_port, source_port = free_port(), free_port()
        scheme = "https" if tls else "http"
        aws_url = f"{scheme}://localhost:{aws_port}"
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "DYNAMODB_ENDPOINT_URL": aws_url,
            "R2_ENDPOINT_URL": aws_url,
            "SQS_ENDPOINT_URL": aws_url,
            "R2_BUCKET": BUCKET,
            "R2_ACCESS_KEY_ID": "bench",
            "R2_SECRET_ACCESS_KEY": "bench",
            "VIDEOS_TABLE": TABLE,
            "ALLOWED_SOURCE_HOSTS": "localhost",
            "DEV_INSECURE_SOURCE_HOSTS": f"localhost:{source_port}",
            "MAX_VIDEO_BYTES": str(5 * 1024 * MIB),
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "PYTHONPATH": f"{ROOT}:{ROOT / 'src'}",
        }
        if tls:
            env["AWS_CA_BUNDLE"] = cert  # boto3 trusts our certificate
            env["SSL_CERT_FILE"] = cert  # and so does the download (the default verify paths)
        with ExitStack() as servers:
            servers.enter_context(server("aws", aws_port, tls))
            servers.enter_context(server("source", source_port, tls))
            admin = boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench")  # noqa: S106
            s3 = admin.client("s3", endpoint_url=aws_url, region_name="us-east-1", verify=cert if tls else None)
            s3.create_bucket(Bucket=BUCKET)
            sqs = admin.client("sqs", endpoint_url=aws_url, region_name="us-east-1", verify=cert if tls else None)
            env["SAVE_QUEUE_URL"] = sqs.create_queue(QueueName="saves-bench")["QueueUrl"]
            subprocess.run(
                [sys.executable, "-c", "from video_library import db; db.create_tables()"],
                cwd=ROOT,
                env=env,
                check=True,
            )
            if args.request and protocol == "http":
                result = workdir / "request.json"
                url = f"{scheme}://localhost:{source_port}/video.mp4?size={MIB}"
                with LambdaShare(256) as share:
                    measure(
                        [sys.executable, "-m", "benchmarks.save_worker", "request", url, str(result)],
                        env,
                        share,
                        result,
                    )
                answer = json.loads(result.read_text())
                requests.append(("256 MB", answer["seconds"], answer["max_seconds"]))
                median_ms, max_ms = answer["seconds"] * 1000, answer["max_seconds"] * 1000
                print(f"save request at 256 MB: median {median_ms:.0f} ms, max {max_ms:.0f} ms", flush=True)
            for size_mib in sizes:
                url = f"{scheme}://localhost:{source_port}/video.mp4?size={size_mib * MIB}"
                for memory_mb in memories:
                    for method in methods:
                        best: Run | None = None
                        for _ in range(args.repeat):
                            run = one_run(
                                method, protocol, memory_mb, size_mib, url, env, workdir, aws_url, cert if tls else None
                            )
                            best = run if best is None or run.seconds < best.seconds else best
                        assert best is not None
                        runs.append(best)
                        print(
                            f"{protocol:>5} {memory_mb:>5} MB {size_mib:>5} MiB {method:>16}: {best.seconds:7.2f} s"
                            f" {best.mib_per_s:6.1f} MiB/s {best.peak_rss_mib:6.1f} MiB peak"
                            f" {best.cpu_seconds:6.2f} s CPU"
                            f" ${best.usd_per_gib:.6f}/GiB",
                            flush=True,
                        )
    print()
    print(report(runs, requests))


def one_run(
    method: str,
    protocol: str,
    memory_mb: int,
    size_mib: int,
    url: str,
    env: dict[str, str],
    workdir: Path,
    aws_url: str,
    cert: str | None,
) -> Run:
    with LambdaShare(memory_mb) as share:
        if method.startswith("rclone"):
            command = [
                "rclone",
                "copyurl",
                url,
                f":s3:{BUCKET}/{method}/{size_mib}-{memory_mb}.mp4",
                "--s3-provider=Other",
                f"--s3-endpoint={aws_url}",
                "--s3-access-key-id=bench",
                "--s3-secret-access-key=bench",
                "--s3-no-head",
                "--s3-chunk-size=8M",
                "--s3-upload-concurrency=4",
                "--s3-force-path-style",
            ]
            command += [f"--ca-cert={cert}"] if cert else []
            command += ["--s3-upload-cutoff=0"] if method == "rclone-multipart" else []
            # rclone refuses this machine's AWS_CA_BUNDLE (see TRAPS.md); it is given the certificate itself.
            child_env = {k: v for k, v in env.items() if k not in ("AWS_CA_BUNDLE", "SSL_CERT_FILE")}
            seconds, rss, cpu = measure(command, child_env, share, None)
        else:
            result = workdir / f"{method}.json"
            command = [sys.executable, "-m", "benchmarks.save_worker", "copy", url, str(result)]
            seconds, rss, cpu = measure(command, env, share, result)
    return Run(method, protocol, memory_mb, size_mib, seconds, rss, cpu)


def report(runs: list[Run], requests: list[tuple[str, float, float]]) -> str:
    lines = [
        "| protocol | Lambda size | file | way | seconds | MiB/s | peak RSS | CPU s | US$ per GiB | vs rclone |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        rclone = next(
            (
                r
                for r in runs
                if r.method == "rclone"
                and (r.protocol, r.memory_mb, r.size_mib) == (run.protocol, run.memory_mb, run.size_mib)
            ),
            None,
        )
        ratio = f"{run.seconds / rclone.seconds:.2f}x" if rclone and run.method != "rclone" else ""
        label = f"{run.size_mib} MiB" if run.size_mib < 1024 else f"{run.size_mib // 1024} GiB"
        way = {"save": "**save**", "rclone": "`rclone copyurl`"}.get(run.method, "`rclone copyurl`, multipart")
        lines.append(
            f"| {run.protocol} | {run.memory_mb} MB | {label} | {way} | {run.seconds:.2f} | {run.mib_per_s:.1f} "
            f"| {run.peak_rss_mib:.0f} MiB | {run.cpu_seconds:.2f} | {run.usd_per_gib:.6f} | {ratio} |"
        )
    for where, median, worst in requests:
        lines.append(f"\nSave request's answer at {where}: median {median * 1000:.0f} ms, max {worst * 1000:.0f} ms")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
