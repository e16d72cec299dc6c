"""Write ``infra/videos-table.json`` and ``infra/usage-table.json``, the CloudFormation definitions of the video
table and the usage-counter table, from their models.

The tables are described by the PynamoDB models (``video_library.db``, ``video_library.usage``); this renders what
``create_tables()`` builds (keys, attribute types, indexes, projections) as the CloudFormation resources
serverless.yml deploys, so the deployed tables and the ones tests run against cannot drift apart (a test compares
them).
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
USAGE_TABLE_FILE = ROOT / "infra" / "usage-table.json"
# The table each file defines, and how serverless.yml names it.
TABLES = {
    TABLE_FILE: ("videos", "${self:custom.videosTable}"),
    USAGE_TABLE_FILE: ("usage", "${self:custom.usageTable}"),
}


def _described_table(which: str) -> dict[str, Any]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    from video_library import db
    from video_library.settings import Settings

    settings = Settings(videos_table="videos", usage_table="usage", aws_region="us-east-1", dynamodb_endpoint_url=None)
    with mock_aws():
        db.create_tables(settings)
        client = boto3.client("dynamodb", region_name=settings.aws_region)
        table: dict[str, Any] = client.describe_table(TableName=which)["Table"]
    return table


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
            **({"GlobalSecondaryIndexes": indexes} if indexes else {}),
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True},
            "DeletionProtectionEnabled": "${self:custom.tableDeletionProtection}",
        },
    }


def render(path: Path = TABLE_FILE) -> str:
    return json.dumps(table_resource(*TABLES[path]), indent=2) + "\n"


if __name__ == "__main__":
    for path in TABLES:
        path.write_text(render(path))
        print(f"wrote {path.relative_to(ROOT)}")
