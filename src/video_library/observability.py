"""One Logger, Tracer and Metrics for the whole service; every handler and module imports these.

Service name and metrics namespace have defaults here so that tests and the local stack need no
environment; in AWS, ``POWERTOOLS_SERVICE_NAME`` / ``POWERTOOLS_METRICS_NAMESPACE`` may override them.
"""

from __future__ import annotations

import os
import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "video-library")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "VideoLibrary")

# What the tracer instruments in every function: botocore, which carries DynamoDB (through PynamoDB) and R2.
# Not Powertools' default, every module X-Ray supports: its PynamoDB patch records each DynamoDB call a second
# time, and the others (httpx, requests, sqlite3, ...) would be imported by functions that never use them,
# at every cold start. The save worker, the one function that downloads, patches http.client itself
# (trace_downloads).
TRACED_MODULES = ("botocore",)

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE, patch_modules=TRACED_MODULES)
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)

# Many answers (a 404, a duplicate delivery) rightly emit no metric; Powertools warns on each such flush.
warnings.filterwarnings("ignore", message="No application metrics to publish")


def trace_downloads() -> None:
    """Record http.client requests (the provider's file a save downloads) as X-Ray subsegments; no-op off
    Lambda."""
    tracer.patch(["httplib"])


__all__ = ["TRACED_MODULES", "MetricUnit", "logger", "metrics", "trace_downloads", "tracer"]
