"""Foundation: local cloud start time, and S3 round trips through our client factory against a
plain boto3 client on the same server (the factory must add no overhead)."""

from __future__ import annotations

import time

import boto3
from common import Row, cli, local_cloud, write_rows

from infra.provision import provision
from riskstream.clients import make_client


def put_get_rate(s3: object, bucket: str, n: int, payload: bytes) -> float:
    started = time.perf_counter()
    for i in range(n):
        s3.put_object(Bucket=bucket, Key=f"k/{i}", Body=payload)  # type: ignore[attr-defined]
        s3.get_object(Bucket=bucket, Key=f"k/{i}")["Body"].read()  # type: ignore[attr-defined]
    return n / (time.perf_counter() - started)


def main() -> None:
    args = cli(__doc__ or "")
    n = 100 if args.quick else 500
    started = time.perf_counter()
    with local_cloud() as settings:
        up_seconds = time.perf_counter() - started
        mark = time.perf_counter()
        provision(settings)
        provision_seconds = time.perf_counter() - mark
        bucket = settings.bucket("raw")
        payload = b"x" * 4096
        ours = make_client(settings, "s3")
        plain = boto3.client(
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        put_get_rate(ours, bucket, 20, payload)  # warm both connections
        put_get_rate(plain, bucket, 20, payload)
        rates_ours, rates_plain = [], []
        for _ in range(3):  # interleave to share the machine's noise fairly
            rates_ours.append(put_get_rate(ours, bucket, n, payload))
            rates_plain.append(put_get_rate(plain, bucket, n, payload))
        best_ours, best_plain = max(rates_ours), max(rates_plain)
    write_rows(
        args.out,
        [
            Row(
                "foundation",
                "local cloud start (cloud up until it answers)",
                up_seconds,
                "s",
                target="< 10 s",
                met=up_seconds < 10,
            ),
            Row("foundation", "provision all resources (first run)", provision_seconds, "s"),
            Row(
                "foundation",
                "S3 put+get round trips via make_client",
                best_ours,
                "pairs/s",
                reference="plain boto3 client, same server",
                reference_value=best_plain,
                ratio=best_ours / best_plain,
                target=">= 0.9",
                met=best_ours / best_plain >= 0.9,
            ),
        ],
    )


if __name__ == "__main__":
    main()
