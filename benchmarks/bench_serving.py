"""Serving: batch scoring throughput against the raw model on the same matrix, batch scoring's
peak memory with a Random Forest champion (in a child process), and the scoring API with what
users get: for each model kind, the champion `run_training` trains on the default portfolio's
features (forced with models=<kind>), loaded through the registry by the API as `riskstream api
up` starts it (one worker per core), against its own /health route at 1, 50 and 200 concurrent
keep-alive connections; and the served reasons against reference SHAP values.

The load generator is a minimal asyncio HTTP/1.1 keep-alive client in this process, not the
API's (a few tens of microseconds of CPU per request)."""

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
from common import Row, cli, local_cloud, ratio_row, write_rows
from fixtures import (
    CATEGORICAL,
    NUMERIC,
    features_frame,
    make_pipeline,
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
            ratio_row(
                "serving",
                f"batch scoring (pd, score, tier, decision) on the preprocessed matrix, {label}",
                ours,
                "rows/s",
                "raw Booster.inplace_predict, same matrix",
                ref,
                ratio_at_least=0.8,
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
            ratio_row(
                "serving",
                f"batch scoring from the feature table (preprocess + score), {label}",
                ours,
                "rows/s",
                "pipeline.predict_proba, same DataFrame",
                ref,
                ratio_at_least=0.8,
                id=f"serving.batch.frame_ratio.{n}",
            )
        )
        explained = best_rate(lambda frame=frame: explain(pipeline, frame, CONFIG), n, 1)
        raw = best_rate(lambda xt=xt: booster.inplace_predict(xt), n, 1)
        rows.append(
            ratio_row(
                "serving",
                f"batch scoring with top-3 reason codes (exact TreeSHAP pred_contribs), {label}",
                explained,
                "rows/s",
                "raw Booster.inplace_predict, same matrix",
                raw,
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
        ratio_row(
            "serving",
            f"batch scoring's peak resident memory per 100,000 rows, Random Forest champion "
            f"({trees} trees, depth 12, calibrated), {got['rows']:,} rows with reasons",
            per_100k,
            "MB",
            "the same process's resident memory before scoring",
            got["before_mb"],
            at_most=1024,
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


def default_portfolio(cache: Path | None = None) -> Any:
    """The default portfolio's feature rows as the pipeline builds them: the synthetic
    generator with `riskstream run`'s defaults (accounts, months, seed) through the ETL's own
    Spark transforms (``bench_training.synthetic_features``). ``cache``: a Parquet file kept
    between runs (``--features-cache``; the rows are deterministic)."""
    import pandas as pd
    from bench_training import synthetic_features

    if cache is not None and cache.exists():
        return pd.read_parquet(cache)

    from ingestion.synthetic import SyntheticConfig, simulate
    from riskstream import names

    portfolio = simulate(
        SyntheticConfig(
            accounts=names.DEFAULT_ACCOUNTS, months=names.DEFAULT_MONTHS, seed=names.DEFAULT_SEED
        )
    )
    frame, _ = synthetic_features(portfolio, names.DEFAULT_MONTHS)
    if cache is not None:
        frame.to_parquet(cache, index=False)
    return frame


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def raw_application(schema: dict[str, Any], i: int) -> dict[str, Any]:
    """Raw facts the champion's raw form accepts (its published RawApplication schema): an
    account opened in 2023, twelve month-end statements and a payment a month before 2026."""
    rng = np.random.default_rng(i)
    props = schema.get("properties", {})
    facts: dict[str, Any] = {"application_id": f"raw-{i}", "opened_on": "2023-05-17"}
    defaults = {"credit_limit": 50_000.0, "income": 40_000.0, "age": 35}
    for name in ("credit_limit", "income", "education", "age", "sex", "marital_status"):
        if name not in props:
            continue
        enum = props[name].get("enum")
        facts[name] = enum[i % len(enum)] if enum else defaults.get(name)
    ends = [dt.date(2025, m, 1) + dt.timedelta(days=-1) for m in range(2, 13)]
    ends.append(dt.date(2025, 12, 31))
    limit = float(facts.get("credit_limit") or 50_000.0)
    facts["statements"] = [
        {
            "statement_date": end.isoformat(),
            "balance": float(round(limit * rng.uniform(0.05, 0.9), 2)),
            "minimum_due": 0.0,
            "repayment_status": int(rng.choice([-1, 0, 0, 1, 2])),
        }
        for end in ends
    ]
    facts["payments"] = [
        {"date": end.isoformat()[:8] + "20", "amount": float(round(limit * rng.uniform(0, 0.1)))}
        for end in ends
    ]
    return facts


def _reference_contributions(kind: str, pipeline: Any, frame: Any) -> tuple[list[str], Any]:
    """The reference SHAP values per source feature: TreeSHAP by Lundberg's recursive Algorithm 2
    (benchmarks/treeshap_reference.py) for a forest, XGBoost's own pred_contribs for a booster,
    the linear terms for a linear model; summed into source features as the API does."""
    import xgboost as xgb
    from treeshap_reference import forest_shap

    from serving.scoring import aggregation_matrix, base_estimator, output_to_source

    preprocess, model = split_pipeline(pipeline)
    estimator = base_estimator(model)
    xt = np.asarray(preprocess.transform(frame), dtype=np.float64)
    if kind == "rf":
        contrib = forest_shap(estimator, xt)
    elif kind == "xgb":
        best = getattr(estimator, "best_iteration", None)
        extra = {} if best is None else {"iteration_range": (0, int(best) + 1)}
        out = estimator.get_booster().predict(
            xgb.DMatrix(xt, missing=np.nan), pred_contribs=True, **extra
        )
        contrib = np.asarray(out)[:, :-1]
    else:
        contrib = xt * np.asarray(estimator.coef_)[0]
    names, agg = aggregation_matrix(output_to_source(preprocess))
    return names, np.asarray(agg.T.dot(contrib.T).T)


@dataclass
class KindRun:
    kind: str
    version: str
    decision: str
    serving_p99_ms: str
    reason_method: str
    loads: dict[str, Load]  # "<endpoint>.c<level>" -> load
    reasons_diff: float
    load_average: str


def _load_average() -> str:
    import os

    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def serve_kind(
    settings: Any, kind: str, frame: Any, levels: list[int], total: int, single: int
) -> KindRun:
    """Train ``kind`` by the pipeline's protocol (``run_training``, forced with models=kind),
    make it the champion, and load the API (as `riskstream api up` runs it) from this process."""
    import httpx
    from mlflow import MlflowClient

    from riskstream import names
    from serving.registry import load_champion
    from training.config import TrainingConfig
    from training.registry_io import promote
    from training.train import run_training

    report = run_training(settings, TrainingConfig(models=(kind,)))
    version = str(report.decision["version"])
    if not report.decision["promote"]:
        promote(settings, version)  # the benchmark serves each kind in turn
    tags = (
        MlflowClient(settings.mlflow_tracking_uri)
        .get_model_version(settings.registered_model_name, version)
        .tags
    )
    url = settings.api_url
    _wait_for_version(url, version)
    described = httpx.get(url + "/model").json()
    features = described["features"]
    raw_schema = httpx.get(url + "/openapi.json").json()["components"]["schemas"]["RawApplication"]
    latest = frame.sort_values("obs_date").groupby("account_id").tail(1)
    complete = frame.dropna(subset=features)  # the precomputed form takes no missing value
    apps_frame = complete.sample(n=min(total, len(complete)), replace=False, random_state=5)
    apps = [
        {k: _plain(v) for k, v in row.items()} for row in apps_frame[features].to_dict("records")
    ]
    one_each = [http_post("/score", json.dumps({"applications": [a]}).encode()) for a in apps]
    scores = [one_each[i % len(one_each)] for i in range(total)]  # complete rows, cycled
    ids = latest["account_id"].astype(str).tolist()
    by_id = [http_get(f"/accounts/{ids[i % len(ids)]}/score") for i in range(total)]
    raws = [
        http_post(
            "/score", json.dumps({"raw_applications": [raw_application(raw_schema, i)]}).encode()
        )
        for i in range(total)
    ]
    health = [http_get("/health")] * total
    for probe in (scores[0], by_id[0], raws[0]):  # a request the API refuses is not a load
        head, _, body = probe.partition(b"\r\n\r\n")
        method, path = head.split(b" ")[:2]
        got = httpx.request(method.decode(), url + path.decode(), content=body or None,
                            headers={"content-type": "application/json"})  # fmt: skip
        if got.status_code != 200:
            raise RuntimeError(f"{kind}: {method.decode()} {path.decode()} -> {got.text[:800]}")
    for warm in (scores, by_id, raws, health):
        load(url, warm[:200], 4)  # every worker compiled and warm
    loads: dict[str, Load] = {}
    for level in [1, *levels]:
        n = single if level == 1 else total
        for name, reqs in (("health", health), ("score", scores), ("account", by_id)):
            loads[f"{name}.c{level}"] = load(url, reqs[:n], level)
        loads[f"score_raw.c{level}"] = load(url, raws[: n // 2], level)
    # the served reasons against the reference SHAP values, on the first rows
    champion = load_champion(settings)
    check = apps[: 6 if kind == "rf" else 50]
    answer = httpx.post(url + "/score", json={"applications": check}, timeout=60).json()
    ref_names, ref = _reference_contributions(
        kind, champion.pipeline, apps_frame[features].head(len(check))
    )
    diff = 0.0
    for i, result in enumerate(answer["results"]):
        for reason in result["reasons"]:
            served = reason["contribution"] - ref[i, ref_names.index(reason["feature"])]
            diff = max(diff, float(abs(served)))
    return KindRun(
        kind,
        version,
        str(report.decision["decision"]),
        tags.get(names.TAG_SERVING_P99_MS, "?"),
        str(answer.get("reason_method")),
        loads,
        diff,
        _load_average(),
    )


def kind_rows(run: KindRun, levels: list[int]) -> list[Row]:
    k, loads = run.kind, run.loads
    about = (
        f"{k} champion v{run.version} (trained by run_training, decision {run.decision}, "
        f"serving_p99_ms {run.serving_p99_ms}; reasons: {run.reason_method}); load average "
        f"{run.load_average}"
    )
    s1, h1 = loads["score.c1"], loads["health.c1"]
    rows = [
        Row(
            "serving",
            f"[{k}] API POST /score (1 application, precomputed) / GET /health throughput, "
            "1 client",
            s1.rps / h1.rps,
            "x",
            reference="GET /health, same server, same run",
            reference_value=h1.rps,
            ratio=s1.rps / h1.rps,
            target=">= 0.5",
            met=s1.rps / h1.rps >= 0.5,
            note=f"/score {s1.rps:,.0f} req/s (p50 {s1.pct(50):.2f} ms, p99 {s1.pct(99):.2f} "
            f"ms), /health {h1.rps:,.0f} req/s; {about}",
            id=f"api.score.{k}.ratio_to_health",
        )
    ]
    goals = {"score": 25.0, "account": 30.0, "score_raw": 50.0 if k == "rf" else None}
    label = {
        "score": "POST /score (precomputed)",
        "account": "GET /accounts/{id}/score",
        "score_raw": "POST /score (raw facts)",
    }
    for endpoint, goal in goals.items():
        for level in [1, *levels]:
            got, ref = loads[f"{endpoint}.c{level}"], loads[f"health.c{level}"]
            rows.append(
                ratio_row(
                    "serving",
                    f"[{k}] API {label[endpoint]} p99 latency, {level} client(s)",
                    got.pct(99),
                    "ms",
                    "GET /health p99, same server, same level",
                    ref.pct(99),
                    at_most=goal if level == 50 else None,
                    note=f"{got.rps:,.0f} req/s (/health {ref.rps:,.0f}), p50 {got.pct(50):.1f} "
                    f"ms, {len(got.latencies):,} requests, statuses {got.statuses}, timeouts "
                    f"{got.timeouts}; {about}",
                    id=f"api.{endpoint}.{k}.p99_c{level}_ms",
                )
            )
    return rows


def api_rows(
    levels: list[int], total: int, single: int, kinds: list[str], cache: Path | None = None
) -> list[Row]:
    """The API with the champion each kind gets from the pipeline's own training, in turn."""

    from infra.provision import provision
    from infra.services import free_port
    from serving.online import materialize
    from serving.processes import api_service
    from training.mlflow_process import mlflow_service

    frame = default_portfolio(cache)
    runs: list[KindRun] = []
    with local_cloud("bsv") as cloud, tempfile.TemporaryDirectory() as state:
        provision(cloud)
        settings = cloud.with_overrides(
            mlflow_tracking_uri=f"http://127.0.0.1:{free_port()}",
            api_url=f"http://127.0.0.1:{free_port()}",
            state_dir=Path(state),
            portfolio=str(frame["source"].iloc[0]),
        )
        mlflow = mlflow_service(settings)
        mlflow.up()
        api = api_service(settings, ttl=1.0)  # one worker per core, as `riskstream api up`
        try:
            for obs, part in frame.groupby("obs_date"):
                write_features(settings, part.reset_index(drop=True), obs)
            materialize(settings)
            api.up()
            _wait_for_replica(settings.api_url, int(frame["account_id"].nunique()))
            for kind in kinds:
                runs.append(serve_kind(settings, kind, frame, levels, total, single))
        finally:
            api.down()
            mlflow.down()
    rows: list[Row] = []
    for run in runs:
        rows += kind_rows(run, levels)
    errors = sum(ld.errors + sum(n for c, n in ld.statuses.items() if c >= 400 and c < 500)
                 for run in runs for ld in run.loads.values())  # fmt: skip
    rows.append(
        Row(
            "serving",
            "API non-2xx answers and timeouts over every level and kind "
            f"({', '.join(r.kind for r in runs)})",
            errors,
            "requests",
            reference="GET /health requests, same runs",
            reference_value=sum(
                len(r.loads[f"health.c{c}"].latencies) for r in runs for c in [1, *levels]
            ),
            target="0",
            met=errors == 0,
            id="api.errors_under_load",
        )
    )
    worst = max(r.reasons_diff for r in runs)
    rows.append(
        Row(
            "serving",
            "largest difference between the served reasons and the reference SHAP values, "
            "every kind",
            worst,
            "",
            reference="references: Algorithm 2 TreeSHAP (rf), pred_contribs (xgb), linear terms "
            "(lr)",
            target="<= 1e-6",
            met=bool(worst <= 1e-6),
            note="; ".join(f"{r.kind} {r.reasons_diff:.2e}" for r in runs),
            id="serving.reasons.exact",
        )
    )
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
    cache = None
    if "--features-cache" in sys.argv:  # keep the default portfolio's features between runs
        at = sys.argv.index("--features-cache")
        cache = Path(sys.argv[at + 1])
        del sys.argv[at : at + 2]
    args = cli(__doc__ or "")
    sizes = [10_000, 100_000] if args.quick else [100_000, 1_000_000]
    rows = [] if api_only else batch_rows(sizes, repeats=2 if args.quick else 3)
    if not api_only:
        rows += batch_memory_rows(30_000 if args.quick else 150_000)
    rows += api_rows(
        [50, 200],
        total=2_000 if args.quick else 6_000,
        single=500 if args.quick else 2_000,
        kinds=["rf", "xgb", "lr"],
        cache=cache,
    )
    write_rows(args.out, rows)


if __name__ == "__main__":
    main()
