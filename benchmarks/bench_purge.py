"""Purge benchmark: how long the scheduled purge takes, and how its work grows, against moto in server mode.

Cases: N expired previews (1k, 10k, 50k) alone, then beside many other records (200k young previews, which
are in the sparse index but after the cutoff, plus saved old videos, which are not in it). Each case runs
the real handler with a scheduled event; the sequential baseline ("query a page, delete its records one
by one") runs on a fresh copy of the same records.

What is measured, per case: wall time and deletes/s; the Query requests and the index items they read
(ScannedCount, what DynamoDB bills and what its time depends on); the time spent inside those queries;
the purge process's own CPU per delete.

moto runs ``ThreadedMotoServer`` in a child process, so its CPU does not share the client's interpreter
lock: the client's threads compete with each other, not with the server. Its state is reset between
groups of cases (``POST /moto-api/reset``) and the table re-created by ``db.create_tables()``.

Two things about moto shape the numbers (see the README's table for what they mean on DynamoDB):
- moto answers a query on a global secondary index by walking every item of the table
  (moto/dynamodb/models/table.py, ``Table.query``), so its query time grows with the table although the
  items the query reads do not;
- moto spends about 3-4 ms of CPU on each conditional DeleteItem (parsing and evaluating the condition in
  Python), which caps any client at roughly 250-300 deletes/s on this machine. On loopback there is no
  network wait for concurrency to overlap, so ``--rtt-ms`` adds a simulated round trip to every request
  (a sleep in botocore's ``before-send``, which releases the GIL, as waiting on a socket does).

    python -m benchmarks.bench_purge                # the full run (~15 min on 2 cores)
    python -m benchmarks.bench_purge --quick        # small sizes, a minute or two (BENCH_QUICK=1 too)
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# The service's settings are read from the environment on first use: set it before importing the layer.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "VIDEOS_TABLE": "videos-bench",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        # R2 is not configured here: every run would warn that objects are not looked for.
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }
)
for unset in ("R2_ENDPOINT_URL", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(unset, None)

import boto3  # noqa: E402

from devtools.eventbridge import scheduled_event  # noqa: E402
from devtools.lambda_context import LocalLambdaContext  # noqa: E402

EVENT_TIME = datetime(2026, 11, 25, 3, 15, tzinfo=UTC)
CUTOFF = EVENT_TIME - timedelta(days=30)
WRITERS = 4  # seeding threads
BATCH = 25  # BatchWriteItem's maximum


# --- moto ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(port: int) -> None:
    """The child process: moto's threaded server, quiet, until the parent ends it."""
    import sys

    from moto.server import ThreadedMotoServer

    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (one request log line per call otherwise)
    ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False).start()
    threading.Event().wait()


@contextmanager
def moto_server() -> Iterator[str]:
    port = free_port()
    child = multiprocessing.get_context("spawn").Process(target=_serve, args=(port,), daemon=True)
    child.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=2).close()  # noqa: S310 (loopback http)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        yield url
    finally:
        child.terminate()
        child.join(timeout=30)


def reset(url: str) -> None:
    from video_library import db

    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")  # noqa: S310
    urllib.request.urlopen(request, timeout=60).close()  # noqa: S310
    db.create_tables()


# --- data ----------------------------------------------------------------------------------------------


def _prototype() -> dict[str, Any]:
    """A record exactly as PynamoDB writes it (every attribute a completed, unsaved preview carries)."""
    from video_library import db

    record = db.VideoRecord(
        "0" * 32,
        user_id="user-0001",
        campaign_id="campaign-01",
        user_campaign=db.user_campaign_key("user-0001", "campaign-01"),
        provider="piapi",
        model="kling",
        task_type="video_generation",
        task_id="task-0",
        prompt="a paper boat drifting down a rainy street, golden hour, 35mm",
        status="completed",
        video_url="https://storage.theapi.app/videos/0.mp4",
        video_raw_url="https://storage.theapi.app/videos/0.mp4",
        provider_video_url="https://storage.theapi.app/videos/0.mp4",
        provider_video_raw_url="https://storage.theapi.app/videos/0.mp4",
        cost_points=2_600_000,
        cost_usd=0.26,
        saved_to_r2=False,
        created_at=CUTOFF,
        updated_at=CUTOFF,
        completed_at=CUTOFF,
        purge_shard="0",
    )
    item: dict[str, Any] = record.serialize()
    return item


@dataclass(frozen=True)
class Population:
    expired: int  # unsaved, created before the cutoff: what the purge deletes
    young: int = 0  # unsaved, created after the cutoff: in the index, never read
    saved: int = 0  # saved, created before the cutoff: not in the index at all


