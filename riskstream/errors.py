"""The foundation's error types, shared by every layer. Stdlib only.

A :class:`ConfigurationError` is the user's to fix (a mapping, a flag, a parameter, a column
name): running the same thing again cannot succeed, so the pipeline's task wrapper fails the
task at once instead of retrying it, and the console prints the message itself.
"""

from __future__ import annotations


class ConfigurationError(ValueError):
    """The run's configuration is wrong; retrying cannot help.

    The message says what was wrong, with the value, and what to do about it.
    """
