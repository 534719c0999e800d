"""The analyst dashboard on 200,000 scored accounts of this benchmark's own making.

A private moto cloud; an XGBoost champion fitted on synthetic features; three monthly feature
partitions of the same 200,000 accounts (drifting towards arrears), each scored by the real
batch job (``serving.batch.run_batch``: scores, catalog partition, PSI report); the dashboard
as a real service (uvicorn, 127.0.0.1). Rows:

- ``dashboard.view.p95_ms``: the server's own time (its ``Server-Timing`` header) of every
  view's data request, p95 over all views, dates and tier filters; reference: the same view
  queries on an in-process DuckDB over a local copy of the same Parquet;
- ``sql.query.p50_ms``: a group-by over the scores asked through the dashboard's warm
  connection (what ``riskstream sql`` does when the dashboard is up), p50, over the same query
  on an in-process DuckDB reading the same Parquet from local disk (goal: ratio <= 3);
- ``sql.cli.cold_ms``: the old in-process path (catalog + S3 read per query), for scale;
- ``drift.features``: inputs with a PSI in each scoring date's report / inputs of the champion
  (the lowest over the dates).
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from common import Row, cli, local_cloud, ratio_row, write_rows
from fixtures import baseline_for, features_frame, fit_pipeline, write_features

from infra.provision import provision
from infra.services import free_port
from riskstream import names
from serving import views
from serving.batch import run_batch
from serving.processes import dashboard_service
from serving.registry import Champion
from serving.sql import ask_dashboard, run_sql
from serving.storage import read_monitoring, s3_filesystem

OBS_DATES = (dt.date(2026, 1, 31), dt.date(2026, 2, 28), dt.date(2026, 3, 31))
TIERS = ("Prime", "Near-prime", "Subprime", "High risk")
GROUP_BY = "select risk_tier, count(*) as n, avg(pd) as mean_pd, sum(exposure) as exposure from scores group by 1 order by 1"  # noqa: E501


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def make_portfolio(settings: Any, accounts: int) -> Champion:
    """Three scored months of ``accounts`` accounts; the champion that scored them."""
    train = features_frame(5_000, dt.date(2025, 12, 31), seed=1)
    pipeline = fit_pipeline("xgb", train)
    champion = Champion(
        name=names.model_name(settings),
        version="1",
        run_id=None,
        pipeline=pipeline,
        tags={names.TAG_MODEL_TYPE: "xgb", names.TAG_THRESHOLD: "0.3"},
        baseline=baseline_for(pipeline, train),
    )
    ids = features_frame(accounts, OBS_DATES[0], seed=2)["account_id"]
    for i, obs in enumerate(OBS_DATES):
        frame = features_frame(accounts, obs, seed=2 + i, shift=0.5 * i)
        frame["account_id"] = ids
        write_features(settings, frame, obs)
        run_batch(settings, obs + dt.timedelta(days=1), champion=champion)
    return champion


def server_ms(url: str) -> float:
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}")
        timing = response.headers["Server-Timing"]
    return float(timing.split("dur=")[1])


def view_requests(dates: list[str], account: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Every view with each date and with and without a tier filter."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    for tiers in ([], ["High risk"], ["Prime", "Subprime"]):
        out.append(("overview", "overview", {"tier": tiers}))
        out.append(("delinquency", "delinquency", {"tier": tiers}))
        out.append(("vintage", "vintage", {"tier": tiers}))
        out.append(("drift", "drift", {}))
        out.append(("account", "account", {"id": account}))
        out.append(("events", "events", {"id": account}))
        for day in dates:
            for name in ("distribution", "segments", "accounts", "roll_rates"):
                out.append((name, name, {"tier": tiers, "date": day}))
            out.append(("migration", "migration", {"tier": tiers, "to": day, "from": dates[0]}))
    return out


def local_reference(settings: Any, folder: Path) -> Any:
    """An in-process DuckDB over a local copy of the same scores and features Parquet."""
    import duckdb
    import pyarrow.fs as pafs

    fs = s3_filesystem(settings)
    for table, location in (
        ("scores", names.scores_location(settings)),
        ("features", names.features_location(settings)),
    ):
        pafs.copy_files(
            location.removeprefix("s3://"),
            str(folder / table),
            source_filesystem=fs,
            destination_filesystem=pafs.LocalFileSystem(),
        )
    con = duckdb.connect()
    for table, key in (("scores", names.SCORE_DATE), ("features", names.OBS_DATE)):
        con.execute(
            f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{folder / table}/*/*.parquet', "
            f"hive_partitioning = true, hive_types = {{'{key}': DATE}}, union_by_name = true)"
        )
    return con


def reference_ms(
    con: Any,
    request: tuple[str, str, dict[str, Any]],
    reports: list,
    tables: list[str],
    portfolio: str,
) -> float:
    name, _, p = request
    tiers = p.get("tier") or None
    start = time.perf_counter()
    if name == "overview":
        views.overview(con, tiers)
    elif name == "delinquency":
        views.delinquency(con, tiers)
    elif name == "vintage":
        views.vintage(con, tiers)
    elif name == "drift":
        views.drift(reports)
    elif name == "account":
        views.account(con, p["id"])
    elif name == "events":
        views.account_events(con, p["id"], tables, portfolio)
    elif name == "migration":
        views.migration(con, p["from"], p["to"], tiers)
    else:
        getattr(views, name)(con, p["date"], tiers)
    return 1000 * (time.perf_counter() - start)


def main() -> None:
    args = cli(__doc__ or "")
    accounts = 20_000 if args.quick else 200_000
    rows: list[Row] = []
    with local_cloud("dash") as cloud, tempfile.TemporaryDirectory() as tmp:
        provision(cloud)
        started = time.perf_counter()
        champion = make_portfolio(cloud, accounts)
        print(f"portfolio scored in {time.perf_counter() - started:.0f}s", flush=True)
        settings = cloud.with_overrides(
            dashboard_url=f"http://127.0.0.1:{free_port()}", state_dir=Path(tmp) / "state"
        )
        service = dashboard_service(settings)
        service.up()
        try:
            base = settings.dashboard_url
            meta = json.loads(urllib.request.urlopen(base + "/api/meta", timeout=300).read())
            dates = meta["score_dates"]
            assert len(dates) == len(OBS_DATES), meta
            account = json.loads(
                urllib.request.urlopen(base + "/api/views/accounts", timeout=60).read()
            )["rows"][0][0]
            requests = view_requests(dates, account)
            served: list[float] = []
            for _ in range(3):
                for _, name, params in requests:
                    query = urllib.parse.urlencode(params, doseq=True)
                    served.append(server_ms(f"{base}/api/views/{name}?{query}"))
            reports = read_monitoring(settings)
            con = local_reference(settings, Path(tmp) / "local")
            tables = [r[0] for r in con.execute("SHOW TABLES").fetchall()]
            local = [
                reference_ms(con, r, reports, tables, settings.portfolio)
                for _ in range(3)
                for r in requests
            ]
            p95, ref95 = percentile(served, 95), percentile(local, 95)
            rows.append(
                ratio_row(
                    "dashboard",
                    f"server time of every view's data request, p95 ({len(served)} "
                    f"requests, {len(set(r[0] for r in requests))} views, {accounts:,} accounts "
                    f"x {len(dates)} dates)",
                    round(p95, 2),
                    "ms",
                    "the same view queries, in-process DuckDB on local Parquet, p95",
                    round(ref95, 2),
                    at_most=500,
                    note=f"max {max(served):.1f} ms, p50 {percentile(served, 50):.1f} ms",
                    id="dashboard.view.p95_ms",
                )
            )

            warm, inproc = [], []
            for _ in range(25):
                t = time.perf_counter()
                frame, _ = ask_dashboard(settings, GROUP_BY)
                warm.append(1000 * (time.perf_counter() - t))
                t = time.perf_counter()
                ref = con.execute(GROUP_BY).df()
                inproc.append(1000 * (time.perf_counter() - t))
            assert frame["n"].tolist() == ref["n"].tolist(), (frame, ref)
            w50, r50 = statistics.median(warm), statistics.median(inproc)
            rows.append(
                ratio_row(
                    "sql",
                    "group-by over the scores through the dashboard's warm connection, p50",
                    round(w50, 2),
                    "ms",
                    "the same query, in-process DuckDB on the same Parquet on local disk, p50",
                    round(r50, 2),
                    ratio_at_most=3,
                    note=f"{accounts * len(dates):,} score rows; HTTP round trip included",
                    id="sql.query.p50_ms",
                )
            )
            cold = []
            for _ in range(3):
                t = time.perf_counter()
                run_sql(settings, GROUP_BY)
                cold.append(1000 * (time.perf_counter() - t))
            c50 = statistics.median(cold)
            rows.append(
                ratio_row(
                    "sql",
                    "the same group-by on the old in-process path (catalog + S3 read), p50",
                    round(c50, 2),
                    "ms",
                    "through the dashboard's warm connection, p50",
                    round(w50, 2),
                    note="the fallback when no dashboard answers",
                    id="sql.cli.cold_ms",
                )
            )
        finally:
            service.down()

        inputs = champion.features
        shares = []
        for report in read_monitoring(cloud):
            have = {
                k for k, v in (report.get("features") or {}).items() if v.get("psi") is not None
            }
            shares.append(len(have & set(inputs)) / len(inputs))
        missing = sorted(set(inputs) - set(report.get("features") or {}))
        rows.append(
            Row(
                area="drift",
                figure="inputs with a PSI per scoring date / inputs of the champion (lowest date)",
                value=round(min(shares), 3),
                unit="ratio",
                reference="inputs of the champion",
                reference_value=float(len(inputs)),
                target="1.0",
                met=min(shares) == 1.0,
                note=(
                    f"no PSI for {', '.join(missing)}: no entry in the champion's training baseline"
                    if missing
                    else f"all {len(inputs)} inputs on {len(shares)} dates"
                ),
                id="drift.features",
            )
        )
    write_rows(args.out, rows)


if __name__ == "__main__":
    main()
