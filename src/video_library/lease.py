"""Keeping a save's lease alive while its transfer runs.

A lease (``save_lease_id`` / ``save_lease_expires_at`` on the record) is what makes one transfer per video: a
worker takes it with a conditional write, and nobody else may transfer, clean up or delete the video until it
is given back or expires. A short lease that is renewed every few seconds means a killed worker's lease runs out
quickly (the retry can take over), while a live transfer's never does: each renewal also reports the progress
the page shows, and if renewals stop getting through (DynamoDB not answering), the transfer stops itself before
the lease it last confirmed runs out — so two transfers can never overlap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

from video_library import db
from video_library.deadline import run_within
from video_library.errors import DependencyTimeout
from video_library.observability import logger

LEASE_TTL = timedelta(seconds=60)
RENEW_EVERY_S = 3.0
# Clocks of different Lambdas differ a little: a transfer stops this long before its lease's nominal end.
CLOCK_SAFETY_S = 10.0

Progress = Callable[[], tuple[int, int | None]]  # (bytes copied, expected size or None)


class LeaseKeeper:
    """Renews one lease every few seconds on a thread of its own, with the progress; a :class:`TimeLimit`."""

    def __init__(self, video_id: str, lease_id: str, *, progress: Progress, ttl: timedelta | None = None) -> None:
        self.video_id = video_id
        self.lease_id = lease_id
        self._progress = progress
        self._ttl = ttl or LEASE_TTL
        # The lease was claimed just now with this length; renewals push the end forward.
        self._valid_until = time.monotonic() + self._ttl.total_seconds() - CLOCK_SAFETY_S
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{video_id[:8]}", daemon=True)
        self.lost = False  # the lease turned out not to be ours any more
        self.renewals = 0

    def remaining(self) -> float:
        """Seconds the transfer may still run under the lease it has confirmed (0 once lost)."""
        return 0.0 if self.lost else self._valid_until - time.monotonic()

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        # A renewal stuck on DynamoDB is abandoned by run_within; the thread ends at the next wake-up.
        self._thread.join(timeout=RENEW_EVERY_S)

    def _run(self) -> None:
        while not self._stop.wait(RENEW_EVERY_S):
            self.renew()

    def renew(self) -> None:
        started = time.monotonic()
        copied, size = self._progress()
        expires_at = db.utcnow() + self._ttl
        try:
            ours = run_within(
                lambda: db.renew_save_lease(
                    self.video_id, self.lease_id, expires_at, db.utcnow(), bytes_copied=copied, size_bytes=size
                ),
                # Past this the lease we hold is too close to its end to be worth extending from here.
                max(0.5, self.remaining()),
                "renewing the save lease",
            )
        except DependencyTimeout:
            logger.warning("the save lease could not be renewed in time", extra={"video_id": self.video_id})
            return
        except Exception:
            logger.exception("the save lease could not be renewed", extra={"video_id": self.video_id})
            return
        if not ours:
            logger.error("the save lease was lost: the transfer stops", extra={"video_id": self.video_id})
            self.lost = True
            self._stop.set()
            return
        self.renewals += 1
        self._valid_until = started + self._ttl.total_seconds() - CLOCK_SAFETY_S
