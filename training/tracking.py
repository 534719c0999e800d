"""MLflow plumbing: the client, the portfolio's experiment, run links and the logged model's
pip requirements (I/O module)."""

from __future__ import annotations

import logging
from typing import Any

from riskstream import names
from riskstream.settings import Settings
from training.config import TrainingError

logger = logging.getLogger(__name__)


def _mlflow(settings: Settings) -> Any:
    import mlflow

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    return mlflow


def _client(settings: Settings) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri)


def experiment_name(settings: Settings) -> str:
    return names.experiment_name(settings)


def ensure_experiment(settings: Settings) -> str:
    client = _client(settings)
    name = experiment_name(settings)
    try:
        found = client.get_experiment_by_name(name)
    except Exception as exc:  # connection refused, DNS, ...: say where we tried
        raise TrainingError(
            f"cannot reach MLflow at {settings.mlflow_tracking_uri} ({type(exc).__name__}: "
            f"{exc}); start it with `riskstream mlflow up`"
        ) from None
    if found is not None:
        return str(found.experiment_id)
    return str(client.create_experiment(name))


def run_url(settings: Settings, experiment_id: str, run_id: str) -> str:
    return f"{settings.mlflow_tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def model_requirements() -> list[str]:
    import importlib

    modules = {
        "mlflow": "mlflow",
        "scikit-learn": "sklearn",
        "xgboost": "xgboost",  # installed here as xgboost-cpu: same module
        "cloudpickle": "cloudpickle",
        "pandas": "pandas",
        "numpy": "numpy",
    }
    return [f"{pkg}=={importlib.import_module(mod).__version__}" for pkg, mod in modules.items()]


# ---- step 1: the parent run ----------------------------------------------------------------
