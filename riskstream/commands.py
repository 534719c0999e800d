"""Helpers for command modules: a user-facing error type, the errors shown as one, and
subcommand groups."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator


class CommandError(RuntimeError):
    """A failure the user can act on: logged as one line, no traceback."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_group(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Add a command with its own subcommands (e.g. ``cloud up|down|status``)."""
    group = subparsers.add_parser(name, help=help_text, description=help_text)
    group.set_defaults(func=None, subparser=group)
    return group.add_subparsers(dest=f"{name}_command", metavar="<subcommand>")


@contextlib.contextmanager
def user_errors(*errors: type[Exception]) -> Iterator[None]:
    """Show ``errors`` (failures whose message already says what was wrong and what to do) as a
    :class:`CommandError`: one line for the user, no traceback."""
    try:
        yield
    except errors as exc:
        raise CommandError(str(exc)) from None
