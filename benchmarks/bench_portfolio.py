"""A user's own flat table on a stack that has already run the demo, as a user runs it:
`riskstream run` (the synthetic portfolio, default size), then `riskstream run --source csv` on a
150,000-row flat applicant table of this benchmark's own making, on a private state dir and ports.

Rows: the labelled rows that reached training over the labelled rows in the file, whether the demo
portfolio's champion and scores are untouched, and the CSV run's wall time beside the demo run's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from common import ROOT, Row, cli, private_stack_env, ratio_row, write_rows

from riskstream import names
from riskstream.settings import Settings

OBS_DATE = "2024-01-01"


def flat_table(rows: int, seed: int = 17) -> pd.DataFrame:
    """Applicants with a 0/1 label driven by their fields, missing incomes, an unnamed id column
    (the index) and coded categoricals; a few rows with a label that is not 0/1."""
    rng = np.random.default_rng(seed)
    util = rng.beta(2, 3, rows)
    late = rng.poisson(0.4, rows)
    debt = rng.lognormal(-1.0, 0.6, rows)
    logit = -3.0 + 2.5 * util + 0.9 * late + 0.8 * np.minimum(debt, 3)
    label = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(int)
    income = rng.lognormal(8.5, 0.6, rows).round(0)
    income[rng.uniform(size=rows) < 0.2] = np.nan
    frame = pd.DataFrame(
        {
            "SeriousDlq": label.astype(object),
            "Utilization": util.round(4),
            "Late30": late,
            "DebtRatio": debt.round(4),
            "MonthlyIncome": income,
            "Dependents": rng.integers(0, 5, rows),
            "Housing": rng.choice(["A151", "A152", "A153"], rows),
            "age": rng.integers(21, 90, rows),
        },
        index=pd.RangeIndex(1, rows + 1),
    )
    frame.loc[frame.index[:: max(1, rows // 5)], "SeriousDlq"] = 9  # bad rows, reported
    return frame


def _run(env: dict[str, str], *args: str) -> tuple[float, int]:
    riskstream = str(Path(sys.executable).with_name("riskstream"))
    mark = time.perf_counter()
    result = subprocess.run([riskstream, "run", *args], env=env, cwd=ROOT, timeout=3600)
    return time.perf_counter() - mark, result.returncode


def _state(settings: Settings) -> dict[str, Any]:
    """A portfolio's champion (version, run) and its scores objects (key -> ETag)."""
    from mlflow import MlflowClient

    from riskstream.clients import make_client
    from riskstream.storage import split_s3

    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    champion = client.get_model_version_by_alias(names.model_name(settings), names.CHAMPION_ALIAS)
    bucket, prefix = split_s3(names.scores_location(settings) + "/")
    listed = make_client(settings, "s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
    return {
        "champion": (champion.version, champion.run_id, champion.tags.get("parent_run_id")),
        "scores": {o["Key"]: o["ETag"] for o in listed.get("Contents", [])},
    }


def main() -> None:
    args = cli(__doc__ or "")
    rows_in_file = 20_000 if args.quick else 150_000
    accounts = "300" if args.quick else "2000"
    with tempfile.TemporaryDirectory() as state:
        env = private_stack_env(state, "benchpf")
        settings = Settings.from_mapping(env)
        try:
            demo_seconds, demo_code = _run(env, "--accounts", accounts)
            demo = _state(settings.for_portfolio(names.SOURCE_SYNTHETIC))
            table = flat_table(rows_in_file)
            path = Path(state) / "applicants.csv"
            table.to_csv(path)
            mapping = {
                "portfolio": "bench-applicants",
                "entity_id": "Unnamed: 0",
                "label": "SeriousDlq",
                "observation_date": OBS_DATE,
                "performance_months": 24,
                "income": "MonthlyIncome",
                "age": "age",
                "attributes": ["Utilization", "Late30", "DebtRatio", "Dependents", "Housing"],
            }
            (Path(state) / "mapping.json").write_text(json.dumps(mapping))
            csv_seconds, csv_code = _run(
                env,
                "--source",
                "csv",
                "--path",
                str(path),
                "--mapping",
                str(Path(state) / "mapping.json"),
            )
            own = settings.for_portfolio("bench-applicants")
            from mlflow import MlflowClient

            client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
            parent = _state(own)["champion"][2]
            split = json.loads(
                Path(client.download_artifacts(parent, "split/split.json")).read_text()
            )
            trained = int(split["train_rows"]) + int(split["test_rows"])
            after = _state(settings.for_portfolio(names.SOURCE_SYNTHETIC))
        finally:
            riskstream = str(Path(sys.executable).with_name("riskstream"))
            subprocess.run([riskstream, "stop"], env=env, cwd=ROOT, timeout=120)
    labelled = int(table["SeriousDlq"].isin([0, 1]).sum())
    untouched = after == demo
    rows = [
        Row(
            "portfolios",
            f"labelled training+test rows / labelled rows in the file ({labelled:,} of "
            f"{rows_in_file:,} rows), flat table run after the demo",
            trained / labelled,
            "ratio",
            reference="labelled rows in the file",
            reference_value=labelled,
            ratio=trained / labelled,
            target="1.0",
            met=trained == labelled and csv_code == 0,
            note=f"trained on {trained:,}",
            id="portfolio.csv_after_demo.label_rows",
        ),
        Row(
            "portfolios",
            "the demo portfolio's champion version and scores unchanged after the CSV run",
            float(untouched),
            "yes=1",
            reference="champion and scores objects before the CSV run",
            target="yes",
            met=untouched,
            note=f"champion v{demo['champion'][0]}; {len(demo['scores'])} scores objects",
            id="portfolio.isolation",
        ),
        ratio_row(
            "portfolios",
            f"`riskstream run --source csv`, {rows_in_file:,}-row flat table, after the demo",
            csv_seconds,
            "s",
            f"the demo's `riskstream run` ({accounts} accounts) in the same bench",
            demo_seconds,
            at_most=600,
            also=csv_code == 0 and demo_code == 0,
            id="portfolio.csv_150k.seconds",
        ),
    ]
    write_rows(args.out, rows)


if __name__ == "__main__":
    main()
