"""Shared pieces for benchmark scripts: a private local cloud and the row format.

Every figure is measured beside its reference in the same run and reported as a ratio, because
the machines are shared and noisy: absolute rates move, ratios much less.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from infra.cloud import cloud_service  # noqa: E402
from infra.provision import provision  # noqa: E402
from infra.services import ManagedService, free_port  # noqa: E402
from riskstream.settings import Settings  # noqa: E402


@dataclass
class Row:
    """One line of the benchmark table; ``id`` is the stable name an issue or a reader cites."""

    area: str
    figure: str
    value: float
    unit: str
    reference: str = ""
    reference_value: float | None = None
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""
    id: str = field(default="", kw_only=True)


def ratio_row(
    area: str,
    figure: str,
    value: float,
    unit: str,
    reference: str,
    reference_value: float,
    *,
    ratio_at_least: float | None = None,
    ratio_at_most: float | None = None,
    at_least: float | None = None,
    at_most: float | None = None,
    also: bool = True,
    note: str = "",
    id: str,
) -> Row:
    """A figure beside its reference measured in the same run, ``ratio`` = value / reference.

    At most one goal: on the ratio (``ratio_at_least``, ``ratio_at_most``) or on the value
    (``at_least``, ``at_most``, in ``unit``); it writes ``target`` and decides ``met``, which
    also needs ``also`` (the run's other conditions, e.g. that it exited cleanly). No goal:
    information. A reference of zero (nothing measured) leaves the ratio out, and a goal on it
    unmet.
    """
    ratio = value / reference_value if reference_value else None
    goals = [
        (ratio_at_least, ">=", "", ratio),
        (ratio_at_most, "<=", "", ratio),
        (at_least, ">=", f" {unit}", value),
        (at_most, "<=", f" {unit}", value),
    ]
    chosen = [(limit, op, suffix, got) for limit, op, suffix, got in goals if limit is not None]
    if len(chosen) > 1:
        raise ValueError(f"{id}: one goal per row, got {len(chosen)}")
    target, met = "", None
    if chosen:
        limit, op, suffix, got = chosen[0]
        target = f"{op} {limit:,g}{suffix}"
        met = also and got is not None and (got >= limit if op == ">=" else got <= limit)
    return Row(
        area, figure, value, unit, reference, reference_value, ratio, target, met, note, id=id
    )


@contextmanager
def cloud_service_of(
    prefix: str = "bench",
    ephemeral: bool = True,
    fsync: bool = False,
    state: Path | None = None,
    provisioned: bool = False,
) -> Iterator[tuple[Settings, ManagedService]]:
    """A cloud of our launcher on a free port, in memory or durable (state in ``state`` or a
    temp dir), its resources provisioned if asked; stopped afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_mapping(
            {
                "RISKSTREAM_CLOUD_PORT": str(free_port()),
                "RISKSTREAM_STATE_DIR": str(state or tmp),
                "RISKSTREAM_PREFIX": f"{prefix}{uuid.uuid4().hex[:6]}",
            }
        )
        service = cloud_service(settings, ephemeral=ephemeral, fsync=fsync)
        service.up()
        try:
            if provisioned:
                provision(settings)
            yield settings, service
        finally:
            service.down()


@contextmanager
def local_cloud(prefix: str = "bench") -> Iterator[Settings]:
    """A moto server on a free port with its own state dir, stopped afterwards."""
    with cloud_service_of(prefix) as (settings, _):
        yield settings


def cli(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON rows")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    return parser.parse_args()


def write_rows(out: Path, rows: list[Row]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([asdict(r) for r in rows], indent=2))
    for row in rows:
        ratio = f"  ratio {row.ratio:.2f}" if row.ratio is not None else ""
        print(f"{row.area}: {row.figure} = {row.value:,.2f} {row.unit}{ratio}")


def private_stack_env(state: str, prefix: str) -> dict[str, str]:
    """The environment of a `riskstream run` on its own state dir, free ports and prefix, so a
    stack the user already has up is left alone."""
    import os

    return {
        **os.environ,
        "RISKSTREAM_STATE_DIR": state,
        "RISKSTREAM_CLOUD_PORT": str(free_port()),
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}",
        "RISKSTREAM_AIRFLOW_URL": f"http://127.0.0.1:{free_port()}",
        "RISKSTREAM_API_URL": f"http://127.0.0.1:{free_port()}",
        "RISKSTREAM_DASHBOARD_URL": f"http://127.0.0.1:{free_port()}",
        "RISKSTREAM_SPARK_SESSION_URL": f"http://127.0.0.1:{free_port()}",
        "RISKSTREAM_SFN_WORKER_URL": f"http://127.0.0.1:{free_port()}",
        "RISKSTREAM_LIVE_URL": f"http://127.0.0.1:{free_port()}",
        "RISKSTREAM_PREFIX": prefix,
    }
