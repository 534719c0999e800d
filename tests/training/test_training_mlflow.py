"""Training against the session's real moto S3 and a real MLflow server, over HTTP."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

import modelkinds
from pipeline.cli import main
from riskstream import names
from riskstream.settings import Settings
from tests.training.conftest import write_features
from training.config import TrainingConfig
from training.dataset import TrainingDataError
from training.train import evaluate_and_register, run_training, start_training

pytestmark = pytest.mark.integration


TINY = TrainingConfig(max_trials=2)
# A weak table version: profile only (the protected columns are there but never inputs).
WEAK_COLUMNS = ["account_id", "obs_date", "label", "source", "age", "sex", "education"]
PROTECTED_SEEN = ("sex", "marital_status", "age", "attr_race")
IDENTIFIERS_SEEN = ("attr_client_id",)


def _with_protected_and_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """The Taiwan table plus a row id and a protected attribute, as a CSV replay would add."""
    import numpy as np

    out = frame.copy()
    out["attr_client_id"] = np.arange(len(out), dtype=float)
    out["attr_race"] = np.where(np.arange(len(out)) % 3 == 0, "g1", "g2")
    return out


def assert_registry_lawful(settings: Settings, sample: pd.DataFrame) -> int:
    """No protected attribute or identifier is a feature or a reason of any registered version."""
    from serving.scoring import ScoringConfig, build_scores_table, explain, human_name
    from training.lawful import InputPolicy, is_identifier

    client = MlflowClient(settings.mlflow_tracking_uri)
    name = settings.registered_model_name
    policy = InputPolicy()
    banned_reasons = {human_name(c) for c in (*PROTECTED_SEEN, *IDENTIFIERS_SEEN)}
    versions = client.search_model_versions(f"name='{name}'")
    for v in versions:
        model = mlflow.sklearn.load_model(f"models:/{name}/{v.version}")
        inputs = [str(c) for c in model.named_steps["preprocess"].feature_names_in_]
        declared = json.loads(
            Path(client.download_artifacts(v.run_id, "features.json")).read_text()
        )
        assert declared["features"] == inputs == v.tags["features"].split(",")
        for column in inputs:
            assert not policy.is_protected(column) and not is_identifier(column), (v, column)
        assert set(v.tags["protected_attributes"].split(",")) >= {"sex", "marital_status", "age"}
        result = explain(model, sample, ScoringConfig(threshold=0.5))
        scored = build_scores_table(result, sample, name, v.version).to_pandas()
        reasons = {r for i in (1, 2, 3) for r in scored[f"reason_{i}"].dropna()}
        assert reasons and not reasons & banned_reasons, reasons & banned_reasons
        card = Path(client.download_artifacts(v.run_id, "model_card.md")).read_text()
        assert "## Fairness" in card and "95% DeLong interval" in card
        fairness = json.loads(
            Path(client.download_artifacts(v.run_id, "fairness/fairness.json")).read_text()
        )
        assert v.tags["decision"] and "promotion_test" in v.tags
        assert set(fairness["attributes"]) <= set(PROTECTED_SEEN)
    return len(versions)


def _oracle(settings: Settings, frame: pd.DataFrame) -> None:
    """A fake generator's true PD (a noisy label) beside the stream, as the contract says."""
    import io

    import numpy as np

    from riskstream.clients import make_client

    rng = np.random.default_rng(0)
    true_pd = np.clip(0.15 + 0.6 * frame["label"] + rng.normal(0, 0.2, len(frame)), 0.001, 0.999)
    buf = io.BytesIO()
    pd.DataFrame(
        {"account_id": frame["account_id"], "true_pd": true_pd, "observed_date": frame["obs_date"]}
    ).to_parquet(buf, index=False)
    make_client(settings, "s3").put_object(
        Bucket=settings.bucket("artifacts"),
        Key=names.oracle_key(settings.portfolio),
        Body=buf.getvalue(),
    )


