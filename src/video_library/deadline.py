"""Time limits that hold: a Lambda invocation is killed at its timeout, so every wait inside one is bounded by
the time it has left, and a call that stops answering is abandoned rather than waited for."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from video_library.errors import DependencyTimeout

T = TypeVar("T")


class TimeLimit(Protocol):
    """Anything that says how many seconds are left (a :class:`Deadline`, or one that moves with a lease)."""

    def remaining(self) -> float: ...


@dataclass(frozen=True)
class Deadline:
    """A moment on the monotonic clock by which something must be over."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def earlier(self, other: Deadline) -> Deadline:
        return self if self.at <= other.at else other

    def shortened(self, seconds: float) -> Deadline:
        return Deadline(self.at - seconds)


def run_within(call: Callable[[], T], seconds: float, what: str) -> T:
    """Run a blocking call (DynamoDB, SQS) on a thread of its own and wait for it at most ``seconds``.

    botocore's own timeouts and retries can add up to more than an invocation has left (PynamoDB: 3 s connect +
    10 s read, five attempts). Past ``seconds`` the call is abandoned — it finishes or fails on its own, later —
    and :class:`DependencyTimeout` is raised. Only conditional or idempotent writes are made this way, so one that
    lands late cannot do harm: it is either still right or refused by its condition.
    """
    if seconds <= 0:
        raise DependencyTimeout(f"no time left for {what}")
    outcome: list[T] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def attempt() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # handed to the waiting thread, which raises it
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=attempt, name=f"within-{what}", daemon=True).start()
    if not done.wait(seconds):
        raise DependencyTimeout(f"{what} did not answer within {seconds:.1f} s")
    if failure:
        raise failure[0]
    return outcome[0]
