"""Serving: batch scoring throughput against the raw model on the same matrix, batch scoring's
peak memory with a Random Forest champion (in a child process), and the scoring
API (as `riskstream api up` starts it: one worker per core) against its own /health route, under
a bounded loopback load: one client, 4, 16 and 50 concurrent keep-alive connections.

The load generator is a minimal asyncio HTTP/1.1 keep-alive client in this process (a few tens of
microseconds of CPU per request), so it does not take the cores the server is measured on."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from common import Row, cli, local_cloud, write_rows
from fixtures import (
    CATEGORICAL,
    NUMERIC,
    features_frame,
    fit_pipeline,
    make_pipeline,
    register_champion,
    write_features,
)

from serving.scoring import ScoringConfig, explain, split_pipeline

CONFIG = ScoringConfig(threshold=0.3)


def champion_pipeline() -> Any:
    """An XGBoost champion of realistic size (200 trees, depth 5) on 20k synthetic rows."""
    from xgboost import XGBClassifier

    pipeline = make_pipeline("xgb")
    pipeline.set_params(
        model=XGBClassifier(n_estimators=200, max_depth=5, learning_rate=0.1, n_jobs=2)
    )
    train = features_frame(20_000, dt.date(2025, 12, 31), seed=1)
    pipeline.fit(train[NUMERIC + CATEGORICAL], train["label"])
    return pipeline, train


def best_rate(fn: Callable[[], object], rows: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return rows / best


def interleaved(
    ours: Callable[[], object], ref: Callable[[], object], rows: int, repeats: int
) -> tuple[float, float]:
    """Best rate of each over ``repeats`` alternating runs (shares the machine's noise)."""
    a, b = [], []
    for _ in range(repeats):
        a.append(best_rate(ours, rows, 1))
        b.append(best_rate(ref, rows, 1))
    return max(a), max(b)


def batch_rows(sizes: list[int], repeats: int) -> list[Row]:
    pipeline, _ = champion_pipeline()
    preprocess, model = split_pipeline(pipeline)
    booster = model.get_booster()
    rows: list[Row] = []
    for n in sizes:
        frame = features_frame(n, dt.date(2026, 1, 31), seed=2)
        xt = preprocess.transform(frame[NUMERIC + CATEGORICAL])
        label = f"{n:,} rows"

        def model_step(xt: Any = xt) -> object:
            # what batch scoring does after preprocessing: pd -> score, tier, decision
            from serving.scoring import assign_tiers, decision_for, pd_to_score

            p = model.predict_proba(xt)[:, 1]
            s = pd_to_score(p, CONFIG.scale)
            return assign_tiers(s, CONFIG.tiers), decision_for(p, CONFIG.threshold)

        ours, ref = interleaved(model_step, lambda xt=xt: booster.inplace_predict(xt), n, repeats)
        rows.append(
            Row(
                "serving",
                f"batch scoring (pd, score, tier, decision) on the preprocessed matrix, {label}",
                ours,
                "rows/s",
                reference="raw Booster.inplace_predict, same matrix",
                reference_value=ref,
                ratio=ours / ref,
                target=">= 0.8",
                met=ours / ref >= 0.8,
                id=f"serving.batch.matrix_ratio.{n}",
            )
        )
        x = frame[NUMERIC + CATEGORICAL]
        ours, ref = interleaved(
            lambda frame=frame: explain(pipeline, frame, CONFIG, with_reasons=False),
            lambda x=x: pipeline.predict_proba(x),
            n,
            repeats,
        )
        rows.append(
            Row(
                "serving",
                f"batch scoring from the feature table (preprocess + score), {label}",
                ours,
                "rows/s",
                reference="pipeline.predict_proba, same DataFrame",
                reference_value=ref,
                ratio=ours / ref,
                target=">= 0.8",
                met=ours / ref >= 0.8,
                id=f"serving.batch.frame_ratio.{n}",
            )
        )
        explained = best_rate(lambda frame=frame: explain(pipeline, frame, CONFIG), n, 1)
        raw = best_rate(lambda xt=xt: booster.inplace_predict(xt), n, 1)
        rows.append(
            Row(
                "serving",
                f"batch scoring with top-3 reason codes (exact TreeSHAP pred_contribs), {label}",
                explained,
                "rows/s",
                reference="raw Booster.inplace_predict, same matrix",
                reference_value=raw,
                ratio=explained / raw,
                note="what the scoring job runs at: per-feature contributions for every "
                "account cost more than a prediction (no target)",
                id=f"serving.batch.reasons_ratio.{n}",
            )
        )
    return rows


def forest_champion() -> tuple[Any, Any, list[str]]:
    """A Random Forest fitted as training fits it (lawful inputs, the protocol's out-of-fold
    calibration) on the shipped Taiwan data set's features; the search is cut to its first
    trial (the protocol's default: 200 trees, depth 12), which the others only vary around.
    Returns (pipeline, the labelled feature rows, the numeric inputs)."""
    from fixtures import read_taiwan_features

    from riskstream.datasets import TAIWAN_CSV
    from training.dataset import labelled
    from training.lawful import InputPolicy
    from training.models import SearchBudget, fit_with_search
    from training.prepare import select_columns

    rows = labelled(read_taiwan_features(str(TAIWAN_CSV)), "taiwan")
    cols, _, _ = select_columns(rows, InputPolicy(), "taiwan")
    fitted = fit_with_search(
        "rf", rows[cols.all], rows["label"].to_numpy(), cols, SearchBudget(max_trials=1)
    )
    return fitted.pipeline, rows, list(cols.numeric)


def memory_child(state: Path) -> None:
    """In a child process: load (settings, champion), note the resident memory, run the batch
    scoring job over the feature partition, print the peak resident memory as JSON."""
    import resource

    import psutil

    from serving.batch import run_batch

    settings, champion, day = pickle.loads(state.read_bytes())
    before = psutil.Process().memory_info().rss / 2**20
    started = time.perf_counter()
    report = run_batch(settings, day, champion=champion)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"before_mb": before, "peak_mb": peak, "rows": report["rows"],
                      "seconds": seconds}))  # fmt: skip


