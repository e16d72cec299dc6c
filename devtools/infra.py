"""Write ``infra/videos-table.json``, ``infra/usage-table.json`` and ``infra/quotas-table.json``, the CloudFormation
definitions of the tables, from their models.

The tables are described by the PynamoDB models (``video_library.db``, ``video_library.usage``,
``video_library.quota``); this renders what ``create_tables()`` builds (keys, attribute types, indexes,
projections, time to live) as the CloudFormation resources serverless.yml deploys, so the deployed tables and the
ones tests run against cannot drift apart (a test compares them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

ROOT = Path(__file__).resolve().parent.parent
TABLE_FILE = ROOT / "infra" / "videos-table.json"
QUOTAS_TABLE_FILE = ROOT / "infra" / "quotas-table.json"
USAGE_TABLE_FILE = ROOT / "infra" / "usage-table.json"


def _described(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """DescribeTable and DescribeTimeToLive of one table as ``create_tables()`` makes it."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    from video_library import db
    from video_library.settings import Settings

    settings = Settings(
        videos_table="videos",
        usage_table="usage",
        quotas_table="quotas",
        aws_region="us-east-1",
        dynamodb_endpoint_url=None,
    )
    with mock_aws():
        db.create_tables(settings)
        client = boto3.client("dynamodb", region_name=settings.aws_region)
        table: dict[str, Any] = client.describe_table(TableName=name)["Table"]
        ttl: dict[str, Any] = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    return table, ttl


def _described_table(which: str = "videos") -> dict[str, Any]:
    return _described(which)[0]


def table_resource(which: str = "videos", name: str = "${self:custom.videosTable}") -> dict[str, Any]:
    table = _described_table(which)
    indexes = [
        {
            "IndexName": index["IndexName"],
            "KeySchema": index["KeySchema"],
            "Projection": {k: v for k, v in index["Projection"].items() if k in ("ProjectionType", "NonKeyAttributes")},
        }
        for index in sorted(table.get("GlobalSecondaryIndexes", []), key=lambda i: i["IndexName"])
    ]
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "TableName": name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
            "KeySchema": table["KeySchema"],
            "GlobalSecondaryIndexes": indexes,
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True},
            "DeletionProtectionEnabled": "${self:custom.tableDeletionProtection}",
        },
    }


def quotas_table_resource() -> dict[str, Any]:
    """The quotas table: counters that expire by themselves, nothing worth a backup or a retained copy."""
    table, ttl = _described("quotas")
    if ttl.get("TimeToLiveStatus") != "ENABLED":
        raise RuntimeError("the quotas table has no time to live: its counters would pile up")
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Delete",
        "UpdateReplacePolicy": "Delete",
        "Properties": {
            "TableName": "${self:custom.quotasTable}",
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
            "KeySchema": table["KeySchema"],
            "TimeToLiveSpecification": {"AttributeName": ttl["AttributeName"], "Enabled": True},
            "SSESpecification": {"SSEEnabled": True},
        },
    }


def render() -> str:
    return json.dumps(table_resource(), indent=2) + "\n"


def render_usage() -> str:
    return json.dumps(table_resource("usage", "${self:custom.usageTable}"), indent=2) + "\n"


def render_quotas() -> str:
    return json.dumps(quotas_table_resource(), indent=2) + "\n"


if __name__ == "__main__":
    for path, text in (
        (TABLE_FILE, render()),
        (USAGE_TABLE_FILE, render_usage()),
        (QUOTAS_TABLE_FILE, render_quotas()),
    ):
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
