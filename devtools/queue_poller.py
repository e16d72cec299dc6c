"""A local stand-in for Lambda's SQS event source mapping: long-polls a queue and invokes a function with
SQS-shaped events, several invocations at once, honouring partial batch failures.

As on AWS: a batch is up to ``batch_size`` messages; messages of a successful invocation are deleted except
those reported in ``batchItemFailures``; a failed or killed invocation deletes nothing (its messages come back
after their visibility timeout, and the queue's redrive policy moves a message received too often to its
dead-letter queue). ``concurrency`` pollers run at once, like the mapping's maximum concurrency.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from devtools.sqs_events import queue_arn, sqs_event

Invoke = Callable[[dict[str, Any]], Any]


class QueuePoller:
    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        invokers: list[Invoke],
        *,
        batch_size: int = 1,
        wait_s: int = 1,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._arn = queue_arn(queue_url)
        self._invokers = invokers
        self._batch_size = batch_size
        self._wait_s = wait_s
        self._on_error = on_error
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.invocations = 0
        self.failed_invocations = 0
        self._lock = threading.Lock()

    def start(self) -> QueuePoller:
        for number, invoke in enumerate(self._invokers):
            thread = threading.Thread(target=self._poll, args=(invoke,), name=f"sqs-poller-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self._wait_s + 5)

    def _poll(self, invoke: Invoke) -> None:
        while not self._stop.is_set():
            try:
                answer = self._sqs.receive_message(
                    QueueUrl=self._queue_url,
                    MaxNumberOfMessages=self._batch_size,
                    WaitTimeSeconds=self._wait_s,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
            except Exception as exc:
                if self._on_error is not None and not self._stop.is_set():
                    self._on_error(exc)
                self._stop.wait(1)
                continue
            messages = answer.get("Messages", [])
            if messages:
                self.deliver(invoke, messages)

    def deliver(self, invoke: Invoke, messages: list[dict[str, Any]]) -> None:
        """One invocation with ``messages``; then delete what succeeded."""
        with self._lock:
            self.invocations += 1
        try:
            result = invoke(sqs_event(messages, self._arn))
        except Exception as exc:
            with self._lock:
                self.failed_invocations += 1
            if self._on_error is not None:
                self._on_error(exc)
            return
        failed = {item["itemIdentifier"] for item in (result or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