def batch_memory_rows(n_rows: int) -> list[Row]:
    """``serving.batch.peak_rss_mb_per_100k``: the batch job (S3 read, scoring with reasons,
    S3 write) in its own process over ``n_rows`` accounts, Random Forest champion."""
    from fixtures import write_features

    from infra.provision import provision
    from serving.registry import Champion
    from training.baseline import build_baseline

    pipeline, rows, numeric = forest_champion()
    obs = dt.date(2026, 1, 31)
    reps = -(-n_rows // len(rows))
    frame = rows.sample(n=n_rows, replace=reps > 1, random_state=3).reset_index(drop=True)
    frame["account_id"] = [f"acct-{i:07d}" for i in range(n_rows)]
    frame["obs_date"] = [obs] * n_rows
    trees = len(pipeline.named_steps["model"].calibrated_classifiers_[0].estimator.estimator)
    with local_cloud("bmem") as settings, tempfile.TemporaryDirectory() as tmp:
        provision(settings)
        write_features(settings, frame, obs)
        del frame
        x = rows[list(pipeline[0].feature_names_in_)]
        baseline = build_baseline(pipeline.predict_proba(x)[:, 1], x, numeric)
        champion = Champion("bench-rf", "1", None, pipeline, {"model_type": "rf"}, baseline)
        state = Path(tmp) / "state.pkl"
        state.write_bytes(pickle.dumps((settings, champion, obs)))
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(state)],
            check=True,
            capture_output=True,
            text=True,
        )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    per_100k = got["peak_mb"] * 100_000 / got["rows"]
    return [
        Row(
            "serving",
            f"batch scoring's peak resident memory per 100,000 rows, Random Forest champion "
            f"({trees} trees, depth 12, calibrated), {got['rows']:,} rows with reasons",
            per_100k,
            "MB",
            reference="the same process's resident memory before scoring",
            reference_value=got["before_mb"],
            ratio=per_100k / got["before_mb"],
            target="<= 1,024",
            met=per_100k <= 1024,
            note=f"peak {got['peak_mb']:,.0f} MB over {got['rows']:,} rows in "
            f"{got['seconds']:.0f} s (read from S3, score with reasons in chunks, write); "
            f"{got['before_mb']:,.0f} MB before scoring",
            id="serving.batch.peak_rss_mb_per_100k",
        )
    ]