def test_three_models_tracked_and_registered(
    training_settings: Settings, taiwan_small: pd.DataFrame
) -> None:
    settings = training_settings
    write_features(settings, _with_protected_and_ids(taiwan_small))
    _oracle(settings, taiwan_small)
    # the windows the pipeline's features job reports, recorded with the model
    report = run_training(settings, replace(TINY, lookback_months=6, performance_months=1))
    client = MlflowClient(settings.mlflow_tracking_uri)

    parent = client.get_run(report.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["split_strategy"] == "stratified_random"
    n_test = parent.data.metrics["rows_test"]
    assert n_test == pytest.approx(len(taiwan_small) / 3, abs=1)
    assert {i.dataset.name for i in parent.inputs.dataset_inputs} == {
        f"features@{parent.data.tags['features_digest']}"
    }
    assert report.run_url.endswith(report.parent_run_id)

    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{report.parent_run_id}'"
    )
    assert sorted(r.data.tags["model_type"] for r in children) == sorted(modelkinds.names())
    for run in children:
        m = run.data.metrics
        assert 0.65 < m["roc_auc"] < 1.0, (run.data.tags["model_type"], m["roc_auc"])
        assert m["gini"] == pytest.approx(2 * m["roc_auc"] - 1)
        assert 0 < m["threshold"] < 1 and m["tp"] + m["fp"] + m["tn"] + m["fn"] == n_test
        assert m["oracle_roc_auc"] > m["roc_auc"]  # the fake oracle knows the label
        assert m["roc_auc_ci_low"] < m["roc_auc"] < m["roc_auc_ci_high"]
        assert 0.6 < m["cv_roc_auc"] < 1.0 and "fairness_min_air" in m
        fairness = json.loads(
            Path(client.download_artifacts(run.info.run_id, "fairness/fairness.json")).read_text()
        )
        assert set(fairness["attributes"]) == {"sex", "marital_status", "age", "attr_race"}
        files = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
        assert {
            "plots/roc.png",
            "plots/calibration.png",
            "plots/cost_by_threshold.png",
            "plots/feature_importance.png",
        } <= files
        # what a kind publishes about its fit (e.g. the scorecard's points table), if anything
        published = {a.path for a in client.list_artifacts(run.info.run_id, names.KIND_REPORT_DIR)}
        kind = modelkinds.get(run.data.tags["model_type"])
        assert bool(published) == (kind.report is not None), (kind.name, published)
        local = client.download_artifacts(run.info.run_id, "baseline/baseline.json")
        baseline = json.loads(Path(local).read_text())
        assert 5 <= len(baseline["score"]["proportions"]) <= 10  # tied scores merge bins
        assert "utilisation_m1" in baseline["features"]
        info = mlflow.models.get_model_info(run.data.tags["model_uri"])
        assert "credit_limit" in info.signature.inputs.input_names()
        assert not {"sex", "age", "attr_client_id"} & set(info.signature.inputs.input_names())

    decision = report.decision
    assert decision["promote"] is True and "no champion yet" in decision["reason"]
    # A retried evaluate task returns the same decision and registers nothing new.
    again = evaluate_and_register(settings, report.parent_run_id)
    assert (again["version"], again["promote"]) == (decision["version"], True)
    name = settings.registered_model_name
    assert len(client.search_model_versions(f"name='{name}'")) == 1
    version = client.get_model_version_by_alias(name, "champion")
    assert version.version == decision["version"]
    assert client.get_model_version_by_alias(name, "challenger").version == version.version
    assert version.tags["model_type"] == decision["model"]
    for tag in ("threshold", "roc_auc", "ks", "decision_reason", "features", "roc_auc_ci95"):
        assert version.tags[tag], tag
    assert version.tags["identifiers_not_inputs"] == "attr_client_id"
    assert (version.tags["lookback_months"], version.tags["performance_months"]) == ("6", "1")
    dates = sorted(str(pd.Timestamp(d).date()) for d in taiwan_small["obs_date"].unique())
    assert version.tags["obs_dates"] == ",".join(dates)
    card = Path(client.download_artifacts(version.run_id, "model_card.md")).read_text()
    assert "lookback 6 months before each observation date" in card
    assert "performance window 1 months after it" in card
    # the serving cost the promotion was decided with, on the version and in the card
    assert float(version.tags["serving_p99_ms"]) > 0
    assert version.tags["serving_budget_ms"] == "5"
    kind = modelkinds.get(decision["model"])
    assert version.tags["reason_method"].startswith(kind.reason_method)
    assert "## Serving" in card and kind.reason_method in card
    assert set(version.tags["protected_present_not_inputs"].split(",")) == {
        "sex",
        "marital_status",
        "age",
        "attr_race",
    }
    assert assert_registry_lawful(settings, taiwan_small.head(200)) == 1
    # The registered model is the contract's pipeline and scores the feature table.
    model = mlflow.sklearn.load_model(f"models:/{name}@champion")
    assert list(model.named_steps) == ["preprocess", "model"]
    p = model.predict_proba(taiwan_small.drop(columns=["label"]).head(20))[:, 1]
    assert ((p > 0) & (p < 1)).all()


