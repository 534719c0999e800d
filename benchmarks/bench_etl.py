"""ETL: raw -> curated -> features with the Spark jobs, against a DuckDB reference doing the same
transformation (parse, validate with the same rules, de-duplicate, drop unknown accounts, write
Parquet by dt; then one feature row per account with the same lags and aggregates) on the same
gzip JSON-lines files in the same run. Spark's session start is reported apart from processing.

Local folders, not S3A: moto in one Python process serves S3 far slower than the local disk, so
through S3A the figure would measure moto, not the job (the S3A path is covered by the tests).
"""

from __future__ import annotations

import gzip
import json
import logging
import random
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from common import Row, cli, write_rows

from riskstream.events import MERCHANT_CATEGORIES, PAYLOAD_SCHEMAS, FieldSpec
from riskstream.settings import Settings

MONTH_ENDS = ["2005-04-30", "2005-05-31", "2005-06-30", "2005-07-31", "2005-08-31", "2005-09-30"]
RUN_DATE = "2026-01-15"


# ---- data ------------------------------------------------------------------------------------
def generate(root: Path, n_events: int, seed: int = 7) -> int:
    """Write about ``n_events`` events as one gzip JSON-lines file per dt; return the count.

    Per account: 1 opening, 6 statements, 6 payments, purchases, 1 outcome (~40 events). About
    0.5 % of lines are re-sent duplicates and 0.1 % are broken.
    """
    rng = random.Random(seed)
    per_account = 40
    accounts = max(1, n_events // per_account)
    by_dt: dict[str, list[str]] = {}

    def emit(kind: str, account: str, when: str, payload: dict[str, Any]) -> None:
        event = {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "event_type": kind,
            "account_id": account,
            "event_time": when + "T12:00:00Z",
            "schema_version": 1,
            "source": "synthetic",
            "payload": payload,
        }
        text = json.dumps(event, separators=(",", ":"))
        lines = by_dt.setdefault(when, [])
        lines.append(text)
        roll = rng.random()
        if roll < 0.005:
            lines.append(text)
        elif roll < 0.006:
            lines.append(text[: len(text) // 2])

    written = 0
    for a in range(accounts):
        account = f"C{a:07d}"
        limit = rng.choice([1e4, 3e4, 5e4, 1e5])
        emit("account_opened", account, "2005-03-01", {"credit_limit": limit, "age": 20 + a % 50})
        risk = rng.random()
        for month_end in MONTH_ENDS:
            balance = round(limit * rng.random() * (0.5 + risk), 2)
            emit(
                "statement",
                account,
                month_end,
                {
                    "statement_date": month_end,
                    "balance": balance,
                    "minimum_due": round(balance * 0.05, 2),
                    "due_date": month_end,
                    "repayment_status": int(risk * 4) - 1,
                },
            )
            emit("payment", account, month_end, {"amount": round(balance * (1 - risk) * 0.3, 2)})
            for _ in range(4):
                emit(
                    "purchase",
                    account,
                    month_end[:8] + "15",
                    {
                        "amount": round(rng.uniform(5, 300), 2),
                        "merchant_category": rng.choice(MERCHANT_CATEGORIES),
                    },
                )
        emit(
            "outcome",
            account,
            "2005-10-31",
            {"default_flag": int(rng.random() < risk * 0.4), "observed_date": "2005-10-31"},
        )
    for dt, lines in by_dt.items():
        folder = root / f"dt={dt}"
        folder.mkdir(parents=True)
        with gzip.open(folder / "part-0.jsonl.gz", "wt", compresslevel=6) as handle:
            handle.write("\n".join(lines) + "\n")
        written += len(lines)
    return written


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


def duckdb_reference(raw: Path, out: Path) -> dict[str, Any]:
    """raw -> curated -> features in DuckDB; returns row counts to compare with Spark's."""
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
            FROM read_csv('{raw}/*/*.jsonl.gz', columns={{'column0': 'VARCHAR'}}, header=false,
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
        con.execute(
            f"""COPY (SELECT event_id, account_id, ts AS event_time, source, {cols}, dt
                      FROM classified WHERE final_reason IS NULL AND rk = 1
                      AND event_type = '{event_type}')
                TO '{curated / event_type}' (FORMAT PARQUET, PARTITION_BY (dt),
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

    obs = "DATE '2005-10-01'"
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


# ---- Spark -----------------------------------------------------------------------------------
def spark_jobs(spark: Any, settings: Settings, raw: Path, out: Path) -> dict[str, Any]:
    from etl.jobs import curated_to_features as c2f
    from etl.jobs import raw_to_curated as r2c

    args = r2c.options(
        settings,
        source=str(raw),
        target=str(out / "curated"),
        quarantine=str(out / "quarantine"),
        run_date=RUN_DATE,
        job_bookmark_option="job-bookmark-disable",
    )
    curated = r2c.run(spark, settings, args)
    fargs = c2f.options(
        settings,
        source=str(out / "curated"),
        target=str(out / "features"),
        run_date=RUN_DATE,
        obs_dates="2005-10-01",
        job_bookmark_option="job-bookmark-disable",
    )
    built = c2f.run(spark, settings, fargs)
    total = spark.read.parquet(str(out / "features")).agg({"bill_amt_m1": "sum"}).first()[0]
    return {
        "ok": curated["rows_out_total"],
        "quarantined": curated["quarantined_total"],
        "duplicate": curated["duplicates_removed"],
        "features": (built["rows_out"], total),
    }


def main() -> None:
    args = cli(__doc__ or "")
    logging.basicConfig(level=logging.WARNING)
    sizes = [20_000, 100_000] if args.quick else [100_000, 1_000_000]
    settings = Settings.from_mapping({})
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-etl-") as tmp:
        base = Path(tmp)
        data = {}
        files: dict[int, int] = {}
        for n in sizes:
            data[n] = generate(base / f"raw{n}", n)
            files[n] = len(list((base / f"raw{n}").iterdir()))
        from etl.spark import build_spark

        started = time.perf_counter()
        spark = build_spark(settings, "bench-etl")
        start_seconds = time.perf_counter() - started
        warm = time.perf_counter()
        spark.range(10).count()
        first_query = time.perf_counter() - warm
        rows.append(
            Row(
                "etl",
                "Spark session start (local[2], S3A jars on the classpath)",
                start_seconds,
                "s",
                target="< 5 s",
                met=start_seconds < 5,
                note=f"first trivial query after start: {first_query:.1f} s (JVM warm-up)",
            )
        )
        for n in sizes:
            events = data[n]
            timings: dict[str, list[float]] = {"spark": [], "duckdb": []}
            results: dict[str, Any] = {}
            for attempt in range(1 if n >= 1_000_000 else 2):
                for engine in ("spark", "duckdb"):
                    out = base / f"{engine}{n}-{attempt}"
                    mark = time.perf_counter()
                    if engine == "spark":
                        results[engine] = spark_jobs(spark, settings, base / f"raw{n}", out)
                    else:
                        results[engine] = duckdb_reference(base / f"raw{n}", out)
                    timings[engine].append(time.perf_counter() - mark)
                    print(f"{engine} {n:,} events: {timings[engine][-1]:.2f} s", flush=True)
                    shutil.rmtree(out, ignore_errors=True)
            spark_s, duck_s = min(timings["spark"]), min(timings["duckdb"])
            same = (
                results["spark"]["ok"] == results["duckdb"].get("ok")
                and results["spark"]["features"][0] == results["duckdb"]["features"][0]
            )
            ratio = duck_s / spark_s  # Spark's rate over DuckDB's
            rows.append(
                Row(
                    "etl",
                    f"raw -> curated -> features, {n:,} events (Spark processing)",
                    events / spark_s,
                    "events/s",
                    reference=f"DuckDB, same transformation and files ({duck_s:.2f} s)",
                    reference_value=events / duck_s,
                    ratio=ratio,
                    target=">= 0.2 (time within 5x DuckDB's)",
                    met=ratio >= 0.2,
                    note=(
                        f"Spark {spark_s:.2f} s (2 cores, both jobs, best of "
                        f"{len(timings['spark'])}); local folders, {files[n]} gzip JSON-lines "
                        f"files; DuckDB 2 threads; outputs agree: {same} "
                        f"(curated {results['spark']['ok']} vs {results['duckdb'].get('ok')}, "
                        f"features {results['spark']['features'][0]} vs "
                        f"{results['duckdb']['features'][0]})"
                    ),
                )
            )
        spark.stop()
    write_rows(args.out, rows)


if __name__ == "__main__":
    main()
