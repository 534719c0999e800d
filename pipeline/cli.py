"""The `riskstream` command: one entry point, subcommands contributed by each package.

Each package that has commands exposes ``register(subparsers)`` in its ``cli`` module; handlers
take ``(args, settings)`` and return an exit code. Heavy imports stay inside handlers so that
``riskstream --help`` is instant. This aggregator is the only module that knows every package.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from etl import cli as etl_cli
from infra import cli as infra_cli
from ingestion import cli as ingestion_cli
from pipeline import run, services_cli
from riskstream import __version__
from riskstream.commands import CommandError
from riskstream.logs import configure_logging
from riskstream.settings import Settings, SettingsError
from serving import cli as serving_cli
from training import cli as training_cli

logger = logging.getLogger(__name__)


COMMAND_MODULES = (
    services_cli,
    infra_cli,
    ingestion_cli,
    etl_cli,
    training_cli,
    serving_cli,
    run,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="riskstream",
        description="A local, cloud-style streaming credit-risk pipeline.",
        epilog="Configuration comes from environment variables and an optional .env file; "
        "see README, Configuration.",
    )
    parser.add_argument("--version", action="version", version=f"riskstream {__version__}")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO (default), WARNING")
    parser.add_argument("--env-file", default=".env", help="optional dotenv file (default .env)")
    subparsers = parser.add_subparsers(dest="command", metavar="<command>")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    if not getattr(args, "func", None):
        # `riskstream` or `riskstream cloud` alone: show the relevant help.
        (getattr(args, "subparser", None) or parser).print_help()
        return 2
    try:
        settings = Settings.from_env(dotenv=args.env_file)
    except SettingsError as exc:
        logger.error("configuration error: %s", exc)
        return 2
    try:
        return int(args.func(args, settings) or 0)
    except KeyboardInterrupt:
        logger.warning("interrupted")
        return 130
    except CommandError as exc:
        logger.error("%s", exc)
        return exc.exit_code
