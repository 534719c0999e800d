"""The registry of model kinds: what each kind declares works end to end, what the pipeline, the
DAG and the CLIs offer follows the registry, and an unknown kind fails loudly."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import re
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import modelkinds
from modelkinds import FitOptions, ModelKind, UnknownModelKind
from tests.light_imports import heavy_loaded_by

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
KNOWN = ", ".join(modelkinds.names())  # how an error lists the known kinds
NUMERIC = ["utilisation", "months_late", "credit_limit"]
CATEGORICAL = ["education"]


def frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A small credit-like table with a missing value or two and a learnable label."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "utilisation": rng.uniform(0, 1.2, n),
            "months_late": rng.integers(0, 6, n).astype(float),
            "credit_limit": rng.lognormal(10, 0.5, n),
            "education": rng.choice(["university", "high_school", "graduate_school"], n),
        }
    )
    x.loc[rng.random(n) < 0.05, "utilisation"] = np.nan
    x["education"] = x["education"].astype(object)
    logit = 2.5 * x["utilisation"].fillna(0.5) + 0.6 * x["months_late"] - 3.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return x, y


def fitted(kind: ModelKind) -> tuple[Any, Any, np.ndarray]:
    """(fitted preprocess, fitted estimator, preprocessed scoring rows) for one kind, trained
    the way the search trains a trial (its fit_trial, then settle)."""
    x, y = frame(400, 1)
    score, _ = frame(60, 2)
    pre = kind.preprocess(NUMERIC, CATEGORICAL, None)
    params = {k: v for k, v in kind.default_params.items() if k != "variant"}
    if "n_estimators" in params:  # keep the test quick; the declaration is checked below
        params["n_estimators"] = 30
    options = FitOptions(pos_weight=2.0, n_jobs=1, seed=3, threads=1, early_stopping_rounds=5)
    estimator = kind.estimator(params, options)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Bins whose width are too small")
        t = pre.fit_transform(x)
    found = kind.fit_trial(estimator, t[:300], y[:300], t[300:], y[300:], options)
    assert set(found) <= set(kind.search_space), found
    kind.settle(estimator)
    return pre, estimator, np.asarray(pre.transform(score), dtype=np.float64)


# ---- every kind registered, each declaring everything ----------------------------------------
def modules_in_order() -> list[str]:
    """The kind modules of the package, read from its folder, in their declared order."""
    declared = []
    for path in (REPO / "modelkinds").glob("*.py"):
        if path.stem in ("__init__", "base") or path.stem.startswith("_"):
            continue
        kind = importlib.import_module(f"modelkinds.{path.stem}").KIND
        declared.append((kind.order, kind.name))
    return [name for _, name in sorted(declared)]


def test_every_kind_module_is_registered_in_its_order() -> None:
    modules = sorted(
        p.stem
        for p in (REPO / "modelkinds").glob("*.py")
        if p.stem not in ("__init__", "base") and not p.stem.startswith("_")
    )
    assert sorted(modelkinds.names()) == modules
    assert {"lr", "rf", "xgb"} <= set(modelkinds.names())
    orders = [k.order for k in modelkinds.kinds()]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)
    assert modelkinds.default_models() == ",".join(modules_in_order())


@pytest.mark.parametrize("name", modelkinds.names())
def test_each_kind_declares_what_training_and_serving_need(name: str) -> None:
    kind = modelkinds.get(name)
    assert kind.name == name and kind.label and kind.reason_method
    assert kind.estimator_classes
    # the first trial is a point of the search space's parameters (the refit takes either)
    assert set(kind.default_params) <= set(kind.search_space), kind.default_params
    assert all(len(values) >= 1 for values in kind.search_space.values())
    pre, estimator, xt = fitted(kind)
    assert modelkinds.kind_of(estimator) is kind
    assert kind.recognises(estimator)
    # the compiled scorer: the estimator's own probability, and the batch job's reasons
    compiled = kind.compile(estimator)
    np.testing.assert_allclose(compiled.proba(xt), estimator.predict_proba(xt)[:, 1], rtol=1e-6)
    batch = np.asarray(kind.contributions(estimator, xt, True))
    assert batch.shape == xt.shape
    assert np.abs(batch).sum() > 0  # a kind that explains nothing is a bug
    np.testing.assert_allclose(compiled.contribs(xt), batch, rtol=1e-5, atol=2e-6)
    assert compiled.reason_method.startswith(kind.reason_method)
    # a preprocessed column per input value: scoring sums them back to the source features
    assert len(pre.get_feature_names_out()) == xt.shape[1]


def test_the_variant_picks_the_linear_preprocessing_and_unknown_variants_are_refused() -> None:
    lr = modelkinds.get("lr")
    x, _ = frame(200, 4)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Bins whose width are too small")
        scaled = lr.preprocess(NUMERIC, CATEGORICAL, "scaled").fit_transform(x)
        binned = lr.preprocess(NUMERIC, CATEGORICAL, "binned").fit_transform(x)
        default = lr.preprocess(NUMERIC, CATEGORICAL, None).fit_transform(x)
    assert binned.shape[1] > scaled.shape[1]
    np.testing.assert_array_equal(default, scaled)
    with pytest.raises(ValueError, match="unknown lr variant 'wide'"):
        lr.preprocess(NUMERIC, CATEGORICAL, "wide")


def test_importing_the_registry_loads_no_heavy_library() -> None:
    heavy = {"numpy", "pandas", "sklearn", "scipy", "xgboost", "pyarrow", "boto3"}
    assert heavy_loaded_by("import modelkinds\nassert modelkinds.names()", heavy) == []


# ---- an unknown kind fails loudly, naming the known ones -------------------------------------
def test_an_unknown_name_names_the_known_kinds() -> None:
    with pytest.raises(UnknownModelKind, match=f"unknown model 'gbm'; choose from {KNOWN}$"):
        modelkinds.get("gbm")
    with pytest.raises(UnknownModelKind, match="'gbm'"):
        modelkinds.parse_models("lr, gbm")
    assert modelkinds.parse_models(" lr, xgb ,") == ("lr", "xgb")

    from training.models import ModelError, check_kind

    with pytest.raises(ModelError, match=f"choose from {KNOWN}$"):
        check_kind("gbm")


def test_an_estimator_no_kind_recognises_is_refused_not_scored_without_reasons() -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.naive_bayes import GaussianNB
    from sklearn.pipeline import Pipeline

    from serving.compiled import compile_pipeline
    from serving.scoring import ScoringConfig, contributions, explain, model_kind

    x, y = frame(200, 5)
    pipeline = Pipeline(
        [
            ("preprocess", ColumnTransformer([("num", "passthrough", NUMERIC[1:])])),
            ("model", GaussianNB()),
        ]
    ).fit(x, y)
    message = r"no model kind recognises the estimator GaussianNB; known kinds: lr \("
    with pytest.raises(UnknownModelKind, match=message):
        modelkinds.kind_of(pipeline.named_steps["model"])
    with pytest.raises(UnknownModelKind, match=message):
        model_kind(pipeline.named_steps["model"])
    with pytest.raises(UnknownModelKind, match=message):
        contributions(pipeline.named_steps["model"], x[NUMERIC[1:]].to_numpy())
    with pytest.raises(UnknownModelKind, match=message):
        explain(pipeline, x, ScoringConfig())
    with pytest.raises(UnknownModelKind, match=message):
        compile_pipeline(pipeline)
    # without reasons nothing needs explaining: the scores themselves still come out
    assert len(explain(pipeline, x, ScoringConfig(), with_reasons=False).pd) == len(x)


# ---- a kind added as a module is picked up everywhere ----------------------------------------
TOY_MODULE = """
import dataclasses

