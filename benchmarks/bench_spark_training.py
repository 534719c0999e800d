"""XGBoost's training protocol past one machine (information): the xgb kind's search, out-of-fold
fits and refit with the fits through ``xgboost.spark`` on a local standalone cluster (a master and
one 2-core worker from the installed pyspark, on 127.0.0.1; training.spark_fit), beside the same
protocol on one machine on the same rows, in the same run (``training.spark.xgb.seconds``). The
search sees every training row both ways, so only where the fits run differs. On one 2-core
machine the cluster cannot pay (its executors share the same two cores, behind a JVM and a
Python worker each): the row shows what the cluster costs, not what it saves.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from common import cli, ratio_row, write_rows
from fixtures import read_taiwan_features

from infra.spark_cluster import ClusterShape, local_cluster
from riskstream.datasets import TAIWAN_CSV, TAIWAN_SHA256, verify_sha256
from riskstream.settings import Settings


def main() -> None:
    args = cli(__doc__ or "")
    from sklearn.metrics import roc_auc_score

    from training.dataset import labelled, split_rows
    from training.lawful import InputPolicy
    from training.models import SearchBudget, fit_with_search
    from training.prepare import select_columns
    from training.spark_fit import where_to_fit

    n_rows = 3000 if args.quick else None
    frame = read_taiwan_features(str(verify_sha256(TAIWAN_CSV, TAIWAN_SHA256)), n_rows, seed=1)
    rows = labelled(frame, "taiwan")
    cols, _, _ = select_columns(rows, InputPolicy(), "taiwan")
    split = split_rows(rows)
    train, test = rows.iloc[split.train_index], rows.iloc[split.test_index]
    x, y = train[cols.all], train["label"].to_numpy()
    budget = SearchBudget(max_trials=3)

    started = time.perf_counter()
    here = fit_with_search("xgb", x, y, cols, budget)
    here_seconds = time.perf_counter() - started
    here_auc = roc_auc_score(test["label"], here.pipeline.predict_proba(test[cols.all])[:, 1])

    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        shape = ClusterShape(cores=2, memory="1g", quick_jit=True)
        with local_cluster(Path(tmp) / "spark", shape) as cluster:
            up_seconds = time.perf_counter() - began
            settings = Settings(
                spark_master=cluster.master_url,
                spark_training_min_rows=len(x),
                spark_training_search_rows=len(x),
                state_dir=Path(tmp),
            )
            started = time.perf_counter()
            with where_to_fit(settings, "xgb", len(x)) as refit:
                spark = fit_with_search("xgb", x, y, cols, budget, refit=refit)
            spark_seconds = time.perf_counter() - started
    spark_auc = roc_auc_score(test["label"], spark.pipeline.predict_proba(test[cols.all])[:, 1])
    workers = spark.extra["fit_where"].get("spark_workers")
    rows_out = [
        ratio_row(
            "training",
            f"xgb's protocol ({budget.max_trials} trials, {budget.cv_folds}-fold out-of-fold "
            f"fits, refit) with the fits on a local standalone cluster ({workers} workers), "
            f"{len(x):,} training rows (information)",
            spark_seconds,
            "s",
            "the same protocol on one machine, same rows, same run",
            here_seconds,
            note=(
                f"test ROC-AUC {spark_auc:.4f} on the cluster, {here_auc:.4f} here; the Spark "
                f"driver's start and the executors' first Python workers included; cluster start "
                f"{up_seconds:.1f} s, apart"
            ),
            id="training.spark.xgb.seconds",
        )
    ]
    write_rows(args.out, rows_out)


if __name__ == "__main__":
    main()