@dataclass
class Load:
    latencies: list[float]
    wall: float
    statuses: dict[int, int]
    timeouts: int

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.wall if self.wall else 0.0

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else float("nan")

    @property
    def errors(self) -> int:
        return self.timeouts + sum(n for code, n in self.statuses.items() if code >= 500)


async def _load(
    host: str,
    port: int,
    requests: list[bytes],
    concurrency: int,
    timeout: float,
) -> Load:
    """Send ``requests`` (raw HTTP/1.1 bytes) over ``concurrency`` keep-alive connections."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    timeouts = 0
    queue = iter(range(len(requests)))

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await reader.readexactly(length)
        return status

    async def client() -> None:
        nonlocal timeouts
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for i in queue:
                started = time.perf_counter()
                try:
                    status = await asyncio.wait_for(one(reader, writer, requests[i]), timeout)
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    timeouts += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return Load(latencies, time.perf_counter() - started, statuses, timeouts)


def load(url: str, requests: list[bytes], concurrency: int, timeout: float = 5.0) -> Load:
    parsed = urlparse(url)
    return asyncio.run(_load(parsed.hostname or "127.0.0.1", parsed.port or 80, requests,
                             concurrency, timeout))  # fmt: skip


def http_get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n".encode()


def http_post(path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


def raw_facts(app: dict[str, Any]) -> dict[str, Any]:
    """A precomputed application of ``features_frame`` as raw facts: three month-end statements
    and a payment each month, observed on 2026-01-01 (the default after a December statement)."""
    ends = {1: "2025-12-31", 2: "2025-11-30", 3: "2025-10-31"}
    return {
        "opened_on": "2023-05-17",
        "credit_limit": app["credit_limit"],
        "age": app["age"],
        "education": app["education"],
        "marital_status": app["marital_status"],
        "statements": [
            {
                "statement_date": ends[k],
                "balance": app[f"bill_amt_m{k}"],
                "minimum_due": 0.0,
                "repayment_status": app[f"repayment_status_m{k}"],
            }
            for k in (3, 2, 1)
        ],
        "payments": [
            {"date": ends[k][:8] + "20", "amount": app[f"pay_amt_m{k}"]} for k in (3, 2, 1)
        ],
    }


def api_rows(levels: list[int], total: int, single: int) -> list[Row]:
    import json

    from infra.provision import provision
    from infra.services import free_port
    from serving.online import materialize
    from serving.processes import api_service
    from training.mlflow_process import mlflow_service

    xgb_pipeline, train = champion_pipeline()
    pipeline = fit_pipeline("lr", train)  # the figures are for an LR champion
    rows: list[Row] = []
    obs = dt.date(2026, 1, 31)
    with local_cloud("bsv") as cloud, tempfile.TemporaryDirectory() as state:
        provision(cloud)
        settings = cloud.with_overrides(
            mlflow_tracking_uri=f"http://127.0.0.1:{free_port()}",
            api_url=f"http://127.0.0.1:{free_port()}",
            state_dir=Path(state),
        )
        mlflow = mlflow_service(settings)
        mlflow.up()
        api = api_service(settings, ttl=1.0)
        try:
            register_champion(settings, pipeline, train, "lr")
            accounts = features_frame(2_000, obs, seed=3)
            write_features(settings, accounts, obs)
            materialize(settings)
            api.up()
            _wait_for_replica(settings.api_url, len(accounts))
            frame = features_frame(total, obs, seed=5)
            apps = [
                {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
                for row in frame[NUMERIC + CATEGORICAL].to_dict("records")
            ]
            scores = [http_post("/score", json.dumps({"applications": [a]}).encode()) for a in apps]
            ids = accounts["account_id"].tolist()
            by_id = [http_get(f"/accounts/{ids[i % len(ids)]}/score") for i in range(total)]
            health = [http_get("/health")] * total
            url = settings.api_url
            load(url, scores[:200], 4)  # warm up both workers
            load(url, by_id[:200], 4)
            # 1 client: /score beside /health, alternated, best of two rounds each
            s1 = max((load(url, scores[:single], 1) for _ in range(2)), key=lambda r: r.rps)
            h1 = max((load(url, health[:single], 1) for _ in range(2)), key=lambda r: r.rps)
            ratio = s1.rps / h1.rps
            rows.append(
                Row(
                    "serving",
                    "API POST /score (1 application) / GET /health throughput, 1 client",
                    ratio,
                    "x",
                    reference="GET /health, same server, same run",
                    reference_value=h1.rps,
                    ratio=ratio,
                    target=">= 0.5",
                    met=ratio >= 0.5,
                    note=f"/score {s1.rps:,.0f} req/s (p50 {s1.pct(50):.2f} ms, p99 "
                    f"{s1.pct(99):.2f} ms), /health {h1.rps:,.0f} req/s (p99 {h1.pct(99):.2f} ms)",
                    id="api.score.ratio_to_health",
                )
            )
            # the raw form, 1 client: the same applications as facts (3 statements, 3 payments)
            raws = [
                http_post("/score", json.dumps({"raw_applications": [raw_facts(a)]}).encode())
                for a in apps[:single]
            ]
            load(url, raws[:100], 2)
            r1 = max((load(url, raws, 1) for _ in range(2)), key=lambda r: r.rps)
            rows.append(
                Row(
                    "serving",
                    "API POST /score, 1 raw application (features computed by the API), 1 client",
                    r1.rps,
                    "req/s",
                    reference="GET /health, same server, same run",
                    reference_value=h1.rps,
                    ratio=r1.rps / h1.rps,
                    note=f"p50 {r1.pct(50):.2f} ms, p99 {r1.pct(99):.2f} ms, statuses "
                    f"{r1.statuses}; precomputed form {s1.rps:,.0f} req/s (raw/precomputed "
                    f"{r1.rps / s1.rps:.2f})",
                    id="api.score_raw.c1.throughput",
                )
            )
            levels_seen: dict[int, tuple[Load, Load]] = {1: (s1, h1)}
            for c in levels:
                sub = min(total, 400 * c)
                levels_seen[c] = (load(url, scores[:sub], c), load(url, health[:sub], c))
            s50 = load(url, scores, 50)
            h50 = load(url, health, 50)
            a50 = load(url, by_id, 50)
            levels_seen[50] = (s50, h50)
            rows.append(
                Row(
                    "serving",
                    "API POST /score p99 latency, 50 concurrent clients, 1 application each",
                    s50.pct(99),
                    "ms",
                    reference="GET /health p99, same load",
                    reference_value=h50.pct(99),
                    ratio=s50.pct(99) / h50.pct(99),
                    target="<= 25 ms",
                    met=s50.pct(99) <= 25,
                    note=f"{len(s50.latencies):,} requests, {s50.rps:,.0f} req/s, p50 "
                    f"{s50.pct(50):.1f} ms; /health {h50.rps:,.0f} req/s",
                    id="api.score.p99_c50_ms",
                )
            )
            rows.append(
                Row(
                    "serving",
                    "API GET /accounts/{id}/score p99 latency, 50 concurrent clients",
                    a50.pct(99),
                    "ms",
                    reference="GET /health p99, same load",
                    reference_value=h50.pct(99),
                    ratio=a50.pct(99) / h50.pct(99),
                    target="<= 30 ms",
                    met=a50.pct(99) <= 30,
                    note=f"{len(a50.latencies):,} requests over {len(ids):,} accounts, "
                    f"{a50.rps:,.0f} req/s, p50 {a50.pct(50):.1f} ms, statuses {a50.statuses}",
                    id="api.account.p99_c50_ms",
                )
            )
            errors = s50.errors + a50.errors
            rows.append(
                Row(
                    "serving",
                    f"API 5xx and timeouts (5 s) in {len(scores):,} POST /score and "
                    f"{len(by_id):,} GET /accounts requests, 50 concurrent",
                    errors,
                    "requests",
                    reference="GET /health errors, same load",
                    reference_value=h50.errors,
                    target="0",
                    met=errors == 0,
                    note=f"/score statuses {s50.statuses}, timeouts {s50.timeouts}; accounts "
                    f"statuses {a50.statuses}, timeouts {a50.timeouts}",
                    id="api.errors_under_load",
                )
            )
            for c, (sc, hc) in sorted(levels_seen.items()):
                rows.append(
                    Row(
                        "serving",
                        f"API POST /score, 1 record, concurrency {c}: throughput",
                        sc.rps,
                        "req/s",
                        reference="GET /health on the same server, same load",
                        reference_value=hc.rps,
                        ratio=sc.rps / hc.rps,
                        note=f"p50 {sc.pct(50):.1f} ms, p99 {sc.pct(99):.1f} ms over "
                        f"{len(sc.latencies)} requests",
                        id=f"api.score.c{c}.throughput",
                    )
                )
                rows.append(
                    Row(
                        "serving",
                        f"API POST /score, 1 record, concurrency {c}: p50 latency",
                        sc.pct(50),
                        "ms",
                        reference="GET /health p50",
                        reference_value=hc.pct(50),
                        id=f"api.score.c{c}.p50_ms",
                    )
                )
                rows.append(
                    Row(
                        "serving",
                        f"API POST /score, 1 record, concurrency {c}: p99 latency",
                        sc.pct(99),
                        "ms",
                        reference="GET /health p99",
                        reference_value=hc.pct(99),
                        id=f"api.score.c{c}.p99_ms",
                    )
                )
            # the same, with an XGBoost champion (200 trees, depth 5, exact TreeSHAP reasons)
            version = register_champion(settings, xgb_pipeline, train, "xgb")
            _wait_for_version(url, version)
            load(url, scores[:200], 4)
            sx = max((load(url, scores[:single], 1) for _ in range(2)), key=lambda r: r.rps)
            hx = max((load(url, health[:single], 1) for _ in range(2)), key=lambda r: r.rps)
            rows.append(
                Row(
                    "serving",
                    "API POST /score / GET /health throughput, 1 client, XGBoost champion "
                    "(200 trees, depth 5) with exact TreeSHAP reasons",
                    sx.rps / hx.rps,
                    "x",
                    reference="GET /health, same server, same run",
                    reference_value=hx.rps,
                    ratio=sx.rps / hx.rps,
                    note=f"/score {sx.rps:,.0f} req/s (p50 {sx.pct(50):.2f} ms, p99 "
                    f"{sx.pct(99):.2f} ms); exact TreeSHAP is most of it (no target)",
                    id="api.score.xgb_ratio_to_health",
                )
            )
        finally:
            api.down()
            mlflow.down()
    return rows


def _wait_for_version(url: str, version: str, seconds: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if httpx.get(url + "/health").json().get("model_version") == version:
            time.sleep(3.0)  # every worker follows within its TTL
            return
        time.sleep(0.5)
    raise RuntimeError(f"the API did not pick up version {version} in {seconds:.0f}s")


def _wait_for_replica(url: str, accounts: int, seconds: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if httpx.get(url + "/health").json().get("online_accounts", 0) >= accounts:
            return
        time.sleep(0.5)


def main() -> None:
    if sys.argv[1:2] == ["--memory-child"]:
        memory_child(Path(sys.argv[2]))
        return
    api_only = "--api-only" in sys.argv  # the API rows alone (skip the batch sizes)
    if api_only:
        sys.argv.remove("--api-only")
    args = cli(__doc__ or "")
    sizes = [10_000, 100_000] if args.quick else [100_000, 1_000_000]
    rows = [] if api_only else batch_rows(sizes, repeats=2 if args.quick else 3)
    if not api_only:
        rows += batch_memory_rows(30_000 if args.quick else 150_000)
    rows += api_rows(
        [4, 16],
        total=2_000 if args.quick else 10_000,
        single=500 if args.quick else 2_000,
    )
    write_rows(args.out, rows)


if __name__ == "__main__":
    main()
