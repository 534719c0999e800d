"""The `riskstream` command: one entry point, subcommands contributed by each package.

Each package that has commands exposes ``register(subparsers)`` in its ``cli`` module; handlers
take ``(args, settings)`` and return an exit code. Heavy imports stay inside handlers so that
``riskstream --help`` is instant. This aggregator is the only module that knows every package.
"""

from __future__ import annotations

import argparse
import difflib
import logging
from collections.abc import Sequence
from typing import Any

from etl import cli as etl_cli
from infra import cli as infra_cli
from ingestion import cli as ingestion_cli
from pipeline import run, services_cli, sfn_cli
from riskstream import __version__
from riskstream.commands import CommandError
from riskstream.errors import ConfigurationError
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
    sfn_cli,
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


def _chosen_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Any:
    """The (sub)command parser ``args`` were parsed by, e.g. the one of `riskstream produce`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = getattr(args, action.dest, None)
            if chosen in action.choices:
                return _chosen_parser(action.choices[chosen], args)
    return parser


def refuse_unknown(
    parser: argparse.ArgumentParser, args: argparse.Namespace, extras: list[str]
) -> None:
    """Exit (status 2, as argparse does) naming each unknown flag and, when one is close, the
    command's own spelling of it (``--csv-path`` on `produce` is ``--path``)."""
    command = _chosen_parser(parser, args)
    known = [
        option
        for action in command._actions
        if action.help != argparse.SUPPRESS
        for option in action.option_strings
        if option.startswith("--")
    ]
    hints = []
    for extra in extras:
        flag = extra.split("=", 1)[0]
        if not flag.startswith("-"):
            continue
        close = difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
        if close:
            hints.append(f"{flag}: `{command.prog}` spells it {close[0]}")
    message = f"unrecognized arguments: {' '.join(extras)}"
    command.error(message + (" (" + "; ".join(hints) + ")" if hints else ""))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        refuse_unknown(parser, args, extras)
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
    except ConfigurationError as exc:  # a command that let one through: still one clear line
        logger.error("configuration error: %s", exc)
        return 2