def seed(population: Population, *, first_id: int) -> float:
    """Write the records with BatchWriteItem from a few threads; returns the seconds it took."""
    from video_library import db

    prototype = _prototype()
    created = db.VideoRecord.created_at.serialize

    def item(number: int, kind: str) -> dict[str, Any]:
        video_id = f"{number:032x}"
        record = dict(prototype)
        record["video_id"] = {"S": video_id}
        record["task_id"] = {"S": f"task-{number}"}
        if kind == "expired":  # spread over the month before the cutoff, oldest first
            record["created_at"] = {"S": created(CUTOFF - timedelta(days=1, seconds=number % 2_000_000))}
        elif kind == "young":
            record["created_at"] = {"S": created(CUTOFF + timedelta(seconds=1 + number % 2_000_000))}
        else:
            record["created_at"] = {"S": created(CUTOFF - timedelta(days=5, seconds=number % 2_000_000))}
            record["saved_to_r2"] = {"BOOL": True}
        if kind != "saved":
            record["purge_shard"] = {"S": db.purge_shard_of(video_id)}
        else:
            del record["purge_shard"]
        return record

    kinds = ["expired"] * population.expired + ["young"] * population.young + ["saved"] * population.saved
    items = [item(first_id + offset, kind) for offset, kind in enumerate(kinds)]
    endpoint = db.bind().Meta.host
    table = db.bind().Meta.table_name

    def write(chunk: list[dict[str, Any]]) -> None:
        client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
        for start in range(0, len(chunk), BATCH):
            pending: dict[str, Any] = {table: [{"PutRequest": {"Item": it}} for it in chunk[start : start + BATCH]]}
            while pending:
                pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    started = time.perf_counter()
    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(write, [items[i::WRITERS] for i in range(WRITERS)]))
    return time.perf_counter() - started


# --- measuring -----------------------------------------------------------------------------------------


@dataclass
class QueryMeter:
    """Counts the Query requests of the model's client, the index items they read and the time they took."""

    requests: int = 0
    items_read: int = 0
    seconds: float = 0.0
    _started: dict[int, float] = field(default_factory=dict)

    def before(self, **_: Any) -> None:
        self._started[threading.get_ident()] = time.perf_counter()

    def after(self, parsed: dict[str, Any], **_: Any) -> None:
        self.requests += 1
        self.items_read += int(parsed.get("ScannedCount", 0))
        self.seconds += time.perf_counter() - self._started.pop(threading.get_ident(), time.perf_counter())


@contextmanager
def instrumented(rtt_ms: float) -> Iterator[QueryMeter]:
    from video_library import db

    events = db.bind()._get_connection().connection.client.meta.events
    meter = QueryMeter()

    def network_round_trip(**_: Any) -> None:
        time.sleep(rtt_ms / 1000)

    events.register("before-call.dynamodb.Query", meter.before)
    events.register("after-call.dynamodb.Query", meter.after)
    if rtt_ms:
        events.register("before-send.dynamodb", network_round_trip)
    try:
        yield meter
    finally:
        events.unregister("before-call.dynamodb.Query", meter.before)
        events.unregister("after-call.dynamodb.Query", meter.after)
        if rtt_ms:
            events.unregister("before-send.dynamodb", network_round_trip)


@dataclass
class Result:
    label: str
    expired: int
    others: int
    method: str
    deleted: int
    seconds: float
    queries: int
    items_read: int
    query_seconds: float
    cpu_ms_per_delete: float

    @property
    def rate(self) -> float:
        return self.deleted / self.seconds if self.seconds else 0.0


def timed(run: Callable[[], int], rtt_ms: float) -> tuple[int, float, QueryMeter, float]:
    with instrumented(rtt_ms) as meter:
        cpu = time.process_time()
        started = time.perf_counter()
        deleted = run()
        seconds = time.perf_counter() - started
        cpu_ms = (time.process_time() - cpu) * 1000
    return deleted, seconds, meter, cpu_ms


def purge_run() -> int:
    """The real thing: the handler, a scheduled event, a fresh 15-minute Lambda context."""
    from functions.purge.handler import handler

    summary = handler(scheduled_event(EVENT_TIME), LocalLambdaContext(timeout_s=900))
    if not summary["complete"]:
        raise RuntimeError(f"the purge did not finish within one run: {summary}")
    deleted: int = summary["deleted"]
    return deleted


def sequential_run(limit: int | None) -> int:
    """The baseline: the same index pages, each record deleted (conditionally) one after the other."""
    from video_library import db
    from video_library.purge import DEFAULT_LIMITS

    deleted = 0
    for shard in map(str, range(db.PURGE_INDEX_SHARDS)):
        start_after = None
        while True:
            page, start_after = db.expired_unsaved(
                shard, CUTOFF, page_size=DEFAULT_LIMITS.page_size, start_after=start_after
            )
            for record in page:
                if limit is not None and deleted >= limit:
                    return deleted
                deleted += db.delete_if_unsaved(record.video_id, db.utcnow())
            if start_after is None:
                break
    return deleted


