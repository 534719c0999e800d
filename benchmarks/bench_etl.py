"""ETL on the embedded cloud over S3: raw -> curated -> features with the Spark jobs, against a
DuckDB reference doing the same transformation (parse, validate with the same rules, de-duplicate,
drop unknown accounts, write Parquet by event month; then one feature row per account with the
same lags and aggregates) on the same S3 objects in the same run (DuckDB reads them through boto3
and writes its Parquet back the same way: this DuckDB build has no S3 extension).

Raw objects are laid out as the landing consumer writes a replay: ``events/dt=/hr=`` by arrival
hour, one gzip JSON-lines object per flush of 13,000 records (the 4 MB flush size). Spark's session
start is reported apart from processing. S3 requests are counted from the cloud's access log.

Spark processing is measured as the DAG's tasks see it: on a session that has warmed itself up the
way the pipeline's warm Spark session does at start (:func:`etl.warmup.warm_up`, both jobs over a
small built-in portfolio in a local scratch folder; timed and reported in its own row and counted
in the wall time ``etl.s3.default.seconds``). The same data on a cold JVM with no warm-up (a
subprocess: the path a task takes when no session is running) is reported beside it,
``etl.s3.default.cold_ratio``.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import Row, cli, local_cloud, ratio_row, write_rows

from etl.layout import YEAR_KEY, table_key
from riskstream.events import MERCHANT_CATEGORIES, PAYLOAD_SCHEMAS, FieldSpec
from riskstream.settings import Settings

MONTH_ENDS = ["2005-04-30", "2005-05-31", "2005-06-30", "2005-07-31", "2005-08-31", "2005-09-30"]
RUN_DATE = "2026-01-15"


# ---- data ------------------------------------------------------------------------------------
# the month after the 12 simulated months (from 2024-01): the scoring date of the portfolio
CURRENT_OBS_DATE = "2025-01-01"
FLUSH_RECORDS = 13_000  # about the consumer's 4 MB flush of ~300-byte events


def portfolio_lines(accounts: int, months: int = 12, seed: int = 7) -> list[bytes]:
    """The synthetic portfolio's events as the producer sends them (one JSON line each)."""
    from ingestion.synthetic import SyntheticConfig, simulate
    from riskstream.events import serialize

    portfolio = simulate(SyntheticConfig(accounts=accounts, months=months, seed=seed))
    return [serialize(e) for e in portfolio.events()]


def upload_raw(s3: Any, bucket: str, prefix: str, lines: list[bytes]) -> int:
    """Land ``lines`` as a replay would: one object per flush, under one arrival hour."""
    from concurrent.futures import ThreadPoolExecutor

    now = datetime.now(UTC)
    hour = f"dt={now.date().isoformat()}/hr={now.hour:02d}"
    jobs = []
    for first in range(0, len(lines), FLUSH_RECORDS):
        chunk = lines[first : first + FLUSH_RECORDS]
        last = first + len(chunk) - 1
        key = f"{prefix}events/{hour}/shardId-000000000000-{first:012d}-{last:012d}.jsonl.gz"
        jobs.append((key, gzip.compress(b"\n".join(chunk) + b"\n", compresslevel=6, mtime=0)))
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda j: s3.put_object(Bucket=bucket, Key=j[0], Body=j[1]), jobs))
    return len(jobs)


ANSI = re.compile(r"\x1b\[[0-9;]*m")  # werkzeug colours some status lines


