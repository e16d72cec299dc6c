"""The deployed table definitions are the ones the code builds."""

from __future__ import annotations

from devtools.infra import QUOTAS_TABLE_FILE, TABLE_FILE, USAGE_TABLE_FILE, render, render_quotas, render_usage
from devtools.monitoring import MONITORING_FILE
from devtools.monitoring import render as render_monitoring


def test_committed_table_definition_matches_the_model() -> None:
    assert TABLE_FILE.read_text() == render(), "infra/videos-table.json is stale: run `make infra`"


def test_committed_usage_table_definition_matches_the_model() -> None:
    assert USAGE_TABLE_FILE.read_text() == render_usage(), "infra/usage-table.json is stale: run `make infra`"


def test_committed_quotas_table_definition_matches_the_model() -> None:
    assert QUOTAS_TABLE_FILE.read_text() == render_quotas(), "infra/quotas-table.json is stale: run `make infra`"


def test_committed_monitoring_matches_serverless_yml() -> None:
    assert MONITORING_FILE.read_text() == render_monitoring(), "infra/monitoring.json is stale: run `make infra`"
