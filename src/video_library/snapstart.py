"""Lambda SnapStart for the API functions (the stage parameter ``apiSnapStart``; off by default).

With SnapStart, Lambda initialises a published version once (imports, module-level code), snapshots its memory
and starts every new execution environment of that version from the snapshot. Whatever initialisation made is
then shared by all of them, so nothing unique may be made before the snapshot. What that means here:

- Importing a handler makes no id, no secret, no network client, no connection: settings, clients (DynamoDB,
  R2, SQS, PiAPI, SSM) and secrets are all made on first use, in the first invocation, after the restore.
  (``uuid.uuid4`` and ``secrets`` draw from the OS at each call; nothing is drawn at import.)
- Python's ``random`` module was seeded when the interpreter started, before the snapshot: every restored
  environment would draw the same numbers (the backoff jitter of the purge, of the save worker and of botocore's
  retries would move in lockstep). It is reseeded from the OS after each restore.
- Anything cached anyway (if a later change makes something at import) is dropped after each restore, so that it
  is made again, fresh: the settings, every client, the secrets' cache.

The hook is registered through ``snapshot_restore_py``, which the Lambda Python runtime provides. Without it (not
on Lambda) registering is a no-op; with SnapStart off the hook is never called: nothing changes then.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any


def after_restore() -> None:
    """Make this execution environment its own after a restore from a shared snapshot."""
    from video_library import db, piapi_client, quota, r2, save_queue
    from video_library.secrets import forget_secrets
    from video_library.settings import get_settings

    random.seed()  # from os.urandom: each environment its own sequence
    forget_secrets()
    for cached in (r2._client_for, r2._transfer_client_for, piapi_client._client_for, save_queue._client_for):
        cached.cache_clear()
    get_settings.cache_clear()
    db.VideoRecord._connection = None
    quota.QuotaCounter._connection = None


def register_hooks(register: Callable[[Callable[[], Any]], Any] | None = None) -> bool:
    """Register :func:`after_restore` with the runtime's SnapStart hooks; False where there are none."""
    if register is None:
        try:
            from snapshot_restore_py import register_after_restore  # type: ignore[import-not-found]
        except ImportError:  # not the Lambda runtime: nothing is ever restored here
            return False
        register = register_after_restore
    register(after_restore)
    return True
