"""The deployed table definitions are the ones the code builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.infra import TABLES, render


@pytest.mark.parametrize("path", list(TABLES), ids=[path.name for path in TABLES])
def test_committed_table_definition_matches_the_model(path: Path) -> None:
    assert path.read_text() == render(path), f"{path} is stale: run `make infra`"
