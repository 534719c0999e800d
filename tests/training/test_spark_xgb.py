"""XGBoost past one machine: with the threshold below the table's size and a standalone cluster
(master + one 2-core worker from the installed pyspark, on 127.0.0.1) as RISKSTREAM_SPARK_MASTER,
the xgb kind fits through xgboost.spark, and the registered version is the usual pipeline: its
probabilities are its booster's own and its reasons are the booster's pred_contribs."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from infra.spark_cluster import QUICK_JIT, ClusterShape, start_cluster, stop_cluster
from riskstream import names
from riskstream.settings import Settings
from tests.training.conftest import write_features

REPO = Path(__file__).resolve().parents[2]
MIN_ROWS = 1000  # the table's ~1,333 training rows are above it: the fit goes to the cluster
SEARCH_ROWS = 600  # the search runs here on a sample of this many
CHILD_TIMEOUT = 600


def _train_in_a_child(settings: Settings, log: Path) -> dict[str, str]:
    """One training execution of the xgb kind in a process of its own (as a pipeline step runs:
    its own Spark driver), with the cluster settings; returns its parent run and version."""
    env = {**os.environ, **QUICK_JIT, **settings.to_env()}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve())],
        env=env,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    log.write_text(done.stderr)
    assert done.returncode == 0, done.stderr[-4000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _applications(master_ui: str) -> list[str]:
    with urllib.request.urlopen(master_ui + "/json/", timeout=10) as response:
        info = json.loads(response.read())
    return [a["name"] for a in (*info.get("activeapps", []), *info.get("completedapps", []))]


@pytest.mark.integration
def test_xgb_fits_on_the_cluster_and_registers_the_usual_pipeline(
    training_settings: Settings, taiwan_small: pd.DataFrame, tmp_path: Path
) -> None:
    import mlflow
    import xgboost as xgb
    from mlflow import MlflowClient
    from scipy.special import expit

    from serving.compiled import compile_pipeline
    from serving.scoring import contributions, split_pipeline
    from training.models import base_estimator

    shape = ClusterShape(cores=2, memory="1g", quick_jit=True)  # 2 task slots: 2 workers
    with ThreadPoolExecutor(max_workers=1) as pool:
        starting = pool.submit(start_cluster, tmp_path / "spark", shape)
        try:
            write_features(training_settings, taiwan_small)
        except BaseException:
            stop_cluster(starting.result())
            raise
        cluster = starting.result()
    try:
        settings = training_settings.with_overrides(
            spark_master=cluster.master_url,
            spark_training_min_rows=MIN_ROWS,
            spark_training_search_rows=SEARCH_ROWS,
        )
        result = _train_in_a_child(settings, tmp_path / "training.log")
        applications = _applications(cluster.master_ui)
    finally:
        stop_cluster(cluster)

    # The fits ran on the cluster, through the kind's xgboost.spark fit.
    assert names.SPARK_TRAINING_APP in applications
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)  # and the registry's, by default
    client = MlflowClient(settings.mlflow_tracking_uri)
    name = settings.registered_model_name
    version = client.get_model_version(name, result["version"])
    assert version.tags[names.TAG_MODEL_TYPE] == "xgb"
    run = client.get_run(version.run_id)
    assert run.data.tags[names.TAG_FIT_ENGINE] == names.FIT_SPARK
    assert run.data.params["spark_master"] == cluster.master_url
    assert run.data.params["spark_workers"] == "2"
    assert run.data.params["search_rows"] == str(SEARCH_ROWS)
    assert int(run.data.params["refit_rows"]) >= MIN_ROWS

    # The registered version is the single-machine path's artefact: a calibrated pipeline around
    # an XGBClassifier, compiled and explained by serving as usual.
    pipeline = mlflow.sklearn.load_model(f"models:/{name}/{version.version}")
    estimator = base_estimator(pipeline)
    assert type(estimator).__name__ == "XGBClassifier"
    preprocess, model = split_pipeline(pipeline)
    rows = taiwan_small.sample(300, random_state=0)
    xt = np.asarray(preprocess.transform(rows), dtype=float)
    booster = estimator.get_booster()
    own = booster.predict(xgb.DMatrix(xt))
    own_contribs = booster.predict(xgb.DMatrix(xt), pred_contribs=True)[:, :-1]

    compiled = compile_pipeline(pipeline)
    np.testing.assert_allclose(estimator.predict_proba(xt)[:, 1], own, rtol=0, atol=1e-9)
    np.testing.assert_allclose(compiled.model.proba(xt), own, rtol=0, atol=1e-9)
    platt = model.calibrated_classifiers_[0].calibrators[0]
    served = pipeline.predict_proba(rows)[:, 1]
    np.testing.assert_allclose(served, expit(-(platt.a_ * own + platt.b_)), rtol=0, atol=1e-9)
    np.testing.assert_allclose(compiled.pd(xt), served, rtol=0, atol=1e-9)
    # Reasons: TreeSHAP in the compiled scorer and the batch job's contributions.
    np.testing.assert_allclose(compiled.model.contribs(xt), own_contribs, rtol=0, atol=1e-6)
    np.testing.assert_allclose(contributions(model, xt, True), own_contribs, rtol=0, atol=1e-6)


if __name__ == "__main__":  # the child: one training execution with the settings from the env
    from riskstream.logs import configure_logging
    from training.config import TrainingConfig
    from training.train import run_training

    configure_logging()
    logging.getLogger("py4j").setLevel(logging.WARNING)
    report = run_training(
        Settings.from_env(dotenv=None), TrainingConfig(models=("xgb",), max_trials=2, cv_folds=2)
    )
    print(json.dumps({"parent": report.parent_run_id, "version": report.decision["version"]}))
