"""The registry of model kinds: every module of this package (but :mod:`modelkinds.base`; the
shared pieces live in the subpackage :mod:`modelkinds.parts`) is one kind, named after it and
declaring a :class:`~modelkinds.base.ModelKind` named ``KIND``.

Training, serving and the pipeline ask this registry; none of them names a kind. Adding a kind
is adding its module here (plus its test and a line of docs; docs/CONTRACTS.md, "Model kinds").
Importing the package loads no heavy library: the kinds import theirs inside their functions.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from typing import Any

from modelkinds.base import (
    CompiledEstimator,
    FitOptions,
    KindReport,
    ModelKind,
    NotCompilable,
    ReportContext,
    UnknownModelKind,
)

_NOT_KINDS = frozenset({"base"})


def discover(package: str = __name__) -> dict[str, ModelKind]:
    """The kinds declared by the modules of ``package``, by name, in their declared order."""
    root = importlib.import_module(package)
    found: dict[str, tuple[str, ModelKind]] = {}
    for info in pkgutil.iter_modules(root.__path__):
        if info.ispkg or info.name in _NOT_KINDS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        kind = getattr(module, "KIND", None)
        if not isinstance(kind, ModelKind):
            raise TypeError(
                f"{module.__name__} declares no model kind: a module of {package} must define "
                "KIND = ModelKind(...)"
            )
        if kind.name != info.name:
            raise ValueError(
                f"{module.__name__} declares the model kind {kind.name!r}: a kind's module is "
                f"named after it ({package}.{kind.name})"
            )
        if kind.name in found:
            raise ValueError(
                f"model kind {kind.name!r} is declared by both {found[kind.name][0]} and "
                f"{module.__name__}"
            )
        found[kind.name] = (module.__name__, kind)
    ordered = sorted(found.values(), key=lambda item: (item[1].order, item[1].name))
    return {kind.name: kind for _, kind in ordered}


REGISTRY: dict[str, ModelKind] = discover()
"""Every registered kind by name, in order. Read it through the functions below."""


def kinds() -> tuple[ModelKind, ...]:
    """Every registered kind, in order."""
    return tuple(REGISTRY.values())


def names() -> tuple[str, ...]:
    """Every registered kind's name, in order (``lr``, ``rf``, ``xgb``, ...)."""
    return tuple(REGISTRY)


def get(name: str) -> ModelKind:
    """The kind called ``name``; :class:`UnknownModelKind` naming the known kinds otherwise."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise UnknownModelKind(
            f"unknown model {name!r}; choose from {', '.join(REGISTRY)}"
        ) from None


def kind_of(estimator: Any) -> ModelKind:
    """The kind a fitted estimator (wrappers already looked through) belongs to; a loud
    :class:`UnknownModelKind` when none recognises it (never an unexplained score)."""
    for kind in REGISTRY.values():
        if kind.recognises(estimator):
            return kind
    known = ", ".join(f"{k.name} ({'/'.join(k.estimator_classes)})" for k in REGISTRY.values())
    raise UnknownModelKind(
        f"no model kind recognises the estimator {type(estimator).__name__}; known kinds: "
        f"{known}. Add a module to modelkinds/ for it (docs/CONTRACTS.md, 'Model kinds')"
    )


def default_models() -> str:
    """The default model set, comma-separated: every registered kind."""
    return ",".join(REGISTRY)


def models_pattern() -> str:
    """A regular expression a comma-separated model set must match (the DAG's ``models``)."""
    one = "|".join(re.escape(name) for name in REGISTRY)
    return rf"^({one})(,({one}))*$"


def parse_models(text: str) -> tuple[str, ...]:
    """``"lr, xgb"`` -> ``("lr", "xgb")``; an unknown kind raises :class:`UnknownModelKind`."""
    chosen = tuple(m.strip() for m in str(text).split(",") if m.strip())
    for name in chosen:
        get(name)
    return chosen


def models_option(text: str) -> str:
    """An argparse ``type`` for a ``--models`` option: the set, normalised (``lr,xgb``), or a
    usage error naming the known kinds."""
    import argparse

    try:
        return ",".join(parse_models(text))
    except UnknownModelKind as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def models_help() -> str:
    """The ``--models`` help text: the registered kinds."""
    return f"comma-separated subset of {default_models()} (default all)"


__all__ = [
    "REGISTRY",
    "CompiledEstimator",
    "FitOptions",
    "KindReport",
    "ModelKind",
    "NotCompilable",
    "ReportContext",
    "UnknownModelKind",
    "default_models",
    "discover",
    "get",
    "kind_of",
    "kinds",
    "models_help",
    "models_option",
    "models_pattern",
    "names",
    "parse_models",
]
