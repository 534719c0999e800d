"""`riskstream train`."""

from __future__ import annotations

import argparse
from typing import Any

import modelkinds
from riskstream.commands import CommandError
from riskstream.settings import Settings

# Options that set a TrainingConfig field: flag -> (field, type, help); an option not given
# keeps the config's default.
CONFIG_OPTIONS: dict[str, tuple[str, type, str]] = {
    "--budget": (
        "budget_seconds",
        float,
        "upper guard on search seconds per model (default 900; reported when it bites)",
    ),
    "--max-trials": ("max_trials", int, "search trials per model (default 12)"),
    "--cost-fn": ("cost_fn", float, "cost of a missed defaulter"),
    "--cost-fp": ("cost_fp", float, "cost of a rejected good"),
    "--alpha": (
        "alpha",
        float,
        "one-sided level of DeLong's paired test against the champion (default 0.05)",
    ),
}


def register(subparsers: Any) -> None:
    train = subparsers.add_parser(
        "train",
        help=f"train {' / '.join(k.label for k in modelkinds.kinds())} on a feature table, "
        "track in MLflow, register the best",
        description="One training execution: a parent MLflow run, a nested run per model, the "
        "best model registered as challenger and promoted to champion when it beats the current "
        "one significantly on the same test rows (DeLong's paired test) and passes the gates.",
    )
    train.add_argument(
        "--models",
        type=modelkinds.models_option,
        default=modelkinds.default_models(),
        help=modelkinds.models_help(),
    )
    for flag, (field, kind, text) in CONFIG_OPTIONS.items():
        train.add_argument(flag, dest=field, type=kind, default=None, help=text)
    train.add_argument(
        "--features-uri",
        default=None,
        help="feature table version (default s3://<prefix>-features/features; or one "
        ".../obs_date=YYYY-MM-DD)",
    )
    train.add_argument(
        "--promote-override",
        action="store_true",
        help="promote even when the champion cannot be evaluated or the challenger is over the "
        "serving budget (recorded on the version)",
    )
    train.set_defaults(func=train_cmd)


def train_cmd(args: argparse.Namespace, settings: Settings) -> int:
    import dataclasses

    from training.config import TrainingConfig, TrainingError
    from training.dataset import TrainingDataError
    from training.models import ModelError
    from training.train import run_training

    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    overrides = {field: getattr(args, field) for field, _, _ in CONFIG_OPTIONS.values()}
    overrides["promote_override"] = True if args.promote_override else None
    try:
        config = dataclasses.replace(
            TrainingConfig(models=models), **{k: v for k, v in overrides.items() if v is not None}
        )
        report = run_training(settings, config, args.features_uri)
    except (TrainingDataError, ModelError, TrainingError, ValueError) as exc:
        raise CommandError(f"training failed: {exc}") from None
    print(format_table(report.models))
    decision = report.decision
    print(
        f"\nbest: {decision['model']} -> {settings.registered_model_name} v{decision['version']} "
        f"(alias challenger{', champion' if decision['promote'] else ''})"
    )
    print(f"decision: {decision['reason']}")
    print(f"MLflow run: {report.run_url}")
    return 0


# The comparison table's metric columns: key -> title, printed with four decimals but where
# _FORMATS says otherwise.
METRIC_TITLES = {
    "roc_auc": "ROC-AUC",
    "ks": "KS",
    "gini": "Gini",
    "pr_auc": "PR-AUC",
    "brier": "Brier",
    "log_loss": "LogLoss",
    "ece": "ECE",
    "threshold": "thresh",
    "expected_cost": "cost/acct",
    "fit_seconds": "fit s",
    "oracle_roc_auc": "oracle AUC",
}
_FORMATS = {"model": "{}", "threshold": "{:.3f}", "fit_seconds": "{:.1f}"}


def format_table(rows: list[dict[str, Any]]) -> str:
    """The comparison table printed after training (one line per model, a column per metric
    that any model has)."""
    titles = {"model": "model", **METRIC_TITLES}
    shown = [key for key in titles if any(key in r for r in rows)]
    header = "  ".join(f"{titles[key]:>10}" for key in shown)
    lines = [header, "-" * len(header)]
    for row in rows:
        cells = [
            f"{_FORMATS.get(key, '{:.4f}').format(row[key]):>10}" if key in row else f"{'':>10}"
            for key in shown
        ]
        lines.append("  ".join(cells))
    return "\n".join(lines)
