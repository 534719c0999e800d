"""Checks that configuration values share, with one wording for the error (pure; no imports).

A value object calls them from ``__post_init__``, so a bad value fails where it is built, with
a message that names the field and the value.
"""

from __future__ import annotations


def require_positive(**values: float | None) -> None:
    """Raise ValueError naming every one of ``values`` that is not above zero (None, "not
    set", passes): ``require_positive(pdo=-5.0)`` -> ``pdo=-5.0 must be positive``."""
    bad = [f"{name}={value}" for name, value in values.items() if value is not None and value <= 0]
    if bad:
        raise ValueError(f"{' and '.join(bad)} must be positive")
