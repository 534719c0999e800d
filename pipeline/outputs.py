"""What a pipeline run left behind, in a form two runs can be compared by (the orchestrators'
parity: tests/dags/test_sfn_parity.py, benchmarks/bench_sfn.py): catalog tables, feature rows,
the registered champion, and every account's score and decision."""

from __future__ import annotations

import hashlib
from typing import Any

from riskstream import names
from riskstream.clients import make_client
from riskstream.settings import Settings


def outputs(settings: Settings) -> dict[str, Any]:
    """The run's tables, champion and scores (MLflow must be up)."""
    from mlflow import MlflowClient

    from riskstream.storage import Storage, arrow_s3_filesystem, read_parquet

    glue = make_client(settings, "glue")
    tables = sorted(
        t["Name"] for t in glue.get_tables(DatabaseName=settings.glue_database)["TableList"]
    )
    storage = Storage(make_client(settings, "s3"))
    filesystem = arrow_s3_filesystem(
        settings.region,
        settings.endpoint_url,
        settings.aws_access_key_id,
        settings.aws_secret_access_key,
    )
    features = read_parquet(storage, filesystem, names.features_location(settings) + "/")
    scores = read_parquet(storage, filesystem, names.scores_location(settings) + "/")
    rows = sorted(
        zip(
            scores.column("account_id").to_pylist(),
            scores.column("score").to_pylist(),
            scores.column("decision").to_pylist(),
            strict=True,
        )
    )
    champion = MlflowClient(tracking_uri=settings.mlflow_tracking_uri).get_model_version_by_alias(
        settings.registered_model_name, names.CHAMPION_ALIAS
    )
    return {
        "tables": tables,
        "feature_rows": features.num_rows,
        "registered": (champion.version, champion.tags.get(names.TAG_MODEL_TYPE)),
        "score_rows": len(rows),
        "scores_digest": hashlib.sha256(repr(rows).encode()).hexdigest()[:16],
    }
