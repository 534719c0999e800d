"""Load the champion (registered model alias ``champion``) from the MLflow registry.

I/O module: talks to the MLflow tracking server at ``settings.mlflow_tracking_uri``. Artifacts
are proxied by the server, so no S3 credentials are needed here.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from riskstream import names
from riskstream.names import CHAMPION_ALIAS
from riskstream.scorescale import ScoreScale
from riskstream.settings import Settings
from serving.scoring import ScoringConfig, model_kind, source_features, split_pipeline

logger = logging.getLogger(__name__)

BASELINE_PATH = names.BASELINE_ARTIFACT


class ChampionError(RuntimeError):
    """No usable champion: the message says what is missing and what to do."""


@dataclass
class Champion:
    """A loaded champion: the fitted pipeline plus what the registry says about it."""

    name: str
    version: str
    run_id: str | None
    pipeline: Any
    tags: dict[str, str]
    baseline: dict[str, Any] | None
    input_schema: list[dict[str, Any]] = field(default_factory=list)
    loaded_at: float = field(default_factory=time.time)
    scale: ScoreScale = field(default_factory=ScoreScale)  # Settings.score_scale

    @property
    def threshold(self) -> float:
        raw = self.tags.get(names.TAG_THRESHOLD)
        try:
            value = float(raw) if raw is not None else 0.5
        except ValueError:
            logger.warning("champion v%s: tag threshold=%r is not a number; using 0.5", self, raw)
            return 0.5
        if not 0.0 < value < 1.0:
            logger.warning("champion v%s: threshold=%s is outside (0, 1); using 0.5", self, value)
            return 0.5
        return value

    @property
    def model_type(self) -> str:
        return self.tags.get(names.TAG_MODEL_TYPE) or model_kind(split_pipeline(self.pipeline)[1])

    @property
    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for key in ("roc_auc", "ks"):
            try:
                out[key] = float(self.tags[key])
            except (KeyError, ValueError):
                continue
        return out

    @property
    def features(self) -> list[str]:
        return source_features(split_pipeline(self.pipeline)[0])

    def config(self, base: ScoringConfig | None = None) -> ScoringConfig:
        """``base`` (default: scoring on the settings' scale) with this champion's threshold."""
        base = base or ScoringConfig.for_scale(self.scale)
        return dataclasses.replace(base, threshold=self.threshold)

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "alias": CHAMPION_ALIAS,
            "run_id": self.run_id,
            names.TAG_PORTFOLIO: self.tags.get(names.TAG_PORTFOLIO),
            names.TAG_MODEL_TYPE: self.model_type,
            "threshold": self.threshold,
            "metrics": self.metrics,
            names.TAG_DECISION_REASON: self.tags.get(names.TAG_DECISION_REASON),
            "features": self.features,
            "loaded_at": self.loaded_at,
        }


def _client(settings: Settings) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(
        tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri
    )


def champion_version(settings: Settings) -> str | None:
    """The version the alias points at now, or None when there is no champion yet."""
    from mlflow.exceptions import MlflowException

    try:
        mv = _client(settings).get_model_version_by_alias(
            settings.registered_model_name, CHAMPION_ALIAS
        )
    except MlflowException as exc:
        if _not_found(exc):
            return None
        raise
    return str(mv.version)


def load_champion(settings: Settings) -> Champion:
    """Load the version aliased ``champion``, its tags, signature and PSI baseline."""
    import mlflow
    from mlflow.exceptions import MlflowException

    name = settings.registered_model_name
    client = _client(settings)
    try:
        mv = client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    except MlflowException as exc:
        if _not_found(exc):
            raise ChampionError(
                f"no model version of {name!r} has the alias {CHAMPION_ALIAS!r} in the registry "
                f"at {settings.mlflow_tracking_uri}; train and promote one first "
                "(riskstream train, or the pipeline DAG)"
            ) from None
        raise ChampionError(
            f"cannot read the registry at {settings.mlflow_tracking_uri}: {exc}"
        ) from None
    trained_on = (mv.tags or {}).get(names.TAG_PORTFOLIO)
    if trained_on and trained_on != settings.portfolio:
        raise ChampionError(
            f"{name} v{mv.version} was trained on portfolio {trained_on!r}, not "
            f"{settings.portfolio!r}: a portfolio is scored by its own champion only"
        )
    uri = f"models:/{name}/{mv.version}"
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    started = time.perf_counter()
    pipeline = mlflow.sklearn.load_model(uri)
    split_pipeline(pipeline)  # fail early with a clear message if the shape is wrong
    schema: list[dict[str, Any]] = []
    try:
        info = mlflow.models.get_model_info(uri)
        if info.signature is not None and info.signature.inputs is not None:
            schema = [
                {"name": c.get("name"), "type": c.get("type"), "required": c.get("required", True)}
                for c in info.signature.inputs.to_dict()
            ]
    except Exception as exc:  # the signature is optional: fall back to the pipeline's columns
        logger.warning("champion %s v%s: no readable signature (%s)", name, mv.version, exc)
    baseline = _load_baseline(client, mv.run_id) if mv.run_id else None
    champion = Champion(
        name=name,
        version=str(mv.version),
        run_id=mv.run_id,
        pipeline=pipeline,
        tags=dict(mv.tags or {}),
        baseline=baseline,
        input_schema=schema,
        scale=settings.score_scale,
    )
    logger.info(
        "loaded champion %s (%s, threshold %.3f) in %.1fs",
        champion,
        champion.model_type,
        champion.threshold,
        time.perf_counter() - started,
    )
    return champion


def _load_baseline(client: Any, run_id: str) -> dict[str, Any] | None:
    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = client.download_artifacts(run_id, BASELINE_PATH, tmp)
            return json.loads(Path(local).read_text())  # type: ignore[no-any-return]
    except Exception as exc:  # a missing baseline disables PSI, it does not stop scoring
        logger.warning(
            "run %s has no readable %s (%s); PSI will be skipped", run_id, BASELINE_PATH, exc
        )
        return None


def _not_found(exc: Exception) -> bool:
    code = getattr(exc, "error_code", "")
    return code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE") or (
        "not found" in str(exc).lower()
    )