class RequestLog:
    """Counts the S3 requests the cloud answered, from its access log (one line per request)."""

    def __init__(self, path: Path, buckets: list[str]) -> None:
        self.path = path
        self.buckets = tuple(f"/{b}" for b in buckets)
        self.offset = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def since(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            for raw in handle:
                text = ANSI.sub("", raw.decode("utf-8", "replace"))
                start = text.find('"')
                if start < 0:
                    continue
                parts = text[start + 1 :].split(" ", 2)
                if len(parts) < 2 or not parts[1].startswith(self.buckets):
                    continue
                counts[parts[0]] = counts.get(parts[0], 0) + 1
        counts["total"] = sum(counts.values())
        return counts


# ---- DuckDB reference ------------------------------------------------------------------------
def _sql_typed(name: str, spec: FieldSpec) -> str:
    raw = f"p_{name}"
    if spec.kind == "number":
        return f"TRY_CAST({raw} AS DOUBLE)"
    if spec.kind in ("integer",):
        return (
            f"CASE WHEN TRY_CAST({raw} AS DOUBLE) = floor(TRY_CAST({raw} AS DOUBLE)) "
            f"THEN TRY_CAST(TRY_CAST({raw} AS DOUBLE) AS INTEGER) END"
        )
    if spec.kind == "flag":
        return f"CASE WHEN {raw} IN ('0', '1') THEN CAST({raw} AS INTEGER) END"
    if spec.kind == "date":
        pattern = "'^\\d{4}-\\d{2}-\\d{2}$'"
        return f"CASE WHEN regexp_matches({raw}, {pattern}) THEN TRY_CAST({raw} AS DATE) END"
    return raw


def _sql_rules() -> tuple[str, dict[str, FieldSpec]]:
    """The same rules as etl.transforms, as one CASE expression."""
    fields: dict[str, FieldSpec] = {}
    for spec_set in PAYLOAD_SCHEMAS.values():
        for name, spec in spec_set.items():
            fields.setdefault(name, spec)
    whens = [
        "WHEN j IS NULL THEN 'bad_json'",
        *[
            f"WHEN {c} IS NULL THEN 'missing_field'"
            for c in ("event_id", "event_type", "account_id", "event_time", "schema_version")
        ],
        "WHEN TRY_CAST(schema_version AS DOUBLE) IS DISTINCT FROM 1 THEN "
        "'unsupported_schema_version'",
        "WHEN NOT regexp_matches(event_id, '^[0-9a-fA-F-]{32,36}$') THEN 'bad_event_id'",
        "WHEN length(trim(account_id)) = 0 OR length(account_id) > 64 THEN 'bad_account_id'",
        f"WHEN event_type NOT IN ({', '.join(repr(t) for t in PAYLOAD_SCHEMAS)}) "
        "THEN 'unknown_event_type'",
        "WHEN ts IS NULL THEN 'bad_time'",
        "WHEN ts < TIMESTAMP '1970-01-01' OR ts > now()::TIMESTAMP + INTERVAL 1 DAY "
        "THEN 'time_out_of_range'",
    ]
    for event_type, spec_set in PAYLOAD_SCHEMAS.items():
        is_type = f"event_type = '{event_type}'"
        for name, spec in spec_set.items():
            raw, typed = f"p_{name}", f"t_{name}"
            if spec.required or not spec.nullable:
                whens.append(f"WHEN {is_type} AND {raw} IS NULL THEN 'missing_field'")
            if spec.kind != "object":
                whens.append(
                    f"WHEN {is_type} AND {raw} IS NOT NULL AND {typed} IS NULL THEN 'bad_type'"
                )
            if spec.minimum is not None:
                whens.append(f"WHEN {is_type} AND {typed} < {spec.minimum} THEN 'out_of_range'")
            if spec.maximum is not None:
                whens.append(f"WHEN {is_type} AND {typed} > {spec.maximum} THEN 'out_of_range'")
            if spec.choices is not None:
                choices = ", ".join(repr(c) for c in spec.choices)
                whens.append(f"WHEN {is_type} AND {raw} NOT IN ({choices}) THEN 'bad_value'")
    whens.append(
        "WHEN event_type = 'statement' AND t_due_date < t_statement_date THEN 'impossible_value'"
    )
    return "CASE " + " ".join(whens) + " END", fields


def duckdb_reference(raw: Path, out: Path, obs_date: str) -> dict[str, Any]:
    """raw -> curated -> features in DuckDB on local files; row counts to compare with Spark's."""
    import duckdb

    rules, fields = _sql_rules()
    con = duckdb.connect()
    con.execute("SET threads = 2")
    structure = {
        **{c: "VARCHAR" for c in ("event_id", "event_type", "account_id", "event_time")},
        "schema_version": "VARCHAR",
        "source": "VARCHAR",
        "payload": {
            n: ("MAP(VARCHAR, VARCHAR)" if s.kind == "object" else "VARCHAR")
            for n, s in fields.items()
        },
    }
    payload_cols = ", ".join(f"j.payload.{n} AS p_{n}" for n in fields)
    typed_cols = ", ".join(f"{_sql_typed(n, s)} AS t_{n}" for n, s in fields.items())
    con.execute(
        f"""
        CREATE TEMP TABLE parsed AS
        WITH lines AS (
            SELECT column0 AS value, dt::VARCHAR AS dt, filename
            FROM read_csv('{raw}/*/*/*.jsonl.gz', columns={{'column0': 'VARCHAR'}}, header=false,
                          delim='\\x01', quote='', escape='', hive_partitioning=true,
                          filename=true, compression='gzip')
        ), j AS (
            SELECT value, dt, filename,
                   CASE WHEN json_valid(value) AND json_type(value) = 'OBJECT'
                        THEN json_transform(value, '{json.dumps(structure)}') END AS j
            FROM lines
        ), flat AS (
            SELECT value, dt, filename, j, j.event_id, j.event_type, j.account_id, j.event_time,
                   j.schema_version, j.source,
                   CASE WHEN regexp_matches(j.event_time, '^\\d{{4}}-\\d{{2}}-\\d{{2}}T')
                        THEN TRY_CAST(j.event_time AS TIMESTAMPTZ)::TIMESTAMP END AS ts,
                   {payload_cols}
            FROM j
        )
        SELECT *, {typed_cols} FROM flat
        """
    )
    con.execute(f"CREATE TEMP TABLE checked AS SELECT *, {rules} AS reason FROM parsed")
    con.execute(
        """
        CREATE TEMP TABLE classified AS
        WITH rep AS (
            SELECT event_id FROM checked WHERE reason IS NULL
            GROUP BY event_id HAVING count(*) > 1
        ), flagged AS (
            SELECT *, coalesce(reason IS NULL AND event_id IN (SELECT event_id FROM rep), false)
                   AS repeated
            FROM checked
        ), ranked AS (
            -- as in the Spark job: only rows whose id repeats are ranked
            SELECT * EXCLUDE (repeated), row_number() OVER (
                PARTITION BY event_id ORDER BY dt, ts, filename, value) AS rk
            FROM flagged WHERE repeated
            UNION ALL BY NAME
            SELECT * EXCLUDE (repeated), CASE WHEN reason IS NULL THEN 1 END AS rk
            FROM flagged WHERE NOT repeated
        ), opened AS (
            SELECT DISTINCT account_id FROM ranked
            WHERE reason IS NULL AND event_type = 'account_opened'
        )
        SELECT r.*,
               CASE WHEN r.reason IS NULL AND r.rk = 1 AND r.event_type <> 'account_opened'
                         AND o.account_id IS NULL THEN 'unknown_account' ELSE r.reason END
                   AS final_reason
        FROM ranked r LEFT JOIN opened o USING (account_id)
        """
    )
    counts = dict(
        con.execute(
            """SELECT CASE WHEN final_reason IS NOT NULL THEN 'quarantined'
                           WHEN rk > 1 THEN 'duplicate' ELSE 'ok' END, count(*)
               FROM classified GROUP BY 1"""
        ).fetchall()
    )
    curated = out / "curated"
    curated.mkdir(parents=True, exist_ok=True)
    for event_type, spec_set in PAYLOAD_SCHEMAS.items():
        cols = ", ".join(
            f"{'p' if spec.kind == 'object' else 't'}_{n} AS {n}" for n, spec in spec_set.items()
        )
        key = table_key(event_type)  # the lake's layout: by event month, or year
        fmt = "%Y" if key == YEAR_KEY else "%Y-%m"
        con.execute(
            f"""COPY (SELECT event_id, account_id, ts AS event_time, source, {cols},
                             strftime(ts, '{fmt}') AS {key}
                      FROM classified WHERE final_reason IS NULL AND rk = 1
                      AND event_type = '{event_type}')
                TO '{curated / event_type}' (FORMAT PARQUET, PARTITION_BY ({key}),
                OVERWRITE_OR_IGNORE)"""
        )
    con.execute(
        f"""COPY (SELECT final_reason AS reason, event_id, event_type, account_id, filename,
                         value, dt FROM classified WHERE final_reason IS NOT NULL)
            TO '{out / "quarantine"}' (FORMAT PARQUET, PARTITION_BY (dt), OVERWRITE_OR_IGNORE)"""
    )
    con.execute("DROP TABLE parsed; DROP TABLE checked; DROP TABLE classified")

    def table(name: str) -> str:
        return f"read_parquet('{curated / name}/*/*.parquet', hive_partitioning=true)"

    obs = f"DATE '{obs_date}'"
    month = f"(year({obs} - 1) * 12 + month({obs} - 1))"
    lags = ", ".join(
        f"max(CASE WHEN k = {k} THEN balance END) AS bill_amt_m{k}, "
        f"max(CASE WHEN k = {k} THEN repayment_status END) AS repayment_status_m{k}, "
        f"max(CASE WHEN k = {k} THEN minimum_due END) AS minimum_due_m{k}, "
        f"coalesce(sum(CASE WHEN k = {k} THEN paid END), 0) AS pay_amt_m{k}"
        for k in range(1, 7)
    )
    mix = ", ".join(
        f"sum(CASE WHEN merchant_category = '{c}' THEN amount ELSE 0 END) AS s_{c}"
        for c in MERCHANT_CATEGORIES
    )
    shares = ", ".join(
        f"CASE WHEN spend_6m > 0 THEN s_{c} / spend_6m END AS spend_share_{c}"
        for c in MERCHANT_CATEGORIES
    )
    ratios = ", ".join(
        f"CASE WHEN bill_amt_m{k + 1} > 0 THEN pay_amt_m{k} / bill_amt_m{k + 1} END "
        f"AS pay_to_bill_m{k}"
        for k in range(1, 6)
    )
    con.execute(
        f"""
        COPY (
        WITH pop AS (
            SELECT account_id, arg_min(credit_limit, event_time) AS credit_limit_at_open,
                   arg_min(age, event_time) AS age, min(event_time) AS opened_at
            FROM {table("account_opened")} GROUP BY account_id
            HAVING min(event_time)::DATE < {obs}
        ), gone AS (
            SELECT DISTINCT account_id FROM {table("outcome")}
            WHERE default_flag = 1 AND observed_date < {obs}
        ), st AS (
            SELECT account_id, {month} - (year(statement_date) * 12 + month(statement_date)) + 1
                   AS k, arg_max(balance, event_time) AS balance,
                   arg_max(minimum_due, event_time) AS minimum_due,
                   arg_max(repayment_status, event_time) AS repayment_status
            FROM {table("statement")} WHERE statement_date < {obs} GROUP BY ALL
        ), pa AS (
            SELECT account_id, {month} - (year(event_time) * 12 + month(event_time)) + 1 AS k,
                   sum(amount) AS paid
            FROM {table("payment")} WHERE event_time::DATE < {obs} GROUP BY ALL
        ), monthly AS (
            SELECT account_id, {lags},
                   count(balance) AS statement_count,
                   count(CASE WHEN repayment_status >= 1 THEN 1 END) AS delinquent_months,
                   max(repayment_status) AS worst_delinquency
            FROM st FULL JOIN pa USING (account_id, k) WHERE k BETWEEN 1 AND 6 GROUP BY account_id
        ), pu AS (
            SELECT account_id,
                   sum(CASE WHEN k <= 3 THEN amount ELSE 0 END) AS spend_3m,
                   sum(amount) AS spend_6m, count(*) AS purchase_count_6m, {mix}
            FROM (SELECT *, {month} - (year(event_time) * 12 + month(event_time)) + 1 AS k
                  FROM {table("purchase")} WHERE event_time::DATE < {obs})
            WHERE k BETWEEN 1 AND 6 GROUP BY account_id
        ), lab AS (
            SELECT account_id, max(default_flag) AS label FROM {table("outcome")}
            WHERE observed_date >= {obs} AND observed_date < {obs} + INTERVAL 1 MONTH
            GROUP BY account_id
        ), joined AS (
            SELECT pop.*, monthly.* EXCLUDE (account_id), pu.* EXCLUDE (account_id), lab.label
            FROM pop LEFT JOIN monthly USING (account_id) LEFT JOIN pu USING (account_id)
            LEFT JOIN lab USING (account_id)
            WHERE account_id NOT IN (SELECT account_id FROM gone)
        )
        SELECT account_id, {obs} AS obs_date, label, * EXCLUDE (account_id, label, opened_at),
               date_diff('month', opened_at::DATE, {obs}) AS months_on_book,
               bill_amt_m1 / credit_limit_at_open AS utilisation_m1,
               (bill_amt_m1 - bill_amt_m3) / credit_limit_at_open AS utilisation_trend_3m,
               {ratios}, {shares}
        FROM joined
        ) TO '{out / "features"}' (FORMAT PARQUET, PARTITION_BY (obs_date), OVERWRITE_OR_IGNORE)
        """
    )
    counts["features"] = con.execute(
        f"SELECT count(*), sum(bill_amt_m1) FROM read_parquet('{out / 'features'}/*/*.parquet')"
    ).fetchone()
    con.close()
    return counts


def duckdb_on_s3(s3: Any, bucket: str, prefix: str, work: Path, obs_date: str) -> dict[str, Any]:
    """The DuckDB reference on the same S3 objects: download, transform, upload the Parquet."""
    from concurrent.futures import ThreadPoolExecutor

    raw = work / "raw"
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{prefix}events/"
        )
        for o in page.get("Contents", [])
    ]

    def get(key: str) -> None:
        path = raw / key[len(f"{prefix}events/") :]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(get, keys))
    counts = duckdb_reference(raw, work / "out", obs_date)
    files = [p for p in (work / "out").rglob("*.parquet")]

    def put(path: Path) -> None:
        key = f"{prefix}duckdb/{path.relative_to(work / 'out')}"
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, files))
    counts["objects_written"] = len(files)
    return counts


