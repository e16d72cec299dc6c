"""SnapStart's runtime hook: environments restored from one snapshot do not share what should be their own.

GIVEN the Lambda runtime's hook registry (``snapshot_restore_py``, stood in for here), WHEN an API handler is
imported, THEN it registers the after-restore hook; WHEN two environments are restored from one snapshot and the
hook runs in each, THEN they draw different random numbers, and clients and secrets cached before are made anew.
Without the registry (not on Lambda), importing a handler registers nothing and changes nothing.
"""

from __future__ import annotations

import importlib
import random
import sys
import types
from collections.abc import Callable
from typing import Any

import pytest

from video_library import r2, snapstart
from video_library.secrets import Secret, read_secret
from video_library.settings import get_settings


@pytest.fixture
def hook_registry(monkeypatch: pytest.MonkeyPatch) -> list[Callable[[], Any]]:
    """The runtime's ``snapshot_restore_py``, recording what is registered."""
    registered: list[Callable[[], Any]] = []
    module = types.ModuleType("snapshot_restore_py")
    module.register_after_restore = registered.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", module)
    return registered


@pytest.mark.parametrize(
    "handler", ["functions.library_api.handler", "functions.save_to_library.handler", "functions.piapi_webhook.handler"]
)
def test_importing_an_api_handler_registers_the_hook(
    hook_registry: list[Callable[[], Any]], handler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, handler, raising=False)  # a fresh import, as in a new environment

    importlib.import_module(handler)

    assert hook_registry == [snapstart.after_restore]


def test_without_the_runtimes_registry_nothing_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # an import of it fails, as off Lambda

    assert snapstart.register_hooks() is False


def test_environments_restored_from_one_snapshot_draw_their_own_random_numbers() -> None:
    # GIVEN the random module's state as a snapshot froze it
    random.seed(1234)
    snapshot = random.getstate()

    # WHEN two environments are restored from it, each running the hook
    draws = []
    for _ in range(2):
        random.setstate(snapshot)
        snapstart.after_restore()
        draws.append([random.random() for _ in range(4)])

    # THEN their sequences differ (without the hook both would repeat the snapshot's)
    random.setstate(snapshot)
    frozen = [random.random() for _ in range(4)]
    assert draws[0] != draws[1]
    assert frozen not in draws


def test_clients_and_secrets_cached_before_a_restore_are_made_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("R2_ENDPOINT_URL", "https://account.r2.cloudflarestorage.com")
    monkeypatch.setenv("R2_ACCESS_KEY_ID", "before")
    monkeypatch.setenv("R2_SECRET_ACCESS_KEY", "secret")
    get_settings.cache_clear()
    client_before = r2.r2_client()
    settings_before = get_settings()

    snapstart.after_restore()

    assert r2.r2_client() is not client_before
    assert get_settings() is not settings_before
    key = read_secret(Secret.R2_ACCESS_KEY_ID)
    assert key is not None and key.get_secret_value() == "before"
