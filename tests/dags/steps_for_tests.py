"""Step functions used by the DAG-builder tests (a tiny stand-in pipeline with faults)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.steps import StepContext
from riskstream.errors import ConfigurationError
from riskstream.settings import Settings


def _counter(ctx: StepContext, name: str) -> int:
    path = Path(ctx.param("counter_dir")) / name
    count = int(path.read_text()) if path.exists() else 0
    path.write_text(str(count + 1))
    return count + 1


def ok(settings: Settings, ctx: StepContext) -> dict[str, Any]:
    return {"ran": True}


def decide(settings: Settings, ctx: StepContext) -> dict[str, Any]:
    return {"promote": bool(ctx.param("promote"))}


def flaky(settings: Settings, ctx: StepContext) -> dict[str, Any]:
    """Fails on its first attempt, succeeds on the second (``mode`` transient); always fails
    (permanent); fails with a configuration error (configuration)."""
    attempt = _counter(ctx, "flaky")
    if attempt < 2 and ctx.param("mode") == "transient":
        raise ConnectionError(f"transient failure on attempt {attempt}")
    if ctx.param("mode") == "permanent":
        raise ValueError("permanent failure")
    if ctx.param("mode") == "configuration":
        raise ConfigurationError("mapping 'entity_id' is an empty string; name the id column")
    return {"attempts": attempt}


def echo_settings(settings: Settings, ctx: StepContext) -> dict[str, Any]:
    """Write the settings the task was given where the test can read them."""
    out = Path(ctx.param("counter_dir")) / "settings.json"
    out.write_text(json.dumps(settings.describe(), default=str))
    return {"prefix": settings.prefix}


TEST_STEPS = {"ok": ok, "decide": decide, "flaky": flaky, "echo_settings": echo_settings}
"""The stand-in steps by the names tests/dags/test_machine.asl.json gives them."""