# ---- Spark -----------------------------------------------------------------------------------
def spark_jobs(spark: Any, settings: Settings, prefix: str) -> dict[str, Any]:
    """Both jobs, S3 in and out, with their default options (bookmarks, derived obs date)."""
    from etl.jobs import curated_to_features as c2f
    from etl.jobs import raw_to_curated as r2c

    raw, curated = settings.bucket("raw"), settings.bucket("curated")
    args = r2c.options(
        settings,
        JOB_NAME=f"r2c_{prefix.strip('/')}",
        source=f"s3://{raw}/{prefix}events/",
        target=f"s3://{curated}/{prefix}",
        quarantine=f"s3://{settings.bucket('quarantine')}/{prefix}etl/",
        run_date=RUN_DATE,
    )
    marks = {"start": time.perf_counter()}
    cur = r2c.run(spark, settings, args)
    marks["raw_to_curated"] = time.perf_counter()
    fargs = c2f.options(
        settings,
        JOB_NAME=f"c2f_{prefix.strip('/')}",
        source=f"s3://{curated}/{prefix}",
        target=f"s3://{settings.bucket('features')}/{prefix}features/",
        run_date=RUN_DATE,
        # the current date only, the one the DuckDB reference builds (not the training panel)
        obs_dates=CURRENT_OBS_DATE,
    )
    built = c2f.run(spark, settings, fargs)
    marks["curated_to_features"] = time.perf_counter()
    return {
        "ok": cur["rows_out_total"],
        "rows_in": cur["rows_in"],
        "features": built["rows_out"],
        "obs_date": built["obs_dates"][0],
        "r2c_s": marks["raw_to_curated"] - marks["start"],
        "c2f_s": marks["curated_to_features"] - marks["raw_to_curated"],
        "months_read": built["months_read"]["purchase"],
    }


