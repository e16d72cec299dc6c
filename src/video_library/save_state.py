"""Where a video's Save to Library stands: none → queued → saving → saved, or failed (and queued again on retry).

The record carries the state, so the page and every API view can follow a save that runs in the background:

- ``queued``: the save was asked for (or a transient failure will be retried) and waits for the worker;
- ``saving``: a worker holds the save's lease and is copying; ``bytes_copied`` of ``size_bytes`` say how far;
- ``saved``: the record points at R2 (``saved_to_r2``);
- ``failed``: the save stopped for good, ``save_error_code`` / ``save_error`` say why; a new save may be asked.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

# A save queued or running that has shown no sign of life for this long (no live lease, no progress) lost its
# message or its worker: asking again, or the sweep, sends a new message. Longer than any wait between attempts.
STALLED_AFTER = timedelta(minutes=20)


class SaveState(StrEnum):
    NONE = "none"
    QUEUED = "queued"
    SAVING = "saving"
    SAVED = "saved"
    FAILED = "failed"

    @property
    def in_progress(self) -> bool:
        return self in (SaveState.QUEUED, SaveState.SAVING)

    @classmethod
    def of(cls, raw: str | None, *, saved: bool) -> SaveState:
        """The state a record's fields describe (records written before save states existed have none)."""
        if saved:
            return cls.SAVED
        try:
            return cls(raw) if raw else cls.NONE
        except ValueError:
            return cls.NONE
