"""Does every registered model version still have its artifacts? (`riskstream status` asks.)

The registry (SQLite) and the artifacts (the cloud's S3) live in two stores; a version whose
``MLmodel`` cannot be read cannot be loaded, and is named here with what to do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VersionCheck:
    name: str
    version: str
    aliases: tuple[str, ...]
    ok: bool
    reason: str = ""

    def line(self) -> str:
        aliases = f" ({', '.join(self.aliases)})" if self.aliases else ""
        label = f"{self.name} v{self.version}{aliases}"
        if self.ok:
            return f"model      {label}: artifacts present"
        return f"model      {label}: CANNOT LOAD, {self.reason}"


def check_registry(tracking_uri: str) -> list[VersionCheck]:
    """Check that every version of every registered model has a readable ``MLmodel``."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    checks = []
    for model in client.search_registered_models():
        aliases_of: dict[str, list[str]] = {}
        for alias, version in (model.aliases or {}).items():
            aliases_of.setdefault(str(version), []).append(alias)
        for version in client.search_model_versions(f"name='{model.name}'"):
            number = str(version.version)
            aliases = tuple(sorted(aliases_of.get(number, [])))
            uri = f"models:/{model.name}/{number}"
            try:
                names = {
                    info.path.rsplit("/", 1)[-1]
                    for info in mlflow.artifacts.list_artifacts(artifact_uri=uri)
                }
            except Exception as exc:  # any failure to read the artifacts means: cannot load
                checks.append(
                    VersionCheck(model.name, number, aliases, False, _reason(exc, version.source))
                )
                continue
            if "MLmodel" in names:
                checks.append(VersionCheck(model.name, number, aliases, True))
            else:
                checks.append(
                    VersionCheck(
                        model.name,
                        number,
                        aliases,
                        False,
                        _reason(FileNotFoundError("no MLmodel"), version.source),
                    )
                )
    return checks


def _reason(exc: Exception, source: str) -> str:
    return (
        f"its artifacts ({source}) are missing ({type(exc).__name__}: {str(exc)[:120]}); "
        "retrain with `riskstream train`, or restore the cloud's state "
        "(`riskstream cloud import FILE`)"
    )
