"""The registered models as the dashboard shows them: each version's aliases, metrics, decision,
fairness report (adverse impact ratio per group of each protected attribute) and model card.

Training logs, per registered version, ``fairness/fairness.json`` and ``model_card.md`` in the
version's run (tags ``fairness_artifact`` and ``model_card_artifact`` name them). This module
reads them back: :func:`registered_models` and :func:`model_card_text` talk to the MLflow server
(artifacts are proxied by it, no S3 credentials needed); :func:`models_html` is pure and renders
the dashboard's "Models and fairness" section.
"""

from __future__ import annotations

import html
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from riskstream import names
from riskstream.names import CHAMPION_ALIAS
from riskstream.settings import Settings

logger = logging.getLogger(__name__)

FAIRNESS_ARTIFACT = names.FAIRNESS_ARTIFACT
CARD_ARTIFACT = names.MODEL_CARD_ARTIFACT
SHOWN_TAGS = (
    names.TAG_MODEL_TYPE,
    names.TAG_PORTFOLIO,
    names.TAG_ROC_AUC,
    "roc_auc_ci95",
    names.TAG_DECISION,
    names.TAG_THRESHOLD,
)


class ModelCardMissing(LookupError):
    """The version or its model card does not exist."""


def _client(settings: Settings) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(
        tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri
    )


def _artifact_text(client: Any, run_id: str | None, path: str) -> str | None:
    """One artifact of a run as text, or None when the run or the artifact is missing."""
    if not run_id:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, path, tmp)
        except Exception as exc:  # missing artifact, deleted run: shown as "not logged"
            logger.info("run %s has no %s: %s", run_id, path, exc)
            return None
        return Path(local).read_text(encoding="utf-8")


def registered_models(settings: Settings, limit: int = 10) -> list[dict[str, Any]]:
    """The newest ``limit`` versions of the registered model, champion first, each with its
    aliases, shown tags, fairness report (None when not logged) and whether a card exists."""
    client = _client(settings)
    name = settings.registered_model_name
    versions = list(client.search_model_versions(f"name = '{name}'"))
    versions = sorted(versions, key=lambda v: int(v.version), reverse=True)[:limit]
    # search_model_versions leaves the aliases out; the registered model has them all
    by_version: dict[str, list[str]] = {}
    if versions:
        for alias, version in (client.get_registered_model(name).aliases or {}).items():
            by_version.setdefault(str(version), []).append(alias)
    out: list[dict[str, Any]] = []
    for mv in versions:
        aliases = sorted(by_version.get(str(mv.version), []))
        tags = dict(mv.tags or {})
        raw = _artifact_text(
            client, mv.run_id, tags.get(names.TAG_FAIRNESS_ARTIFACT, FAIRNESS_ARTIFACT)
        )
        fairness = None
        if raw is not None:
            try:
                fairness = json.loads(raw)
            except ValueError:
                logger.warning("v%s: %s is not JSON", mv.version, FAIRNESS_ARTIFACT)
        card_path = tags.get(names.TAG_MODEL_CARD_ARTIFACT)
        out.append(
            {
                "version": str(mv.version),
                "aliases": aliases,
                "tags": {k: tags[k] for k in SHOWN_TAGS if k in tags},
                "fairness": fairness,
                "has_card": card_path is not None,
                # the champion's card is shown inline; the others are one click away
                "card": (
                    _artifact_text(client, mv.run_id, card_path)
                    if card_path is not None and CHAMPION_ALIAS in aliases
                    else None
                ),
            }
        )
    out.sort(key=lambda m: (CHAMPION_ALIAS not in m["aliases"], -int(m["version"])))
    return out


