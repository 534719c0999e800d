"""`riskstream provision` (the services' up/down/status commands live in the pipeline's CLI)."""

from __future__ import annotations

import argparse
from typing import Any

from riskstream.commands import CommandError
from riskstream.settings import Settings


def register(subparsers: Any) -> None:
    prov = subparsers.add_parser(
        "provision",
        help="create buckets, stream, checkpoint table and Glue database (idempotent)",
        description="Create every resource the pipeline needs; running it twice creates nothing.",
    )
    prov.set_defaults(func=provision_cmd)


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
