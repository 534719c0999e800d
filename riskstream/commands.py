"""Helpers for command modules: a user-facing error type and subcommand groups."""

from __future__ import annotations

import argparse


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