def measure(label: str, population: Population, method: str, run: Callable[[], int], rtt_ms: float) -> Result:
    deleted, seconds, meter, cpu_ms = timed(run, rtt_ms)
    result = Result(
        label=label,
        expired=population.expired,
        others=population.young + population.saved,
        method=method,
        deleted=deleted,
        seconds=seconds,
        queries=meter.requests,
        items_read=meter.items_read,
        query_seconds=meter.seconds,
        cpu_ms_per_delete=cpu_ms / deleted if deleted else 0.0,
    )
    print(
        f"  {method:<10} {deleted:>7} deleted in {seconds:7.1f} s = {result.rate:6.0f}/s; "
        f"{meter.requests} queries read {meter.items_read} items in {meter.seconds:.1f} s",
        flush=True,
    )
    return result


# --- the cases -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    sizes: tuple[int, ...]
    young: int
    saved: int
    sequential_sample: int
    rtt_ms: float
    rtt_size: int


FULL = Plan(
    sizes=(1_000, 10_000, 50_000), young=200_000, saved=10_000, sequential_sample=3_000, rtt_ms=5, rtt_size=2_000
)
QUICK = Plan(sizes=(1_000, 5_000), young=20_000, saved=2_000, sequential_sample=2_000, rtt_ms=5, rtt_size=1_000)


def run_plan(url: str, plan: Plan) -> list[Result]:
    results: list[Result] = []
    next_id = 0

    def fresh(population: Population) -> None:
        nonlocal next_id
        seconds = seed(population, first_id=next_id)
        next_id += population.expired + population.young + population.saved
        print(f"  seeded {population} in {seconds:.1f} s", flush=True)

    # Alone: each size on a reset table, then the sequential baseline on a fresh copy of the same records.
    for size in plan.sizes:
        alone = Population(expired=size)
        print(f"{size} expired, nothing else", flush=True)
        reset(url)
        fresh(alone)
        results.append(measure("alone", alone, "purge", purge_run, 0))
        reset(url)
        fresh(alone)
        sample = min(size, plan.sequential_sample)
        results.append(measure("alone", alone, "sequential", lambda n=sample: sequential_run(n), 0))

    # Beside the others: seeded once (the purge leaves them untouched), each size added in turn.
    others = Population(expired=0, young=plan.young, saved=plan.saved)
    print(f"beside {plan.young} young previews and {plan.saved} saved videos", flush=True)
    reset(url)
    fresh(others)
    for size in plan.sizes:
        crowd = Population(expired=size, young=plan.young, saved=plan.saved)
        print(f"{size} expired beside them", flush=True)
        fresh(Population(expired=size))
        results.append(measure("beside", crowd, "purge", purge_run, 0))

    # With a simulated network round trip on every request, as on DynamoDB.
    if plan.rtt_ms:
        timed_population = Population(expired=plan.rtt_size)
        print(f"{plan.rtt_size} expired, {plan.rtt_ms:g} ms round trip per request", flush=True)
        for method, run in (("purge", purge_run), ("sequential", lambda: sequential_run(None))):
            reset(url)
            fresh(timed_population)
            results.append(measure(f"rtt {plan.rtt_ms:g} ms", timed_population, method, run, plan.rtt_ms))
    return results


def markdown(results: list[Result]) -> str:
    lines = [
        "| case | expired | other records | method | deleted | seconds | deletes/s | speedup | queries "
        "| index items read | query s (moto) | client CPU ms/delete |",
        "|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    baseline = {(r.label, r.expired): r.rate for r in results if r.method == "sequential"}
    for r in results:
        reference = baseline.get((r.label, r.expired))
        speedup = f"{r.rate / reference:.1f}x" if reference and r.method == "purge" else ""
        lines.append(
            f"| {r.label} | {r.expired:,} | {r.others:,} | {r.method} | {r.deleted:,} | {r.seconds:.1f} "
            f"| {r.rate:,.0f} | {speedup} | {r.queries} | {r.items_read:,} | {r.query_seconds:.1f} "
            f"| {r.cpu_ms_per_delete:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK") == "1")
    parser.add_argument("--sizes", help="expired records per case, e.g. 1000,10000")
    parser.add_argument("--young", type=int, help="young previews beside them")
    parser.add_argument("--rtt-ms", type=float, help="simulated round trip per request (0: skip that part)")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.sizes:
        plan = Plan(**{**plan.__dict__, "sizes": tuple(int(size) for size in args.sizes.split(","))})
    if args.young is not None:
        plan = Plan(**{**plan.__dict__, "young": args.young})
    if args.rtt_ms is not None:
        plan = Plan(**{**plan.__dict__, "rtt_ms": args.rtt_ms})

    started = time.perf_counter()
    with moto_server() as url:
        os.environ["DYNAMODB_ENDPOINT_URL"] = url
        results = run_plan(url, plan)
    print()
    print(markdown(results))
    print(f"\n{os.cpu_count()} CPUs; whole benchmark {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
