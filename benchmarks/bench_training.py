"""Training: time, peak memory and test ROC-AUC per model on Taiwan-shaped features (30,000
rows, held-out third), with the default search budget, each beside a plain fit of the same
estimator (library defaults, no search) in the same run; and one whole `run_training` through
moto S3 and a real MLflow server beside the sum of the bare fits (the tracking overhead).

Each fit runs in its own subprocess so ``ru_maxrss`` is that model's peak memory.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, Row, cli, local_cloud, write_rows

AUC_TARGETS = {"xgb": 0.78, "lr": 0.75}


def worker(kind: str, mode: str, data: str, budget: float) -> None:
    """In a subprocess: split, fit (searched or plain), score the held-out third."""
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from training.dataset import feature_columns, labelled, split_rows
    from training.models import SearchBudget, fit_with_search, plain_pipeline

    rows = labelled(pd.read_parquet(data), data)
    cols = feature_columns(rows)
    split = split_rows(rows)
    train, test = rows.iloc[split.train_index], rows.iloc[split.test_index]
    y = train["label"].to_numpy()
    started = time.perf_counter()
    if mode == "search":
        fitted = fit_with_search(kind, train[cols.all], y, cols, SearchBudget(seconds=budget))
        model, trials = fitted.pipeline, len(fitted.trials)
    else:
        pos_weight = float((y == 0).sum() / (y == 1).sum())
        model, trials = plain_pipeline(kind, cols, pos_weight).fit(train[cols.all], y), 1
    seconds = time.perf_counter() - started
    auc = roc_auc_score(test["label"], model.predict_proba(test[cols.all])[:, 1])
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "auc": auc, "rss_mb": rss_mb, "trials": trials}))


def run_worker(kind: str, mode: str, data: Path, budget: float) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", kind, mode, str(data), str(budget)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def end_to_end(frame: object, budget: float) -> tuple[float, dict[str, float]]:
    """`run_training` on the same features, in moto S3, tracked in a real MLflow server."""
    import dataclasses
    import io

    from infra.provision import provision
    from infra.services import free_port
    from riskstream.clients import make_client
    from training.mlflow_process import mlflow_service
    from training.train import TrainingConfig, run_training

    with local_cloud("benchtr") as cloud:
        provision(cloud)
        settings = cloud.with_overrides(mlflow_tracking_uri=f"http://127.0.0.1:{free_port()}")
        service = mlflow_service(settings)
        service.up()
        try:
            body = frame.drop(columns=["obs_date"])  # type: ignore[attr-defined]
            buf = io.BytesIO()
            body.to_parquet(buf, index=False)
            make_client(settings, "s3").put_object(
                Bucket=settings.bucket("features"),
                Key=f"features/obs_date={frame['obs_date'].iloc[0]}/part-0.parquet",  # type: ignore[index]
                Body=buf.getvalue(),
            )
            config = dataclasses.replace(TrainingConfig(), budget_seconds=budget)
            started = time.perf_counter()
            report = run_training(settings, config)
            seconds = time.perf_counter() - started
        finally:
            service.down()
    return seconds, {m["model"]: m["roc_auc"] for m in report.models}


def main() -> None:
    args = cli(__doc__ or "")
    from riskstream.datasets import TAIWAN_CSV, TAIWAN_SHA256, verify_sha256
    from training.devfeatures import read_taiwan_features
    from training.models import MODEL_NAMES, MODEL_TYPES
    from training.train import TrainingConfig

    budget = TrainingConfig().budget_seconds
    verify_sha256(TAIWAN_CSV, TAIWAN_SHA256)
    frame = read_taiwan_features(str(TAIWAN_CSV), n_rows=6000 if args.quick else None)
    rows: list[Row] = []
    searched: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "features.parquet"
        frame.to_parquet(data, index=False)
        for kind in MODEL_TYPES:
            search = run_worker(kind, "search", data, budget)
            plain = run_worker(kind, "plain", data, budget)
            searched[kind] = search
            name = MODEL_NAMES[kind]
            rows += [
                Row(
                    "training",
                    f"{name}: fit with search ({len(frame):,} rows, budget "
                    f"{budget:g}s, {int(search['trials'])} trials)",
                    search["seconds"],
                    "s",
                    reference="plain fit, library defaults, no search",
                    reference_value=plain["seconds"],
                    ratio=search["seconds"] / plain["seconds"],
                ),
                Row(
                    "training",
                    f"{name}: test ROC-AUC (held-out third)",
                    search["auc"],
                    "AUC",
                    reference="plain fit",
                    reference_value=plain["auc"],
                    ratio=search["auc"] / plain["auc"],
                    target=f">= {AUC_TARGETS[kind]}" if kind in AUC_TARGETS else "",
                    met=search["auc"] >= AUC_TARGETS[kind] if kind in AUC_TARGETS else None,
                ),
                Row(
                    "training",
                    f"{name}: peak memory of the fitting process",
                    search["rss_mb"],
                    "MB",
                    reference="plain fit",
                    reference_value=plain["rss_mb"],
                    ratio=search["rss_mb"] / plain["rss_mb"],
                ),
            ]
        total = sum(s["seconds"] for s in searched.values())
        rows.append(
            Row(
                "training",
                "all three models with search",
                total,
                "s",
                target="<= 120 s on 2 cores",
                met=total <= 120,
                note="sum of the per-model fits above",
            )
        )
        seconds, aucs = end_to_end(frame, budget)
        rows.append(
            Row(
                "training",
                "riskstream train end to end (S3 read, 3 models, MLflow logging, registry)",
                seconds,
                "s",
                reference="sum of the bare fits",
                reference_value=total,
                ratio=seconds / total,
                note="AUCs " + ", ".join(f"{k} {v:.4f}" for k, v in aucs.items()),
            )
        )
    write_rows(args.out, rows)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        worker(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
    else:
        main()
