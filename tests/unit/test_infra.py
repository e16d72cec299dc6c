"""The deployed table definition is the one the code builds."""

from __future__ import annotations

from devtools.infra import TABLE_FILE, render


def test_committed_table_definition_matches_the_model() -> None:
    assert TABLE_FILE.read_text() == render(), "infra/videos-table.json is stale: run `make infra`"
