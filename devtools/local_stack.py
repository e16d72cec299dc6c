"""``make dev``: the whole service on this machine, no AWS account needed, until Ctrl-C.

- moto in server mode stands in for DynamoDB, for R2 and for SQS (the table, the bucket and the save queue with
  its dead-letter queue are created at start);
- a fake PiAPI speaks PiAPI's task API and calls the webhook like PiAPI does;
- a local API Gateway serves every route of serverless.yml through the real handlers, with local JWT
  sign-in standing in for the authorizer (``make token USER=alice``), and ends requests at 30 s as AWS does;
- the save worker runs as Lambda runs it: ``SAVE_WORKER_CONCURRENCY`` (4) instances, each its own process killed
  at the function's timeout, fed by a poller that does what the SQS event source mapping does (batches, partial
  failures). ``LAMBDA_CPU_SHARE=1`` also gives each instance the CPU share and memory of its Lambda size (root);
- the purge and the sweep run on a schedule, and on demand through ``POST /_dev/purge`` and ``/_dev/sweep``.

Everything listens on 127.0.0.1: the gateway on PORT (8000), moto on PORT+1, the fake PiAPI on PORT+2
(``LOCAL_AWS_PORT`` / ``FAKE_PIAPI_PORT`` change those).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from devtools.api_docs import docs_routes
from devtools.eventbridge import scheduled_event
from devtools.fake_piapi import FakePiapi
from devtools.gateway import (
    Answer,
    Gateway,
    GatewayServer,
    cors_from_serverless,
    function_config,
    routes_from_serverless,
)
from devtools.lambda_context import LocalLambdaContext
from devtools.lambda_process import FunctionInstance
from devtools.local_aws import LocalAws
from devtools.local_jwt import DEFAULT_SECRET, mint
from devtools.make_events import SAMPLE_WEBHOOK_SECRET
from devtools.queue_poller import QueuePoller
from devtools.readable_logs import ReadableFormatter
from devtools.static_files import StaticFiles

DEV_BUCKET = "video-library"
DEV_TABLE = "videos"
DEV_PIAPI_KEY = "dev-piapi-key"
# Used when PIAPI_WEBHOOK_SECRET is not set: the secret the sample events of events/ carry, so that they are let
# in (make invoke against `make dev`).
DEV_WEBHOOK_SECRET = SAMPLE_WEBHOOK_SECRET
DEV_SAVE_QUEUE = "video-library-dev-saves"
SAVE_MAX_ATTEMPTS = 5  # serverless.yml's saveMaxAttempts


def local_environment(
    *,
    aws_url: str,
    piapi_url: str,
    gateway_url: str,
    save_queue_url: str,
    host: str = "127.0.0.1",
    readable_logs: bool = True,
    webhook_secret: str = DEV_WEBHOOK_SECRET,
) -> dict[str, str]:
    """The environment the functions run with against the local stack (its moto server, fake PiAPI, gateway)."""
    return {
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_REGION": "us-east-1",
        "VIDEOS_TABLE": DEV_TABLE,
        "DYNAMODB_ENDPOINT_URL": aws_url,
        "R2_BUCKET": DEV_BUCKET,
        "R2_ENDPOINT_URL": aws_url,
        "R2_ACCESS_KEY_ID": "local",
        "R2_SECRET_ACCESS_KEY": "local",
        "PIAPI_BASE_URL": piapi_url,
        "PIAPI_API_KEY": DEV_PIAPI_KEY,
        "PIAPI_WEBHOOK_SECRET": webhook_secret,
        "WEBHOOK_PUBLIC_URL": f"{gateway_url}/webhooks/piapi",
        "SAVE_QUEUE_URL": save_queue_url,
        "SQS_ENDPOINT_URL": aws_url,
        "SAVE_MAX_ATTEMPTS": str(SAVE_MAX_ATTEMPTS),
        # The fake PiAPI serves its files over plain http on loopback: allowed here, and only here.
        "ALLOWED_SOURCE_HOSTS": host,
        "DEV_INSECURE_SOURCE_HOSTS": piapi_url.removeprefix("http://"),  # exactly its host:port
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        # The worker's instances (other processes) print one readable line per log record too.
        "LOCAL_READABLE_LOGS": "1" if readable_logs else "",
    }


@dataclass
class StackConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    aws_port: int | None = None  # default: port + 1
    piapi_port: int | None = None  # default: port + 2
    fake_piapi_delay_s: float = 2.0
    purge_interval_s: float = 3600.0
    sweep_interval_s: float = 900.0
    jwt_secret: str = DEFAULT_SECRET
    webhook_secret: str = DEV_WEBHOOK_SECRET
    readable_logs: bool = True
    save_worker_concurrency: int = 4
    lambda_cpu_share: bool = False
    # serverless.yml's value; tests shorten it to see a killed worker's message come back.
    save_queue_visibility_s: int = 5400

    @classmethod
    def from_environment(cls) -> StackConfig:
        env = os.environ
        port = int(env.get("PORT", "8000"))
        return cls(
            port=port,
            aws_port=int(env["LOCAL_AWS_PORT"]) if "LOCAL_AWS_PORT" in env else port + 1,
            piapi_port=int(env["FAKE_PIAPI_PORT"]) if "FAKE_PIAPI_PORT" in env else port + 2,
            fake_piapi_delay_s=float(env.get("FAKE_PIAPI_DELAY_S", "2")),
            purge_interval_s=float(env.get("PURGE_INTERVAL_S", "3600")),
            sweep_interval_s=float(env.get("SWEEP_INTERVAL_S", "900")),
            jwt_secret=env.get("LOCAL_JWT_SECRET", DEFAULT_SECRET),
            webhook_secret=env.get("PIAPI_WEBHOOK_SECRET") or DEV_WEBHOOK_SECRET,
            save_worker_concurrency=int(env.get("SAVE_WORKER_CONCURRENCY", "4")),
            lambda_cpu_share=env.get("LAMBDA_CPU_SHARE", "") in ("1", "true", "yes"),
            save_queue_visibility_s=int(env.get("SAVE_QUEUE_VISIBILITY_S", "5400")),
        )


@dataclass
class LocalStack:
    config: StackConfig
    aws: LocalAws | None = None
    piapi: FakePiapi | None = None
    gateway: Gateway | None = None
    server: GatewayServer | None = None
    save_queue_url: str | None = None
    save_dead_letter_url: str | None = None
    poller: QueuePoller | None = None
    workers: list[FunctionInstance] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"

    def environment(self) -> dict[str, str]:
        assert self.aws is not None and self.piapi is not None
        return local_environment(
            aws_url=self.aws.url,
            piapi_url=self.piapi.base_url,
            gateway_url=self.url,
            save_queue_url=self.save_queue_url or "",
            host=self.config.host,
            readable_logs=self.config.readable_logs,
            webhook_secret=self.config.webhook_secret,
        )

    def start(self) -> LocalStack:
        config = self.config
        self.aws = LocalAws(config.host, config.aws_port or config.port + 1).start()
        self.piapi = FakePiapi(
            DEV_PIAPI_KEY, config.host, config.piapi_port or config.port + 2, delay_s=config.fake_piapi_delay_s
        ).start()
        self.save_queue_url, self.save_dead_letter_url = self.aws.create_save_queues(
            DEV_SAVE_QUEUE, max_receives=SAVE_MAX_ATTEMPTS, visibility_s=config.save_queue_visibility_s
        )
        os.environ.update(self.environment())
        from video_library import db
        from video_library.observability import logger
        from video_library.settings import get_settings

        get_settings.cache_clear()
        if config.readable_logs:
            logger.registered_handler.setFormatter(ReadableFormatter())
        db.create_tables()
        self.aws.client("s3").create_bucket(Bucket=DEV_BUCKET)
        self.gateway = Gateway(routes_from_serverless(), jwt_secret=config.jwt_secret, cors=cors_from_serverless())
        self.gateway.dev_routes.update(
            {
                ("GET", "/healthz"): lambda _: Answer(200, {"content-type": "application/json"}, b'{"ok": true}'),
                ("POST", "/_dev/purge"): self._purge_route,
                ("POST", "/_dev/sweep"): self._sweep_route,
                ("POST", "/_dev/token"): self._token_route,
            }
        )
        self.gateway.dev_routes.update(docs_routes())  # openapi.json, and Swagger UI at /docs
        self.gateway.fallback = StaticFiles()  # the library page, web/, at /
        self.server = GatewayServer(self.gateway, config.host, config.port, access_log=self._access_log)
        self._spawn(self.server.serve_forever, "gateway")
        self._spawn(self._purge_schedule, "purge-schedule")
        self._spawn(self._sweep_schedule, "sweep-schedule")
        self._start_save_worker()
        return self

    def _start_save_worker(self) -> None:
        """The worker as Lambda runs it: instances of its own process, fed by the queue's event source mapping."""
        assert self.aws is not None and self.save_queue_url is not None
        worker = function_config("saveWorker")
        self.workers = [
            FunctionInstance(
                worker.handler,
                function_name="video-library-dev-saveWorker",
                timeout_s=worker.timeout_s,
                memory_mb=worker.memory_mb,
                confine=self.config.lambda_cpu_share,
            )
            for _ in range(self.config.save_worker_concurrency)
        ]
        sqs_event = next(event["sqs"] for event in worker.events if isinstance(event, dict) and "sqs" in event)
        self.poller = QueuePoller(
            self.aws.client("sqs"),
            self.save_queue_url,
            [instance.invoke for instance in self.workers],
            batch_size=int(sqs_event.get("batchSize", 10)),
            on_error=lambda exc: print(f"save worker: {exc}", flush=True),
        ).start()

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        if self.poller is not None:
            self.poller.stop()
        for instance in self.workers:
            instance.close()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.piapi is not None:
            self.piapi.stop()
        if self.aws is not None:
            self.aws.stop()

    def _access_log(self, line: str) -> None:
        if "/healthz" not in line:
            print(f"{datetime.now().strftime('%H:%M:%S')} HTTP    {line}", flush=True)

    # -- the purge: scheduled, and on demand ------------------------------------------------------------

    def run_purge(self, when: datetime | None = None, *, dry_run: bool = False) -> dict[str, Any]:
        """The real purge handler with an EventBridge-shaped event, as the schedule would call it."""
        from functions.purge.handler import handler

        detail = {"dry_run": True} if dry_run else {}
        event = scheduled_event(when or datetime.now(UTC), detail=detail)
        result: dict[str, Any] = handler(event, LocalLambdaContext(function_name="video-library-dev-purge"))
        return result

    def _purge_schedule(self) -> None:
        while not self._stop.wait(self.config.purge_interval_s):
            try:
                print(f"scheduled purge: {json.dumps(self.run_purge())}", flush=True)
            except Exception as exc:
                print(f"scheduled purge failed: {exc!r}", flush=True)

    def run_sweep(self, when: datetime | None = None) -> dict[str, Any]:
        """The real sweep handler with an EventBridge-shaped event."""
        from functions.sweep.handler import handler

        event = scheduled_event(when or datetime.now(UTC), rule_name="video-library-dev-SweepEventsRuleSchedule1")
        result: dict[str, Any] = handler(
            event, LocalLambdaContext(function_name="video-library-dev-sweep", timeout_s=300)
        )
        return result

    def _sweep_schedule(self) -> None:
        while not self._stop.wait(self.config.sweep_interval_s):
            try:
                print(f"scheduled sweep: {json.dumps(self.run_sweep())}", flush=True)
            except Exception as exc:
                print(f"scheduled sweep failed: {exc!r}", flush=True)

    def _sweep_route(self, request: dict[str, Any]) -> Answer:
        try:
            summary = self.run_sweep()
        except Exception as exc:
            return Answer(500, {"content-type": "application/json"}, json.dumps({"error": str(exc)}).encode())
        return Answer(200, {"content-type": "application/json"}, json.dumps(summary).encode())

    def _purge_route(self, request: dict[str, Any]) -> Answer:
        try:
            body = json.loads(request["body"] or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            when = datetime.fromisoformat(body["time"]) if body.get("time") else None
            if when is not None and when.tzinfo is None:
                raise ValueError("time needs a UTC offset, e.g. 2026-12-31T00:00:00Z")
            dry_run = body.get("dry_run", False)
            if not isinstance(dry_run, bool):
                raise ValueError("dry_run must be true or false")
        except (ValueError, TypeError) as exc:
            return Answer(400, {"content-type": "application/json"}, json.dumps({"error": str(exc)}).encode())
        try:
            summary = self.run_purge(when, dry_run=dry_run)
        except Exception as exc:
            return Answer(400, {"content-type": "application/json"}, json.dumps({"error": str(exc)}).encode())
        return Answer(200, {"content-type": "application/json"}, json.dumps(summary).encode())

    def _token_route(self, request: dict[str, Any]) -> Answer:
        """Local sign-in for the library page: ``{"user": "alice"}`` -> ``{"token": <JWT for sub=alice>}``."""
        try:
            body = json.loads(request["body"] or b"{}")
        except ValueError:
            body = None
        user = body.get("user") if isinstance(body, dict) else None
        if not isinstance(user, str) or not 1 <= len(user.strip()) <= 64:
            problem = {"error": {"code": "invalid_user", "message": "user must be a name of 1 to 64 characters"}}
            return Answer(400, {"content-type": "application/json"}, json.dumps(problem).encode())
        token = mint(user.strip(), secret=self.config.jwt_secret)
        return Answer(200, {"content-type": "application/json"}, json.dumps({"token": token}).encode())


def main() -> None:
    config = StackConfig.from_environment()
    stack = LocalStack(config).start()
    assert stack.aws is not None and stack.piapi is not None and stack.gateway is not None
    print(f"""
video-library is running on {stack.url}   (Ctrl-C stops everything)

  routes (from serverless.yml):""")
    for route in stack.gateway.routes:
        print(f"    {route.method:<5} {route.path:<36} -> {route.function}{'  [JWT]' if route.authorized else ''}")
    confined = ", each with its Lambda's CPU share and memory" if config.lambda_cpu_share else ""
    print(
        f"""    GET   /healthz
    GET   /openapi.json    the API's spec (the committed openapi.json; `make openapi` regenerates it)
    GET   /docs            that spec as Swagger UI (after `npm ci`; without Node, a list of the routes)
    POST  /_dev/purge      {{"time": "<ISO 8601>", "dry_run": false}}            run the purge now
    POST  /_dev/sweep                                                            run the sweep now
    POST  /_dev/token      {{"user": "alice"}}                                     a local sign-in token
    GET   /                the library page (web/)

  library page: {stack.url}/
  sign in:    TOKEN=$(make -s token USER=alice)   then   -H "Authorization: Bearer $TOKEN"
  DynamoDB + R2 (moto): {stack.aws.url}    fake PiAPI: {stack.piapi.base_url}
  save queue (SQS, moto): {stack.save_queue_url}
  save worker: {config.save_worker_concurrency} instances (SAVE_WORKER_CONCURRENCY){confined}
  purge every {config.purge_interval_s:g} s (PURGE_INTERVAL_S), sweep every {config.sweep_interval_s:g} s
  fake PiAPI answers after {config.fake_piapi_delay_s:g} s
""",
        flush=True,
    )
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    stopped.wait()
    print("stopping...", flush=True)
    stack.stop()
    print("stopped", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