def cold_worker(prefix: str) -> None:
    """In a subprocess (settings from the environment): both jobs on a fresh JVM, no warm-up."""
    from etl.spark import build_spark

    settings = Settings.from_env()
    spark = build_spark(settings, "bench-etl-cold")
    mark = time.perf_counter()
    result = spark_jobs(spark, settings, prefix)
    result["seconds"] = time.perf_counter() - mark
    spark.stop()
    print(json.dumps(result, default=str))


def cold_run(settings: Settings, prefix: str) -> dict[str, Any]:
    env = {**os.environ, **settings.to_env()}
    done = subprocess.run(
        [sys.executable, __file__, "--cold-worker", prefix],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    args = cli(__doc__ or "")
    logging.basicConfig(level=logging.WARNING)
    from infra.provision import provision
    from riskstream.clients import make_client

    default_accounts = 300 if args.quick else 2000
    small, big = (20_000, 200_000) if args.quick else (100_000, 1_000_000)
    rows: list[Row] = []
    with local_cloud("betl") as settings, tempfile.TemporaryDirectory(prefix="bench-etl-") as tmp:
        provision(settings)
        s3 = make_client(settings, "s3")
        log = RequestLog(
            Path(settings.state_dir) / "logs" / "cloud.log",
            [settings.bucket(r) for r in ("raw", "curated", "quarantine", "features", "artifacts")],
        )
        datasets = {
            "default/": portfolio_lines(default_accounts),
            "cold/": portfolio_lines(default_accounts),
            "small/": portfolio_lines(max(1, small // PER_ACCOUNT)),
            "big/": portfolio_lines(max(1, big // PER_ACCOUNT)),
        }
        objects = {
            p: upload_raw(s3, settings.bucket("raw"), p, lines) for p, lines in datasets.items()
        }
        from etl.spark import build_spark
        from etl.warmup import warm_up

        cold = cold_run(settings, "cold/")
        print(f"spark cold/ (fresh JVM, no warm-up): {cold['seconds']:.1f} s", flush=True)
        started = time.perf_counter()
        spark = build_spark(settings, "bench-etl", long_lived=True)  # as the warm session
        start_seconds = time.perf_counter() - started
        rows.append(
            Row(
                "etl",
                "Spark session start (local[2], S3A jars on the classpath)",
                start_seconds,
                "s",
                target="< 5 s",
                met=start_seconds < 5,
                id="etl.session_start.seconds",
            )
        )
        warm = warm_up(spark, settings)
        rows.append(
            Row(
                "etl",
                "Spark session warm-up (both jobs over the built-in portfolio, local scratch "
                "folder), as the pipeline's warm session runs it at start",
                warm["seconds"],
                "s",
                note=f"{warm['events']:,} events, {warm['features']} feature rows",
                id="etl.session_warmup.seconds",
            )
        )
        results: dict[str, dict[str, Any]] = {}
        for prefix in ("default/", "small/", "big/"):
            log.mark()
            mark = time.perf_counter()
            results[prefix] = spark_jobs(spark, settings, prefix)
            results[prefix]["seconds"] = time.perf_counter() - mark
            results[prefix]["requests"] = log.since()
            print(
                f"spark {prefix} {len(datasets[prefix]):,} events: "
                f"{results[prefix]['seconds']:.1f} s (r2c {results[prefix]['r2c_s']:.1f} s) "
                f"{results[prefix]['requests']}",
                flush=True,
            )
        spark.stop()
        obs = results["default/"]["obs_date"]
        mark = time.perf_counter()
        duck = duckdb_on_s3(s3, settings.bucket("raw"), "default/", Path(tmp) / "duck", obs)
        duck_s = time.perf_counter() - mark
        print(f"duckdb default: {duck_s:.1f} s", flush=True)

    d = results["default/"]
    events = len(datasets["default/"])
    same = d["ok"] == duck.get("ok") and d["features"] == duck["features"][0]
    rows.append(
        ratio_row(
            "etl",
            f"both ETL jobs on S3, default portfolio ({default_accounts:,} accounts x 12 months, "
            f"{events:,} events): Spark processing on the warmed-up session / DuckDB",
            d["seconds"],
            "s",
            "DuckDB, same transformation on the same S3 objects (via boto3)",
            duck_s,
            ratio_at_most=5,
            note=(
                f"raw_to_curated {d['r2c_s']:.1f} s, curated_to_features {d['c2f_s']:.1f} s; "
                f"{objects['default/']} raw objects; outputs agree: {same} (curated {d['ok']} vs "
                f"{duck.get('ok')}, features {d['features']} vs {duck['features'][0]}); "
                f"obs date {obs}"
            ),
            id="etl.s3.default.ratio",
        )
    )
    rows.append(
        ratio_row(
            "etl",
            "both ETL jobs on S3, default portfolio, on a fresh JVM without warm-up (a task "
            "with no session running): Spark processing / DuckDB",
            cold["seconds"],
            "s",
            "DuckDB, same transformation on the same S3 objects (via boto3)",
            duck_s,
            note=f"raw_to_curated {cold['r2c_s']:.1f} s, curated_to_features {cold['c2f_s']:.1f} s",
            id="etl.s3.default.cold_ratio",
        )
    )
    wall = d["seconds"] + start_seconds + warm["seconds"]
    rows.append(
        ratio_row(
            "etl",
            "both ETL jobs on S3, default portfolio: Spark wall time incl. session start and "
            "warm-up",
            wall,
            "s",
            "Spark processing alone",
            d["seconds"],
            at_most=60,
            id="etl.s3.default.seconds",
        )
    )
    requests = d["requests"]
    rows.append(
        ratio_row(
            "etl",
            "S3 requests of both ETL jobs, default portfolio",
            requests["total"],
            "requests",
            "raw objects read",
            objects["default/"],
            note=", ".join(f"{k} {v}" for k, v in sorted(requests.items()) if k != "total"),
            id="etl.s3.default.requests",
        )
    )
    s_small, s_big = results["small/"]["seconds"], results["big/"]["seconds"]
    n_small, n_big = len(datasets["small/"]), len(datasets["big/"])
    growth = s_big / s_small
    rows.append(
        ratio_row(
            "etl",
            f"growth: both ETL jobs on S3, {n_big:,} events / {n_small:,} events",
            growth,
            "x",
            f"{n_big / n_small:.1f}x the events (linear)",
            n_big / n_small,
            at_most=11,
            note=f"{s_small:.1f} s and {s_big:.1f} s; S3 requests "
            f"{results['small/']['requests']['total']} and {results['big/']['requests']['total']}",
            id="etl.s3.growth_10x",
        )
    )
    write_rows(args.out, rows)


PER_ACCOUNT = 74  # events per account of the 12-month synthetic portfolio


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--cold-worker":
        cold_worker(sys.argv[2])
    else:
        main()
