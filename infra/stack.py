"""Every background service riskstream manages, in start order (stopped in reverse)."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from infra.services import ManagedService
from riskstream.settings import Settings

# "module:function" -> a function(settings) returning a ManagedService. A package that adds a
# service (MLflow, Airflow, API, dashboard) adds its factory here.
SERVICE_FACTORIES: tuple[str, ...] = (
    "infra.cloud:cloud_service",
    "training.service:mlflow_service",
    "infra.airflow:airflow_service",
    "serving.service:api_service",
    "serving.service:dashboard_service",
)


def all_services(settings: Settings) -> list[ManagedService]:
    services = []
    for ref in SERVICE_FACTORIES:
        module_name, func_name = ref.split(":")
        if module_name == "infra.cloud" and settings.target != "embedded":
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name in (module_name, module_name.split(".")[0]):
                continue
            raise
        factory: Callable[[Settings], ManagedService] | None = getattr(module, func_name, None)
        if factory is not None:
            services.append(factory(settings))
    return services
