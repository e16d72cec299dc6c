"""``make invoke FN=<function> EVENT=events/<file>.json``: run one handler of serverless.yml on a sample event.

The handler runs in this process, as Lambda would call it (the event, a Lambda context with the function's name,
timeout and memory), against the local stack, and its answer is printed as JSON:

- if ``make dev`` is running (its gateway answers ``/healthz`` on ``PORT``, 8000), its stack is used — its table,
  bucket, save queue and fake PiAPI (``LOCAL_AWS_PORT`` / ``FAKE_PIAPI_PORT`` as ``make dev`` reads them) — so what
  the handler does shows there;
- otherwise an embedded stack (moto, the fake PiAPI without webhook deliveries, the table, bucket and queues) is
  started for the call and stopped after it.

``osls invoke local`` cannot do this offline: it resolves every parameter and asks AWS for the stack first.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from devtools.fake_piapi import FakePiapi
from devtools.gateway import function_config, read_serverless
from devtools.lambda_context import LocalLambdaContext
from devtools.local_aws import LocalAws
from devtools.local_stack import (
    DEV_BUCKET,
    DEV_PIAPI_KEY,
    DEV_SAVE_QUEUE,
    SAVE_MAX_ATTEMPTS,
    StackConfig,
    local_environment,
)

ROOT = Path(__file__).resolve().parent.parent
# Where the embedded stack's functions think the API is: nothing listens there (the fake PiAPI delivers no webhooks).
NO_GATEWAY = "http://127.0.0.1:9"


class InvokeError(Exception):
    """The function or the event cannot be used; the message says what to pass instead."""


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """This process's environment with ``values`` set (and the settings re-read), restored afterwards."""
    from video_library.settings import get_settings

    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()


def running_stack_environment(config: StackConfig) -> dict[str, str] | None:
    """The environment of the ``make dev`` stack answering on ``config``'s ports; None if none is running."""
    gateway = f"http://{config.host}:{config.port}"
    try:
        if httpx.get(f"{gateway}/healthz", timeout=2).status_code != 200:
            return None
    except httpx.HTTPError:
        return None
    aws_url = f"http://{config.host}:{config.aws_port or config.port + 1}"
    piapi_url = f"http://{config.host}:{config.piapi_port or config.port + 2}"
    import boto3

    sqs = boto3.client(
        "sqs",
        endpoint_url=aws_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 (moto accepts any key)
    )
    queue_url = sqs.get_queue_url(QueueName=DEV_SAVE_QUEUE)["QueueUrl"]
    # The running stack's webhook secret is the one `make dev` was given (PIAPI_WEBHOOK_SECRET, read the same way):
    # a video generated here is delivered back to that stack with it.
    return local_environment(
        aws_url=aws_url,
        piapi_url=piapi_url,
        gateway_url=gateway,
        save_queue_url=queue_url,
        host=config.host,
        webhook_secret=config.webhook_secret,
    )


@contextmanager
def embedded_stack() -> Iterator[dict[str, str]]:
    """A stack of its own for the call: moto with the table, bucket and queues, and the fake PiAPI."""
    with LocalAws() as aws:
        piapi = FakePiapi(DEV_PIAPI_KEY).start()
        piapi.webhooks_enabled = False  # there is no gateway to deliver to
        try:
            queue_url, _ = aws.create_save_queues(DEV_SAVE_QUEUE, max_receives=SAVE_MAX_ATTEMPTS)
            aws.client("s3").create_bucket(Bucket=DEV_BUCKET)
            values = local_environment(
                aws_url=aws.url, piapi_url=piapi.base_url, gateway_url=NO_GATEWAY, save_queue_url=queue_url
            )
            with environment(values):
                from video_library import db

                db.create_tables()
            yield values
        finally:
            piapi.stop()


def load_event(path: Path) -> dict[str, Any]:
    try:
        event = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvokeError(f"{path} is not a readable JSON event ({exc})") from None
    if not isinstance(event, dict):
        raise InvokeError(f"{path} is not a JSON object, as every Lambda event is")
    return event


def check_function(function: str) -> None:
    functions = read_serverless().get("functions") or {}
    if function not in functions:
        raise InvokeError(f"no function {function!r} in serverless.yml; one of: {', '.join(functions)}")


def invoke(function: str, event: dict[str, Any], values: dict[str, str]) -> Any:
    """Call ``function``'s handler with ``event`` in an environment of ``values``; its answer."""
    check_function(function)
    config = function_config(function)
    module_path, _, attribute = config.handler.rpartition(".")
    with environment(values):
        handler = getattr(importlib.import_module(module_path.replace("/", ".")), attribute)
        context = LocalLambdaContext(
            function_name=f"video-library-dev-{function}",
            timeout_s=config.timeout_s,
            memory_limit_in_mb=config.memory_mb,
        )
        return handler(event, context)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("function", help="a function of serverless.yml, e.g. purge, saveWorker, piapiWebhook")
    parser.add_argument("event", type=Path, help="the event's JSON file, e.g. events/purge.json")
    args = parser.parse_args(argv)
    from devtools.readable_logs import use_readable_logs
    from video_library.observability import logger

    # The handler's log lines go to stderr, readable; stdout carries the answer alone (for jq and scripts).
    use_readable_logs()
    logger.registered_handler.setStream(sys.stderr)
    try:
        check_function(args.function)
        event = load_event(args.event)
        running = running_stack_environment(StackConfig.from_environment())
        if running is not None:
            print(f"invoke: {args.function} against the running stack (make dev)", file=sys.stderr, flush=True)
            answer = invoke(args.function, event, running)
        else:
            print(f"invoke: {args.function} against an embedded stack", file=sys.stderr, flush=True)
            with embedded_stack() as values:
                answer = invoke(args.function, event, values)
    except InvokeError as exc:
        print(f"invoke: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(answer, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
