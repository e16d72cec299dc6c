"""What every DynamoDB model of the layer shares: the error codes its conditional writes look for, and pointing
a model at the table and endpoint the settings name."""

from __future__ import annotations

from pynamodb.models import Model

from video_library.settings import Settings

CONDITION_FAILED = "ConditionalCheckFailedException"
# What DynamoDB answers when it throttles a request (capacity, partition or account limits).
THROTTLING_ERRORS = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"})


def point_at(model: type[Model], table_name: str, settings: Settings) -> None:
    """Point ``model`` at ``table_name`` in the configured region and endpoint; its next call makes a new
    connection there."""
    model.Meta.table_name = table_name
    model.Meta.region = settings.aws_region
    model.Meta.host = settings.dynamodb_endpoint_url
    model._connection = None
