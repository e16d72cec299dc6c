"""The benchmark's servers, each in a process of its own (never confined, never part of a measured RSS):

python -m benchmarks.bench_servers aws --port N [--tls CERT KEY]      moto (DynamoDB, S3 as R2, SQS)
python -m benchmarks.bench_servers source --port N [--tls CERT KEY]   the synthetic video source
"""

from __future__ import annotations

import argparse
import signal
import threading

from devtools.local_aws import LocalAws
from devtools.video_source import VideoSourceServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("server", choices=["aws", "source"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = parser.parse_args()
    tls = (args.tls[0], args.tls[1]) if args.tls else None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.server == "aws":
        aws = LocalAws("127.0.0.1", args.port, tls=tls).start()
        stop.wait()
        aws.stop()
    else:
        source = VideoSourceServer("127.0.0.1", args.port, tls=tls).start()
        stop.wait()
        source.stop()


if __name__ == "__main__":
    main()