import modelkinds.lr

KIND = dataclasses.replace(
    modelkinds.lr.KIND,
    name="toy",
    label="Toy Logistic",
    order=99,
    estimator_classes=("ToyClassifier",),
)
"""


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelKind]:
    """A package of kinds holding one module, discovered like modelkinds/ and registered."""
    package = tmp_path / "toykinds"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "toy.py").write_text(textwrap.dedent(TOY_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    found = modelkinds.discover("toykinds")
    assert list(found) == ["toy"]
    monkeypatch.setitem(modelkinds.REGISTRY, "toy", found["toy"])
    yield found["toy"]
    for name in [m for m in sys.modules if m.startswith("toykinds")]:
        del sys.modules[name]


def test_a_new_kind_gets_its_training_branch_step_and_dag_param(toy: ModelKind) -> None:
    from pipeline.asl import load_definition, load_workflow
    from pipeline.dag_builder import pipeline_params
    from pipeline.steps import STEPS, default_params

    before = [name for name in modelkinds.names() if name != "toy"]
    branches = load_definition()["States"]["TrainModels"]["Branches"]
    assert [b["StartAt"] for b in branches] == [f"Train{n.upper()}" for n in before] + ["TrainTOY"]
    assert "TrainLR" in [b["StartAt"] for b in branches]
    task = branches[-1]["States"]["TrainTOY"]
    assert task["Parameters"]["HyperParameters"] == {"step": "train_toy"}
    assert task["Parameters"]["TrainingJobName"] == "riskstream-train-toy"
    workflow = load_workflow()
    assert workflow.parallel_groups["TrainModels"][-1] == "TrainTOY"
    assert workflow.steps["TrainTOY"].task_id == "train_toy"
    assert ("TrainTOY", "EvaluateAndRegister") in workflow.edges
    assert STEPS["train_toy"].__name__ == "train_toy" and "train_toy" in set(STEPS)
    everything = ",".join([*before, "toy"])
    assert default_params()["models"] == everything

    models = pipeline_params()["models"]
    assert models.value == everything
    pattern = re.compile(models.schema["pattern"])
    assert pattern.match("toy") and pattern.match("lr,toy")
    assert not pattern.match("lr,nope") and not pattern.match("toy,")


def test_a_new_kind_is_offered_by_the_clis_and_trains_by_name(toy: ModelKind) -> None:
    from pipeline.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["train", "--models", "toy,lr"])
    assert args.models == "toy,lr"
    assert parser.parse_args(["train"]).models.endswith(",toy")
    assert parser.parse_args(["train"]).models.startswith("lr,")
    assert parser.parse_args(["run", "--models", "toy"]).models == "toy"
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--models", "lr,nope"])

    from training.models import build_estimator, default_params, search_space

    assert default_params("toy") == dict(modelkinds.get("lr").default_params)
    assert search_space("toy")["C"] == list(modelkinds.get("lr").search_space["C"])
    assert type(build_estimator("toy", {"C": 0.1}, pos_weight=1.0)).__name__ == (
        "LogisticRegression"
    )


def test_the_models_option_error_names_the_known_kinds() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=f"choose from {KNOWN}$"):
        modelkinds.models_option("lr,nope")


# ---- the rules discovery enforces -------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        ("X = 1\n", TypeError, "declares no model kind"),
        (
            "import dataclasses, modelkinds.rf\n"
            "KIND = dataclasses.replace(modelkinds.rf.KIND, name='other')\n",
            ValueError,
            "a kind's module is named after it",
        ),
    ],
)
def test_discovery_refuses_a_module_that_is_not_one_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, error: type, message: str
) -> None:
    package = tmp_path / "badkinds"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "broken.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(error, match=message):
            modelkinds.discover("badkinds")
    finally:
        for name in [m for m in sys.modules if m.startswith("badkinds")]:
            del sys.modules[name]


def test_a_kind_name_must_be_a_plain_lower_case_word() -> None:
    with pytest.raises(ValueError, match="lower-case letters and digits"):
        dataclasses.replace(modelkinds.get("lr"), name="Train-LR")


def test_the_committed_asl_holds_one_template_branch_expanded_per_kind() -> None:
    from pipeline.asl import ASL_PATH, expand_kinds, load_definition

    raw = json.loads(ASL_PATH.read_text())
    assert len(raw["States"]["TrainModels"]["Branches"]) == 1
    expanded = load_definition()
    assert expanded == expand_kinds(raw)
    states = [b["StartAt"] for b in expanded["States"]["TrainModels"]["Branches"]]
    assert states == [f"Train{name.upper()}" for name in modelkinds.names()]
    generated = json.dumps(expanded["States"]["TrainModels"]["Branches"])
    assert "{kind}" not in generated and "{KIND}" not in generated
