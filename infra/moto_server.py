"""Launch moto's server (used by `riskstream cloud up`): durable state, and a Kinesis fix.

With ``--state DIR`` the server keeps its state in DIR (see infra/durable.py): it restores the
snapshot and log on start, logs every acknowledged write, and snapshots on a clean stop. Without
it, the server is moto as it ships, in memory.

moto 5 answers "last sequence number of a shard" by copying the shard's whole key list, on every
PutRecords entry, so a put costs O(records already in the shard) and producing 150,000 events
took about ten times longer than it should (350 s against 35 s, measured here). A shard keeps its
records in an OrderedDict keyed by sequence number, so the first and last keys are O(1) to read.
The behaviour is otherwise unchanged: this is still moto speaking the AWS wire protocol.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

from moto.kinesis import models


def _first_key(self: models.Shard) -> int:
    records: OrderedDict[int, object] = self.records  # type: ignore[assignment]
    return next(iter(records)) if records else 0


def _last_key(self: models.Shard) -> int:
    records: OrderedDict[int, object] = self.records  # type: ignore[assignment]
    return next(reversed(records)) if records else 0


def patch_moto() -> None:
    models.Shard.get_min_sequence_number = _first_key  # type: ignore[method-assign]
    models.Shard.get_max_sequence_number = _last_key  # type: ignore[method-assign]
    from infra.moto_sfn import patch_stepfunctions

    patch_stepfunctions()  # Step Functions executes state machines (infra/moto_sfn.py)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="infra.moto_server")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    parser.add_argument("--state", type=Path, default=None, help="keep the state in this dir")
    parser.add_argument("--fsync", action="store_true", help="fsync each logged write")
    parser.add_argument(
        "--replay-budget",
        type=float,
        default=2.0,
        help="snapshot once the log holds this many seconds of applied writes",
    )
    return parser.parse_args(argv)


def build_app(state: Path | None, fsync: bool = False, replay_budget: float = 2.0) -> Any:
    """moto's WSGI app; with ``state``, restored from it and wrapped to log every write."""
    import os

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    os.environ.setdefault("MOTO_PORT", "4566")
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # type: ignore[attr-defined]
    if state is None:
        return app
    from infra.durable import DurableApp, DurableStore, install_clock

    install_clock()  # before any service module is imported, so each binds the pinned clock
    from infra.moto_sfn import replaying

    store = DurableStore(state, fsync=fsync, replay_budget=replay_budget)
    with replaying():  # a replayed StartExecution is recorded, never run again
        store.restore(app)
    if store.due():  # a long replay: do not make the next start repeat it
        store.snapshot()
    return DurableApp(app, store)


def main(argv: list[str]) -> None:
    patch_moto()
    args = parse_args(argv)
    import os

    os.environ["MOTO_PORT"] = str(args.port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from infra.durable import StateError

    try:
        app = build_app(args.state, args.fsync, args.replay_budget)
    except StateError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201 - the launcher's last word, in its log
        raise SystemExit(2) from None

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import run_simple

    try:
        run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    finally:
        shutdown = getattr(app, "shutdown", None)
        if shutdown is not None:
            shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