def model_card_text(settings: Settings, version: str) -> str:
    """The model card (markdown) of ``version``; :class:`ModelCardMissing` when there is none."""
    from mlflow.exceptions import MlflowException

    if not version.isdigit():
        raise ModelCardMissing(f"version={version!r} is not a version number")
    client = _client(settings)
    try:
        mv = client.get_model_version(settings.registered_model_name, version)
    except MlflowException as exc:
        raise ModelCardMissing(
            f"{settings.registered_model_name} has no version {version}: {exc}"
        ) from exc
    path = (mv.tags or {}).get(names.TAG_MODEL_CARD_ARTIFACT, CARD_ARTIFACT)
    text = _artifact_text(client, mv.run_id, path)
    if text is None:
        raise ModelCardMissing(
            f"version {version} has no model card ({path}); it was registered before cards "
            "were logged: retrain with `riskstream train`"
        )
    return text


def _fmt(value: Any, digits: int = 3) -> str:
    return "" if value is None else f"{float(value):.{digits}f}"


def _fairness_html(version: str, fairness: dict[str, Any] | None) -> str:
    if fairness is None:
        return "<p>No fairness report logged for this version.</p>"
    attributes = fairness.get("attributes") or {}
    if not attributes:
        return "<p>No protected attribute in the test rows: no fairness report.</p>"
    flag_below = float(fairness.get("air_flag_below", 0.8))
    parts = []
    for attribute, rows in attributes.items():
        body = []
        for r in rows:
            flagged = bool(r.get("flagged"))
            air = r.get("adverse_impact_ratio")
            cls = " class='num flag'" if flagged else " class='num'"
            body.append(
                "<tr>"
                f"<td>{html.escape(str(r.get('group')))}</td>"
                f"<td class='num'>{int(r.get('rows', 0)):,}</td>"
                f"<td class='num'>{_fmt(r.get('approval_rate'))}</td>"
                f"<td{cls} data-air='{_fmt(air, 6)}'>{_fmt(air)}</td>"
                f"<td class='num'>{_fmt(r.get('mean_pd'))}</td>"
                f"<td class='num'>{_fmt(r.get('default_rate'))}</td>"
                f"<td>{'below ' + str(flag_below) if flagged else ''}</td>"
                "</tr>"
            )
        parts.append(
            f"<table class='fairness' data-version='{html.escape(version)}' "
            f"data-attribute='{html.escape(attribute)}'>"
            f"<caption>{html.escape(attribute)}</caption>"
            "<tr><th>group</th><th class='num'>rows</th><th class='num'>approval rate</th>"
            "<th class='num'>adverse impact ratio</th><th class='num'>mean PD</th>"
            "<th class='num'>default rate</th><th>flag</th></tr>" + "".join(body) + "</table>"
        )
    flags = fairness.get("flags") or []
    note = "; ".join(html.escape(str(f)) for f in flags) if flags else "none"
    return "".join(parts) + f"<p>Flags: {note}.</p>"


def models_html(models: list[dict[str, Any]] | None, error: str | None = None) -> str:
    """The "Models and fairness" section: one block per version, champion first."""
    head = "<section class='card wide' id='models'><h2>Models and fairness</h2>"
    if error is not None:
        reason = html.escape(error)
        return head + f"<p class='flag'>cannot read the model registry: {reason}</p></section>"
    if not models:
        return head + "<p>No registered model yet: run `riskstream train`.</p></section>"
    blocks = []
    for m in models:
        version = html.escape(m["version"])
        aliases = ", ".join(html.escape(a) for a in m["aliases"]) or "no alias"
        tags = m["tags"]
        facts = " - ".join(
            html.escape(f"{k.replace('_', ' ')} {tags[k]}") for k in SHOWN_TAGS if k in tags
        )
        card = (
            f"<a class='model-card' href='models/{version}/card'>model card</a>"
            if m["has_card"]
            else "no model card"
        )
        inline = (
            f"<details open class='model-card-inline'><summary>Model card v{version}</summary>"
            f"<pre>{html.escape(m['card'])}</pre></details>"
            if m.get("card")
            else ""
        )
        blocks.append(
            f"<div class='model' data-version='{version}'>"
            f"<h3>v{version} ({aliases})</h3><p>{facts} - {card}</p>"
            f"{_fairness_html(m['version'], m['fairness'])}{inline}</div>"
        )
    return head + "".join(blocks) + "</section>"
