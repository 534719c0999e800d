"""Every contract has one home (docs/CONTRACTS.md): what one capability writes and another reads
is spelled in riskstream/ only, and every location is built there.

These tests read the source of the production packages; they fail when a capability spells a
contract value as a literal or assembles an ``s3://`` location itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from riskstream import names
from riskstream.settings import Settings

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]
CAPABILITIES = ("ingestion", "etl", "training", "serving", "infra", "pipeline", "dags")

# Values distinctive enough that a literal equal to one is the contract spelled again. (Common
# words that are also contract values, such as "features" or "obs_date" as a column name, are
# left out: a literal of them is usually not the contract.)
CONTRACT_VALUES = {
    names.TAG_MODEL_TYPE,
    names.TAG_DECISION_REASON,
    names.TAG_PROMOTED_AT,
    names.TAG_REPLACED_BY,
    names.TAG_FEATURES_URI,
    names.TAG_FEATURES_DIGEST,
    names.TAG_FAIRNESS_ARTIFACT,
    names.TAG_MODEL_CARD_ARTIFACT,
    names.BASELINE_ARTIFACT,
    names.FEATURES_ARTIFACT,
    names.FAIRNESS_ARTIFACT,
    names.MODEL_CARD_ARTIFACT,
    names.ETL_BOOKMARKS_PREFIX,
    names.PIPELINE_RUNS_PREFIX,
    names.ORACLE_FILE,
    names.CHAMPION_ALIAS,
    names.CHALLENGER_ALIAS,
    *names.SOURCES,
}
# (file, literal): a literal that equals a contract value and means something else.
NOT_THE_CONTRACT = {
    ("serving/cli.py", names.SOURCE_CSV): "`riskstream sql --format csv`: an output format",
}
LOCATION_BUILDERS = {"s3_uri", "s3_join"}


def _sources() -> list[Path]:
    return sorted(p for pkg in CAPABILITIES for p in (REPO / pkg).rglob("*.py"))


def _docstrings(tree: ast.AST) -> set[int]:
    kinds = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, kinds)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def contract_problems(path: Path, text: str) -> list[str]:
    """Each literal contract value and each hand-built location in one module."""
    rel = path.relative_to(REPO).as_posix() if path.is_absolute() else path.as_posix()
    tree = ast.parse(text)
    docs = _docstrings(tree)
    problems = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docs
            and node.value in CONTRACT_VALUES
            and (rel, node.value) not in NOT_THE_CONTRACT
        ):
            problems.append(f"{rel}:{node.lineno}: the literal {node.value!r}; use names")
        elif isinstance(node, ast.Call):
            func = node.func
            called = getattr(func, "id", None) or getattr(func, "attr", None)
            if called in LOCATION_BUILDERS:
                problems.append(
                    f"{rel}:{node.lineno}: builds a location with {called}(); "
                    "use a location function of riskstream.names"
                )
        elif (
            isinstance(node, ast.JoinedStr)
            and node.values
            and isinstance(node.values[0], ast.Constant)
            and str(node.values[0].value).startswith("s3://")
        ):
            problems.append(
                f"{rel}:{node.lineno}: an s3:// f-string; use a location function of "
                "riskstream.names"
            )
    return problems


def test_no_capability_spells_a_contract_or_builds_a_location() -> None:
    problems = [p for path in _sources() for p in contract_problems(path, path.read_text())]
    assert problems == []


@pytest.mark.parametrize(
    "code",
    [
        'TAGS = {"model_type": "rf"}',
        'uri = f"s3://{bucket}/features"',
        "uri = s3_uri(settings.bucket('features'), 'features')",
        'if source == "taiwan": pass',
        'client.get_model_version_by_alias(name, "champion")',
    ],
)
def test_the_check_finds_a_spelled_contract(code: str) -> None:
    assert contract_problems(Path("serving/example.py"), code)


def test_the_check_passes_the_names() -> None:
    code = "tags = {names.TAG_MODEL_TYPE: kind}\nuri = names.features_location(settings)"
    assert contract_problems(Path("serving/example.py"), code) == []


def test_each_location_has_one_builder_and_is_per_portfolio() -> None:
    """Two portfolios never share a features, scores or monitoring location, a model, an online
    table or an experiment; the raw and curated lake is shared (rows carry their portfolio)."""
    a = Settings(prefix="team").for_portfolio("synthetic")
    b = a.for_portfolio("give-me-credit")
    per_portfolio = (
        names.features_location,
        names.scores_location,
        names.monitoring_location,
        names.oracle_location,
        names.model_name,
        names.online_table,
        names.experiment_name,
    )
    for location in per_portfolio:
        assert location(a) != location(b), location.__name__
        assert location(b) == location(a, portfolio="give-me-credit"), location.__name__
    assert names.raw_events_location(a) == names.raw_events_location(b)
    assert names.curated_location(a) == names.curated_location(b)
    assert names.features_location(b, "2024-01-01") == (
        "s3://team-features/features/give-me-credit/obs_date=2024-01-01"
    )
    assert names.features_table("give-me-credit") == "features_give_me_credit"
    assert names.model_name(b) == "team-give-me-credit-risk"
    assert not any(
        loc(a).endswith("/")
        for loc in (names.raw_events_location, names.curated_location, *per_portfolio[:4])
    )


def test_dag_params_and_cli_choices_come_from_the_contracts() -> None:
    import argparse

    import modelkinds
    from pipeline.dag_builder import pipeline_params
    from pipeline.run import register

    params = pipeline_params()
    assert set(params) == set(names.PIPELINE_DEFAULTS) | {"models"}
    assert params["models"].value == modelkinds.default_models()
    assert list(params["source"].schema["enum"]) == list(names.SOURCES)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    run = parser._subparsers._group_actions[0].choices["run"]  # type: ignore[union-attr]
    source = next(a for a in run._actions if a.dest == "source")
    assert list(source.choices) == list(names.SOURCES)
    assert source.default == names.DEFAULT_SOURCE