def test_promotion_both_ways(
    training_settings: Settings,
    taiwan_small: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = training_settings
    client = MlflowClient(settings.mlflow_tracking_uri)
    name = settings.registered_model_name
    full = write_features(settings, taiwan_small, files_per_date=1)
    # A weak table version: demographics only.
    weak_frame = taiwan_small[WEAK_COLUMNS]
    bucket = settings.bucket("features")
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from riskstream.clients import make_client

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(weak_frame, preserve_index=False), buf)
    make_client(settings, "s3").put_object(
        Bucket=bucket, Key="weak/part-0.parquet", Body=buf.getvalue()
    )
    lr_only = TrainingConfig(models=("lr",), budget_seconds=2, max_trials=1, min_ks=0.0)

    first = run_training(settings, lr_only, features_uri=f"s3://{bucket}/weak").decision
    assert first["promote"] and first["version"] == "1"

    better = run_training(settings, lr_only, features_uri=full).decision
    assert better["promote"], better["reason"]
    assert "significantly better" in better["reason"] and better["p_value"] < 0.05
    assert better["champion_roc_auc"] < better["roc_auc"]
    tags = client.get_model_version(name, better["version"]).tags
    assert tags["decision"] == "promoted" and float(tags["delong_p_one_sided"]) < 0.05
    assert client.get_model_version_by_alias(name, "champion").version == better["version"]

    # The same model again (via the CLI, in this process: its imports are paid once) is not
    # significantly better: the champion stays.
    for key, value in {
        "RISKSTREAM_TARGET": "embedded",
        "RISKSTREAM_CLOUD_PORT": str(settings.cloud_port),
        "RISKSTREAM_PREFIX": settings.prefix,
        "RISKSTREAM_STATE_DIR": str(settings.state_dir),
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "RISKSTREAM_PORTFOLIO": settings.portfolio,
    }.items():
        monkeypatch.setenv(key, value)
    train = ["--env-file", "/nonexistent", "train", "--models", "lr", "--budget", "2"]
    train += ["--max-trials", "1", "--features-uri"]
    assert main([*train, full]) == 0
    out = capsys.readouterr().out
    assert "ROC-AUC" in out and "MLflow run: http://127.0.0.1:" in out
    worse = client.get_model_version(name, "3")
    assert worse.tags["promote"] == "false"
    assert f"kept champion v{better['version']}" in worse.tags["decision_reason"]
    assert worse.tags["decision"] == "kept_champion" and worse.tags["delong_p_one_sided"]
    assert client.get_model_version_by_alias(name, "champion").version == better["version"]
    assert client.get_model_version_by_alias(name, "challenger").version == "3"

    # A table without the champion's `pay_amt_m1`: the champion cannot be evaluated -> blocked.
    renamed = taiwan_small.rename(columns={"pay_amt_m1": "pay_amt_last"})
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(renamed, preserve_index=False), buf)
    make_client(settings, "s3").put_object(
        Bucket=bucket, Key="renamed/part-0.parquet", Body=buf.getvalue()
    )
    renamed_uri = f"s3://{bucket}/renamed"
    blocked = run_training(settings, lr_only, features_uri=renamed_uri).decision
    assert not blocked["promote"] and blocked["decision"] == "blocked_unevaluable"
    assert "pay_amt_m1" in blocked["reason"] and "promote_override" in blocked["reason"]
    assert client.get_model_version_by_alias(name, "champion").version == better["version"]

    # The override (CLI flag) promotes and is recorded on the version.
    assert main([*train, renamed_uri, "--promote-override"]) == 0
    champion = client.get_model_version_by_alias(name, "champion")
    assert champion.version == "5"
    assert champion.tags["decision"] == "overridden"
    assert champion.tags["promote_override"] == "true"
    sample = taiwan_small.head(200).assign(pay_amt_last=taiwan_small["pay_amt_m1"].head(200))
    assert assert_registry_lawful(settings, sample) == 5

    # Over the serving budget (RISKSTREAM_SERVING_BUDGET_MS): not promoted, with that reason.
    tight = settings.with_overrides(serving_budget_ms=1e-6)
    slow = run_training(tight, lr_only, features_uri=renamed_uri).decision
    assert not slow["promote"] and slow["decision"] == "rejected_latency", slow["reason"]
    assert "serving p99" in slow["reason"] and "budget 1e-06 ms" in slow["reason"]
    assert client.get_model_version_by_alias(name, "champion").version == "5"
    slow_tags = client.get_model_version(name, slow["version"]).tags
    assert slow_tags["decision"] == "rejected_latency"
    assert float(slow_tags["serving_p99_ms"]) > 1e-6 and slow_tags["serving_budget_ms"] == "1e-06"


def test_empty_and_one_class_tables_fail_clearly(
    training_settings: Settings, taiwan_small: pd.DataFrame
) -> None:
    settings = training_settings
    with pytest.raises(TrainingDataError, match="no Parquet files under s3://"):
        start_training(settings, config=TINY)
    write_features(settings, taiwan_small[taiwan_small["label"] == 0].head(200))
    with pytest.raises(TrainingDataError, match="only one class"):
        start_training(settings, config=TINY)
