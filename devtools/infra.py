"""Write ``infra/videos-table.json``, the CloudFormation definition of the video table, from the model.

The table is described by the PynamoDB model (``video_library.db``); this renders what ``create_tables()``
builds (keys, attribute types, indexes, projections) as the CloudFormation resource serverless.yml deploys,
so the deployed table and the one tests run against cannot drift apart (a test compares them).
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


def _described_table() -> dict[str, Any]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    from video_library import db
    from video_library.settings import Settings

    settings = Settings(videos_table="videos", aws_region="us-east-1", dynamodb_endpoint_url=None)
    with mock_aws():
        db.create_tables(settings)
        client = boto3.client("dynamodb", region_name=settings.aws_region)
        table: dict[str, Any] = client.describe_table(TableName=settings.videos_table)["Table"]
    return table


def table_resource() -> dict[str, Any]:
    table = _described_table()
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
            "TableName": "${self:custom.videosTable}",
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
            "KeySchema": table["KeySchema"],
            "GlobalSecondaryIndexes": indexes,
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True},
            "DeletionProtectionEnabled": "${self:custom.tableDeletionProtection}",
        },
    }


def render() -> str:
    return json.dumps(table_resource(), indent=2) + "\n"


if __name__ == "__main__":
    TABLE_FILE.write_text(render())
    print(f"wrote {TABLE_FILE.relative_to(ROOT)}")
