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

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)

# Many answers (a 404, a duplicate delivery) rightly emit no metric; Powertools warns on each such flush.
warnings.filterwarnings("ignore", message="No application metrics to publish")

__all__ = ["MetricUnit", "logger", "metrics", "tracer"]
