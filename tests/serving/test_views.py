"""Each analyst view's DuckDB query on a small Parquet fixture, with exact expected rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from riskstream.scorescale import ScoreScale
from serving import views

pytestmark = pytest.mark.unit

D1, D2 = "2026-01-31", "2026-02-28"
RUN = "20260301T080000000000Z"  # when a rerun replaced D2's first run

SCORES = {
    # account: (d1: score, pd, tier, exposure, label), (d2: ...)
    "a": ((820, 0.01, "Prime", 1000.0, 0), (700, 0.05, "Near-prime", 1000.0, 0)),
    "b": ((650, 0.10, "Subprime", 2000.0, 1), (640, 0.12, "Subprime", 2000.0, None)),
    "c": ((300, 0.90, "High risk", 500.0, 1), (850, 0.001, "Prime", 500.0, 0)),
    "d": ((560, 0.30, "High risk", 4000.0, 0), None),
}
FEATURES = {
    # account: (utilisation_avg_3m, months_on_book, repayment_status_m1, ..._m2) at both dates
    "a": (0.10, 5, -1, 0),
    "b": (0.55, 30, 2, 1),
    "c": (1.20, 70, 4, 3),
    "d": (None, 12, 1, -2),
}


def _write(root: Path, table: str, key: str, day: str, rows: list[dict]) -> None:
    folder = root / table / f"{key}={day}"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), folder / "part-0.parquet")


def write_fixture(root: Path) -> None:
    """Scores and features of four accounts on two dates, Hive-partitioned under ``root``."""
    for i, day in enumerate((D1, D2)):
        obs = dt.date.fromisoformat(day)
        scores, feats = [], []
        for acct, by_day in SCORES.items():
            if by_day[i] is None:
                continue
            score, pd_, tier, exposure, label = by_day[i]
            scores.append(
                {
                    "account_id": acct,
                    "obs_date": obs,
                    "pd": pd_,
                    "score": score,
                    "risk_tier": tier,
                    "decision": "decline" if pd_ >= 0.3 else "approve",
                    "reason_1": f"{acct}-r1",
                    "reason_2": None,
                    "reason_3": None,
                    "model_name": "m",
                    "model_version": "1",
                    "label": label,
                    "exposure": exposure,
                }
            )
            util, mob, status, before = FEATURES[acct]
            feats.append(
                {
                    "account_id": acct,
                    "utilisation_avg_3m": util,
                    "months_on_book": mob + i,
                    "repayment_status_m1": status,
                    "repayment_status_m2": before,
                }
            )
        _write(root, "scores", "score_date", day, scores)
        _write(root, "features", "obs_date", day, feats)
        if day == D2:  # a rerun of D2 replaced this run, which scored a and c differently
            replaced = [dict(r, model_version="0") for r in scores]
            replaced[0].update(risk_tier="Prime", score=810)
            replaced[2].update(risk_tier="High risk", score=320)
            _write(root, "scores_replaced", "score_date", f"{day}/replaced_at={RUN}", replaced)


def local_connect(root: Path) -> duckdb.DuckDBPyConnection:
    """A connection with ``scores`` and ``features`` tables read from ``root`` (in memory, as
    the dashboard's warm connection holds them)."""
    c = duckdb.connect()
    for table, key in (("scores", "score_date"), ("features", "obs_date")):
        c.execute(
            f"CREATE TABLE {table} AS SELECT * FROM read_parquet("
            f"'{root}/{table}/*/*.parquet', hive_partitioning = true, "
            f"hive_types = {{'{key}': DATE}})"
        )
    if (root / "scores_replaced").exists():
        c.execute(
            f"CREATE TABLE scores_replaced AS SELECT * FROM read_parquet("
            f"'{root}/scores_replaced/*/*/*.parquet', hive_partitioning = true, "
            "hive_types = {'score_date': DATE, 'replaced_at': VARCHAR})"
        )
    return c


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    write_fixture(tmp_path)
    return local_connect(tmp_path)


def test_score_dates(con: duckdb.DuckDBPyConnection) -> None:
    assert views.score_dates(con) == [D1, D2]


def test_overview(con: duckdb.DuckDBPyConnection) -> None:
    columns, rows = views.overview(con, lgd=0.5)
    assert columns == [
        "score_date",
        "accounts",
        "exposure",
        "expected_loss",
        "predicted_default_rate",
        "observed_default_rate",
        "labelled_accounts",
        "declines",
    ]
    d1 = (D1, 4, 7500.0, 0.5 * (10 + 200 + 450 + 1200), (0.01 + 0.1 + 0.9 + 0.3) / 4, 0.5, 4, 2)
    d2 = (D2, 3, 3500.0, 0.5 * (50 + 240 + 0.5), (0.05 + 0.12 + 0.001) / 3, 0.0, 2, 0)
    assert rows == [pytest.approx(d1), pytest.approx(d2)]
    _, high = views.overview(con, tiers=["High risk"], date_to=D1)
    assert high == [pytest.approx((D1, 2, 4500.0, 450 + 1200, 0.6, 0.5, 2, 2))]
    _, later = views.overview(con, date_from=D2)
    assert [r[0] for r in later] == [D2]


def test_distribution_spans_300_to_850(con: duckdb.DuckDBPyConnection) -> None:
    assert views.distribution(con, D1) == (
        ["band_low", "risk_tier", "accounts"],
        [(300, "High risk", 1), (550, "High risk", 1), (650, "Subprime", 1), (800, "Prime", 1)],
    )
    # 850 falls in the last band (825-850), not past the range
    _, rows = views.distribution(con, D2, tiers=["Prime"])
    assert rows == [(825, "Prime", 1)]


def test_distribution_follows_the_configured_scale_and_the_real_range_is_reported(
    con: duckdb.DuckDBPyConnection,
) -> None:
    scale = ScoreScale(min_score=400, max_score=900)
    _, rows = views.distribution(con, D1, scale=scale)
    # below the minimum: the first band; the last band (875-900) holds the maximum
    assert rows == [
        (400, "High risk", 1),
        (550, "High risk", 1),
        (650, "Subprime", 1),
        (800, "Prime", 1),
    ]
    assert views.score_range(con, D1) == (
        ["min_score", "median_score", "max_score", "accounts"],
        [(300, 605.0, 820, 4)],
    )
    assert views.score_range(con, D2, tiers=["Prime", "Near-prime"])[1] == [(700, 775.0, 850, 2)]


def test_migration_matrix_has_every_pair(con: duckdb.DuckDBPyConnection) -> None:
    columns, rows = views.migration(con, D1, D2)
    assert columns == ["from_tier", "to_tier", "accounts"]
    assert len(rows) == 16
    moved = [(a, b, n) for a, b, n in rows if n]
    assert moved == [
        ("Prime", "Near-prime", 1),
        ("Subprime", "Subprime", 1),
        ("High risk", "Prime", 1),
    ]
    assert rows[0] == ("Prime", "Prime", 0)
    _, filtered = views.migration(con, D1, D2, tiers=["High risk"])
    assert [(a, b, n) for a, b, n in filtered if n] == [("High risk", "Prime", 1)]


def test_migration_between_two_runs_of_one_date(con: duckdb.DuckDBPyConnection) -> None:
    assert views.replaced_runs(con) == [(D2, RUN, "0", 3)]
    _, rows = views.migration(con, D2, D2, from_run=RUN)
    assert [(a, b, n) for a, b, n in rows if n] == [
        ("Prime", "Near-prime", 1),
        ("Subprime", "Subprime", 1),
        ("High risk", "Prime", 1),
    ]
    _, same = views.migration(con, D2, D2)  # the current run against itself
    unchanged = [(t, t) for t in ("Prime", "Near-prime", "Subprime")]
    assert [(a, b) for a, b, n in same if n] == unchanged
    _, high = views.migration(con, D2, D2, tiers=["High risk"], from_run=RUN)
    assert [(a, b, n) for a, b, n in high if n] == [("High risk", "Prime", 1)]
    con.execute("DROP TABLE scores_replaced")
    assert views.replaced_runs(con) == []


def test_segments(con: duckdb.DuckDBPyConnection) -> None:
    columns, rows = views.segments(con, D1)
    assert columns == [
        "risk_tier",
        "utilisation_band",
        "mob_band",
        "accounts",
        "mean_pd",
        "exposure",
    ]
    assert rows == [
        ("High risk", ">100%", "60+", 1, 0.9, 500.0),
        ("High risk", "unknown", "12-23", 1, 0.3, 4000.0),
        ("Prime", "<30%", "<12", 1, 0.01, 1000.0),
        ("Subprime", "50-80%", "24-59", 1, 0.1, 2000.0),
    ]


def test_segments_without_features(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DROP TABLE features")
    _, rows = views.segments(con, D2)
    assert rows == [
        ("Near-prime", "unknown", "unknown", 1, 0.05, 1000.0),
        ("Prime", "unknown", "unknown", 1, 0.001, 500.0),
        ("Subprime", "unknown", "unknown", 1, 0.12, 2000.0),
    ]


def test_delinquency_buckets(con: duckdb.DuckDBPyConnection) -> None:
    _, rows = views.delinquency(con)
    assert rows == [
        (D1, "30", 1),
        (D1, "60", 1),
        (D1, "90+", 1),
        (D1, "current", 1),
        (D2, "60", 1),
        (D2, "90+", 1),
        (D2, "current", 1),
    ]


def test_roll_rates(con: duckdb.DuckDBPyConnection) -> None:
    columns, rows = views.roll_rates(con, D1)
    assert columns == ["from_bucket", "to_bucket", "accounts", "rate"]
    assert len(rows) == 16
    assert [r for r in rows if r[2]] == [
        ("current", "current", 1, 0.5),
        ("current", "30", 1, 0.5),
        ("30", "60", 1, 1.0),
        ("90+", "90+", 1, 1.0),
    ]
    # no account was 60 days late the month before: its rates are undefined, not zero
    assert [r[3] for r in rows if r[0] == "60"] == [None] * 4
    _, high = views.roll_rates(con, D1, tiers=["High risk"])
    assert [r[:3] for r in high if r[2]] == [("current", "30", 1), ("90+", "90+", 1)]


def test_roll_rates_and_vintage_need_their_inputs(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE OR REPLACE TABLE features AS SELECT account_id, obs_date FROM features")
    assert views.roll_rates(con, D1)[1] == []
    assert views.vintage(con)[1] == []


def test_vintage(con: duckdb.DuckDBPyConnection) -> None:
    columns, rows = views.vintage(con)
    assert columns == [
        "cohort",
        "months_on_book",
        "accounts",
        "observed_default_rate",
        "mean_pd",
    ]
    assert rows == [
        ("2020Q1", 70, 1, 1.0, 0.9),
        ("2020Q1", 71, 1, 0.0, 0.001),
        ("2023Q3", 30, 1, 1.0, 0.1),
        ("2023Q3", 31, 1, None, 0.12),
        ("2025Q1", 12, 1, 0.0, 0.3),
        ("2025Q3", 5, 1, 0.0, 0.01),
        ("2025Q3", 6, 1, 0.0, 0.05),
    ]
    _, prime = views.vintage(con, tiers=["Prime"])
    assert [r[:2] for r in prime] == [("2020Q1", 71), ("2025Q3", 5)]


def test_accounts_and_account(con: duckdb.DuckDBPyConnection) -> None:
    _, rows = views.accounts(con, D1, limit=2)
    assert [(r[0], r[1]) for r in rows] == [("c", 300), ("d", 560)]
    _, rows = views.accounts(con, D1, tiers=["Prime", "Subprime"])
    assert [r[0] for r in rows] == ["b", "a"]
    columns, history = views.account(con, "c")
    assert [dict(zip(columns, h, strict=True))["score"] for h in history] == [300, 850]
    assert [h[0] for h in history] == [D1, D2]
    assert history[0][columns.index("reason_1")] == "c-r1"
    assert views.account(con, "nobody")[1] == []


def test_account_events(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE TABLE curated_purchase AS SELECT * FROM (VALUES "
        "('a', TIMESTAMP '2026-01-03 10:00:00', 'demo', 12.5), "
        "('a', TIMESTAMP '2026-01-01 09:00:00', 'other', 99.0), "
        "('b', TIMESTAMP '2026-01-02 09:00:00', 'demo', 1.0)) "
        "t(account_id, event_time, source, amount)"
    )
    con.execute(
        "CREATE TABLE curated_statement AS SELECT * FROM (VALUES "
        "('a', TIMESTAMP '2026-01-02 00:00:00', 'demo', 300.0)) "
        "t(account_id, event_time, source, bill_amount)"
    )
    tables = ["scores", "curated_purchase", "curated_statement"]
    columns, rows = views.account_events(con, "a", tables, portfolio="demo")
    assert columns == ["event_time", "event_type", "detail"]
    assert [(r[0][:10], r[1]) for r in rows] == [
        ("2026-01-02", "statement"),
        ("2026-01-03", "purchase"),
    ]
    assert '"amount":12.5' in rows[1][2]
    # another portfolio's rows of the same account id stay out; without one, all show
    assert len(views.account_events(con, "a", tables)[1]) == 3
    assert views.account_events(con, "a", ["scores"])[1] == []


def test_drift_rows_from_reports() -> None:
    reports = [
        {
            "score_date": D2,
            "score": {"psi": 0.3, "flag": True, "expected": [0.5, 0.5], "actual": [0.9, 0.1]},
            "features": {"age": {"psi": 0.01, "flag": False, "edges": [0, 40, 90]}},
        },
        {"score_date": D1, "score": None, "features": {}},
    ]
    columns, rows = views.drift(reports)
    assert columns[:4] == ["score_date", "input", "psi", "flag"]
    assert [r[:4] for r in rows] == [(D2, "(score)", 0.3, True), (D2, "age", 0.01, False)]
    assert rows[1][4] == [0, 40, 90]
    assert views.drift(reports, score_date=D1)[1] == []


def _purchases(con: duckdb.DuckDBPyConnection, rows: list[tuple[str, str, str, float]]) -> None:
    con.execute(
        "CREATE TABLE curated_purchase (account_id VARCHAR, event_time TIMESTAMP, "
        "source VARCHAR, amount DOUBLE)"
    )
    con.executemany("INSERT INTO curated_purchase VALUES (?, CAST(? AS TIMESTAMP), ?, ?)", rows)


def test_spend_trends_and_jumps_by_hand(con: duckdb.DuckDBPyConnection) -> None:
    # "a" buys 100 a month Jan-Apr, nothing in May, 1,000 in June: its June average before is
    # (100 * 4 + 0) / 5 = 80 and 1,000 >= 3 * 80, 920 >= 100: a jump. "b" buys 50 in January,
    # 400 in February (one month of history: too soon) and 400 in June (average before 80 over
    # 5 months: 400 >= 240 and 320 >= 100: a jump). "other" is another portfolio's.
    rows = [("a", f"2026-0{m}-10 09:00:00", "demo", 100.0) for m in range(1, 5)]
    rows += [
        ("a", "2026-06-02 09:00:00", "demo", 600.0),
        ("a", "2026-06-20 09:00:00", "demo", 400.0),
    ]
    rows += [
        ("b", "2026-01-15 09:00:00", "demo", 50.0),
        ("b", "2026-02-15 09:00:00", "demo", 400.0),
    ]
    rows += [("b", "2026-06-15 09:00:00", "demo", 400.0)]
    rows += [("other", "2026-06-15 09:00:00", "synthetic", 9e6)]
    _purchases(con, rows)
    tables = ["scores", "curated_purchase"]
    columns, spend = views.spend(con, tables, "demo")
    assert columns == [
        "month",
        "spend",
        "accounts",
        "spend_per_account",
        "avg_3m",
        "avg_6m",
        "jumps",
    ]
    months = [r[0] for r in spend]
    assert months == [f"2026-0{m}-01" for m in range(1, 7)]
    totals = [r[1] for r in spend]
    assert totals == [150.0, 500.0, 100.0, 100.0, 0.0, 1400.0]
    assert [r[2] for r in spend] == [2, 2, 1, 1, 0, 2]
    assert spend[4][3] is None and spend[5][3] == 700.0
    assert spend[2][4] == pytest.approx((150 + 500 + 100) / 3)
    assert spend[5][5] == pytest.approx(sum(totals) / 6)
    assert [r[6] for r in spend] == [0, 0, 0, 0, 0, 2]

    _, jumps = views.spend_jumps(con, tables, "demo")
    assert [(r[0], r[1], r[2]) for r in jumps] == [
        ("2026-06-01", "a", 1000.0),
        ("2026-06-01", "b", 400.0),
    ]
    assert jumps[0][3] == pytest.approx(80.0) and jumps[0][4] == pytest.approx(12.5)
    assert views.spend_jumps(con, tables, "demo", month="2026-05-31")[1] == []
    assert views.spend_jumps(con, tables, "demo", month="2026-06-30")[1] == jumps
    # the tier filter keeps the accounts whose latest tier is among those asked for
    _, near = views.spend_jumps(con, tables, "demo", tiers=["Near-prime"])
    assert [r[1] for r in near] == ["a"]
    assert views.spend(con, ["scores"], "demo")[1] == []  # no purchases table: no rows


def test_a_segment_filters_every_view_by_the_accounts_features(
    con: duckdb.DuckDBPyConnection,
) -> None:
    # on D1: a <30% / <12, b 50-80% / 24-59, c >100% / 60+, d unknown / 12-23
    high_util = views.Segment.of(">100%", None)
    assert [r[0] for r in views.accounts(con, D1, segment=high_util)[1]] == ["c"]
    assert [
        r[0] for r in views.accounts(con, D1, segment=views.Segment.of("unknown", None))[1]
    ] == ["d"]
    both = views.Segment.of("50-80%", "24-59")
    assert [r[0] for r in views.accounts(con, D1, segment=both)[1]] == ["b"]
    assert views.accounts(con, D1, segment=views.Segment.of("50-80%", "60+"))[1] == []
    assert sum(r[2] for r in views.distribution(con, D1, segment=high_util)[1]) == 1
    over = views.overview(con, segment=views.Segment.of(None, "12-23"))[1]
    assert [(r[0], r[1]) for r in over] == [(D1, 1)]  # d is scored on D1 only
    mig = views.migration(con, D1, D2, segment=high_util)[1]
    assert [(r[0], r[1]) for r in mig if r[2]] == [("High risk", "Prime")]
    seg = views.segments(con, D1, ["High risk"], segment=high_util)[1]
    assert [(r[0], r[1]) for r in seg] == [("High risk", ">100%")]
    assert views.Segment.of(None, None) is None
    with pytest.raises(ValueError, match=r"no utilisation band '90%'.*<30%, 30-50%"):
        views.Segment.of("90%", None)
