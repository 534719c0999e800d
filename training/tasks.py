"""Entry functions the Airflow DAG calls (docs/CONTRACTS.md); each takes a Settings first.

``train_model`` for different models may run in parallel processes under one parent run.
"""

from __future__ import annotations

from typing import Any

from riskstream.settings import Settings
from training import train
from training.train import TrainingConfig


def start_training(
    settings: Settings, features_uri: str | None = None, config: TrainingConfig | None = None
) -> str:
    """Open a training execution (the parent run) on a feature-table version; its run id."""
    return train.start_training(settings, features_uri, config)


def train_model(settings: Settings, parent_run_id: str, model: str) -> dict[str, Any]:
    """Train, evaluate and log one model (lr, rf or xgb) as a nested run; its metrics."""
    return train.train_model(settings, parent_run_id, model)


def evaluate_and_register(settings: Settings, parent_run_id: str) -> dict[str, Any]:
    """Register the execution's best model as challenger; ``promote``, ``reason``, ``version``."""
    return train.evaluate_and_register(settings, parent_run_id)


def promote(settings: Settings, version: str) -> dict[str, Any]:
    """Make ``version`` the champion."""
    return train.promote(settings, version)
