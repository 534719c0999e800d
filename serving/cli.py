"""`riskstream score` and `riskstream sql "<query>"`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from riskstream.commands import user_errors
from riskstream.settings import Settings


def register(subparsers: Any) -> None:
    score = subparsers.add_parser(
        "score",
        help="score the latest feature partition with the champion (writes scores + PSI)",
        description="Load the registry's champion, score the latest feature partition on or "
        "before --date, write s3://<prefix>-scores/scores/score_date=<date>/ (replacing it), "
        "register it in the Glue catalog and store the PSI report beside it.",
    )
    score.add_argument("--date", default=None, help="score date YYYY-MM-DD (default: today, UTC)")
    score.set_defaults(func=score_cmd)

    sql = subparsers.add_parser(
        "sql",
        help='SQL over the scores and feature tables, e.g. "select risk_tier, count(*) '
        'from scores group by 1"',
        description="DuckDB over the Parquet tables the Glue catalog lists (scores, features, "
        "curated_*), read from the cloud's S3. Answered by the dashboard's warm connection "
        "when the dashboard of this portfolio is up (read-only: one SELECT), else in-process.",
    )
    sql.add_argument("query", help="one SQL statement; tables are named as in the Glue catalog")
    sql.add_argument("--format", choices=("table", "csv", "json"), default="table")
    sql.add_argument("--max-rows", type=int, default=100, help="rows to print (default 100)")
    sql.add_argument(
        "--in-process",
        action="store_true",
        help="skip the dashboard's warm connection and read S3 in this process",
    )
    sql.set_defaults(func=sql_cmd)


def score_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from serving.batch import ScoringJobError
    from serving.registry import ChampionError
    from serving.tasks import score

    with user_errors(ScoringJobError, ChampionError):
        report = score(settings, args.date)
    print(json.dumps(report, indent=2))
    if report["psi_flag"]:
        print(f"WARNING: population shift (PSI > 0.25); see {report['psi_uri']}")
    return 0


def sql_cmd(args: argparse.Namespace, settings: Settings) -> int:
    import logging

    from serving.sql import DashboardUnavailable, SqlError, ask_dashboard, run_sql

    with user_errors(SqlError):
        try:
            if args.in_process:
                raise DashboardUnavailable("--in-process")
            shown, truncated = ask_dashboard(settings, args.query, max_rows=args.max_rows)
            more = "more rows" if truncated else ""
        except DashboardUnavailable as exc:
            logging.getLogger(__name__).debug("running in-process: %s", exc)
            frame = run_sql(settings, args.query)
            shown = frame.head(args.max_rows)
            more = f"{len(frame) - len(shown)} more rows" if len(frame) > len(shown) else ""
    if args.format == "csv":
        print(shown.to_csv(index=False), end="")
    elif args.format == "json":
        print(shown.to_json(orient="records", date_format="iso"))
    else:
        print(shown.to_string(index=False) if len(shown) else "(no rows)")
        if more:
            print(f"... {more} (use --max-rows)")
    return 0
