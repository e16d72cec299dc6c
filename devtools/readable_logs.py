"""Readable log lines for the local stack: ``time LEVEL message  key=value ...`` instead of JSON."""

from __future__ import annotations

import logging
from datetime import datetime

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter


class ReadableFormatter(LambdaPowertoolsFormatter):
    """One line per log record: time, level, message, then the structured extras as key=value. (A Powertools
    formatter still, since the logger keeps appending Lambda context keys to it; those are left out here.)"""

    _standard = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={v}" for k, v in record.__dict__.items() if k not in self._standard and not k.startswith("_")
        )
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        line = f"{when} {record.levelname:<7} {record.getMessage()}" + (f"  {extras}" if extras else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def use_readable_logs() -> None:
    """Switch the service's Powertools logger to readable lines."""
    from video_library.observability import logger

    logger.registered_handler.setFormatter(ReadableFormatter())
