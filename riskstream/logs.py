"""Logging set-up, called once per entry point."""

from __future__ import annotations

import logging
import os

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(level: str | int | None = None) -> None:
    """Configure the root logger once; quiet the chattiest third-party loggers."""
    level = level or os.environ.get("RISKSTREAM_LOG_LEVEL", "INFO")
    logging.basicConfig(level=level, format=_FORMAT, datefmt="%H:%M:%S")
    for noisy in (
        "botocore",
        "boto3",
        "urllib3",
        "s3transfer",
        "py4j",
        "werkzeug",
        "httpx",
        "httpcore",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
