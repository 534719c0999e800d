"""The dashboard's "Models and fairness" section over the session's real MLflow server: each
registered version's adverse impact ratios (from its logged fairness report) and a link to its
model card, which the dashboard serves."""

from __future__ import annotations

import re
import uuid

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from benchmarks.fixtures import features_frame, fit_pipeline, register_champion
from infra.provision import provision
from riskstream.settings import Settings
from serving.dashboard import create_app
from training.fairness import fairness_report

pytestmark = pytest.mark.integration


def _log_like_training(
    settings: Settings, version: str, fairness: dict[str, object], card: str | None
) -> None:
    """What training logs beside a version: the fairness report, the card and their tags."""
    from mlflow import MlflowClient

    client = MlflowClient(settings.mlflow_tracking_uri)
    name = settings.registered_model_name
    run_id = client.get_model_version(name, version).run_id
    client.log_dict(run_id, fairness, "fairness/fairness.json")
    client.set_model_version_tag(name, version, "fairness_artifact", "fairness/fairness.json")
    if card is not None:
        client.log_text(run_id, card, "model_card.md")
        client.set_model_version_tag(name, version, "model_card_artifact", "model_card.md")


@pytest.fixture(scope="module")
def registry(mlflow_settings: Settings) -> tuple[Settings, dict[str, dict[str, object]]]:
    settings = mlflow_settings.with_overrides(prefix=f"dm{uuid.uuid4().hex[:8]}")
    provision(settings)
    train = features_frame(400, pd.Timestamp("2025-12-31").date(), seed=5)
    pipeline = fit_pipeline("lr", train)
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "label": rng.integers(0, 2, 400),
            "sex": rng.choice(["female", "male"], 400),
            "marital_status": rng.choice(["married", "single"], 400),
        }
    )
    p = np.where(frame["sex"] == "male", 0.45, 0.2) + rng.uniform(0, 0.1, 400)
    reports: dict[str, dict[str, object]] = {}
    # v1: an older version, still with a report but no card; v2: the champion with both
    old = register_champion(settings, pipeline, train, "lr", alias="challenger")
    reports[old] = fairness_report(frame, p[::-1], 0.3, ["sex"])
    _log_like_training(settings, old, reports[old], card=None)
    champ = register_champion(settings, pipeline, train, "lr", alias="champion")
    reports[champ] = fairness_report(frame, p, 0.3, ["sex", "marital_status"])
    _log_like_training(settings, champ, reports[champ], card=f"# Model card v{champ}\n")
    return settings, reports


def test_page_shows_air_per_version_and_links_the_card(
    registry: tuple[Settings, dict[str, dict[str, object]]],
) -> None:
    settings, reports = registry
    champ = max(reports, key=int)
    old = min(reports, key=int)
    with TestClient(create_app(settings, cache_seconds=0.0)) as client:
        page = client.get("/")
        assert page.status_code == 200
        html = page.text
        assert "Models and fairness" in html
        # champion first
        assert html.index(f"data-version='{champ}'") < html.index(f"data-version='{old}'")
        for version, report in reports.items():
            for attribute, rows in report["attributes"].items():  # type: ignore[attr-defined]
                assert f"data-version='{version}' data-attribute='{attribute}'" in html
                for r in rows:
                    assert f"data-air='{r['adverse_impact_ratio']:.6f}'" in html
        # the male group is approved far less often: flagged below 0.8 on the champion
        assert any(r["flagged"] for r in reports[champ]["attributes"]["sex"])  # type: ignore[index]
        assert "class='num flag'" in html
        # the champion's card is inline; the older version has none
        assert f"<pre># Model card v{champ}\n</pre>" in html
        assert html.count("class='model-card-inline'") == 1
        links = re.findall(r"href='(models/\d+/card)'", html)
        assert links == [f"models/{champ}/card"]
        card = client.get("/" + links[0])
        assert card.status_code == 200
        assert card.text == f"# Model card v{champ}\n"
        missing = client.get(f"/models/{old}/card")
        assert missing.status_code == 404
        assert "no model card" in missing.text
        assert client.get("/models/999/card").status_code == 404
        listed = client.get("/api/models").json()
        assert [m["version"] for m in listed] == [champ, old]
        assert listed[0]["aliases"] == ["champion"]
        assert listed[0]["fairness"] == reports[champ]
        assert listed[0]["card"] == f"# Model card v{champ}\n"
        assert listed[1]["card"] is None
