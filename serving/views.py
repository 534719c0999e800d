"""The analyst's views: one DuckDB query each, over the views ``scores`` and (when present)
``features`` of a connection (see :mod:`serving.warehouse`), so the portfolio never leaves the
server; only the aggregates do.

Every function takes a DuckDB connection (or cursor) and filters, and returns
``(columns, rows)``: column names and tuples, ready for JSON or CSV. Filters: ``tiers`` keeps
those risk tiers only; ``segment`` (a :class:`Segment`) keeps the accounts whose features on the
scored observation date fall in a utilisation band and/or a months-on-book band (an account
without a features row is in no segment); dates are ISO strings of score dates. The views:

- ``overview``: per score date, accounts, exposure, expected loss (PD x exposure x LGD),
  predicted default rate (mean PD) and observed default rate (mean label where known);
- ``distribution``: accounts per 25-point score band on the configured scale
  (``Settings.score_scale``, 300-850 by default) and tier; ``score_range``: the lowest, median
  and highest score of a date;
- ``migration``: accounts per (tier at ``from``, tier at ``to``) for accounts in both dates, or
  between a replaced run of a date (``scores_replaced``, kept by each rerun) and its current one;
- ``segments``: tier x utilisation band x months-on-book band: accounts, mean PD, exposure;
- ``delinquency``: accounts per repayment-status bucket (current, 30, 60, 90+ days) per date;
- ``roll_rates``: accounts per (bucket last month but one, bucket last month) on a date, and the
  share of each earlier bucket that rolled to each later one;
- ``vintage``: per origination quarter (scoring date minus months on book) and months on book,
  accounts, observed default rate and mean PD;
- ``accounts``: the riskiest accounts of a date; ``account``: one account's score history;
  ``events``: its curated events over time (the catalog's ``curated_*`` tables);
- ``drift``: PSI per input and of the score per date, from the stored PSI reports.

- ``spend``: the portfolio's monthly spend (the curated purchases) beside its 3- and 6-month
  rolling averages, with the accounts spending and the spend jumps of each month;
- ``spend_jumps``: the accounts whose spend jumped in a month (the rule: :func:`spend_jumps`).

A view whose inputs the tables lack answers no rows.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from riskstream.names import (
    CURATED_TABLE_PREFIX,
    DELINQUENCY_BUCKETS,
    REPLACED_AT,
    REPLACED_SCORES_TABLE,
    UNKNOWN_BUCKET,
    curated_table,
)
from riskstream.scorescale import DEFAULT_SCALE, ScoreScale
from serving.monitoring import PSI_ALERT
from serving.scoring import TIER_NAMES

SCORE_BAND = 25
UTILISATION_COLUMNS = ("utilisation_avg_3m", "utilisation_m1")
MOB_COLUMN = "months_on_book"
STATUS_COLUMN = "repayment_status_m1"
# (label, lower bound inclusive) in ascending order; the last band is open-ended
UTILISATION_BANDS: tuple[tuple[str, float], ...] = (
    ("<30%", -math.inf),
    ("30-50%", 0.30),
    ("50-80%", 0.50),
    ("80-100%", 0.80),
    (">100%", 1.00),
)
MOB_BANDS: tuple[tuple[str, int], ...] = (
    ("<12", -(10**9)),
    ("12-23", 12),
    ("24-59", 24),
    ("60+", 60),
)
UNKNOWN = UNKNOWN_BUCKET
HIGH_RISK_ROWS = 50
STATUS_PREVIOUS_COLUMN = "repayment_status_m2"
NOT_COMPUTED: dict[str, str] = {}  # view -> why it has nothing to show yet
# A spend jump: an account's spend in a month at least SPEND_JUMP_RATIO times its average over
# the SPEND_JUMP_MONTHS months before (months without a purchase count as 0), and at least
# SPEND_JUMP_FLOOR above that average, once it has SPEND_JUMP_HISTORY months of history.
SPEND_JUMP_RATIO = 3.0
SPEND_JUMP_MONTHS = 6
SPEND_JUMP_HISTORY = 3
SPEND_JUMP_FLOOR = 100.0
PURCHASES = curated_table("purchase")

Result = tuple[list[str], list[tuple[Any, ...]]]


def _run(con: Any, sql: str, params: Sequence[Any] = ()) -> Result:
    cur = con.execute(sql, list(params))
    columns = [d[0] for d in cur.description]
    return columns, [tuple(plain(v) for v in row) for row in cur.fetchall()]


def plain(value: Any) -> Any:
    """A JSON- and CSV-friendly scalar: dates as ISO strings, decimals as floats, NaN as None."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _tier_clause(tiers: Sequence[str] | None, column: str = "risk_tier") -> tuple[str, list[Any]]:
    if not tiers:
        return "TRUE", []
    return f"{column} IN ({', '.join('?' for _ in tiers)})", list(tiers)


@dataclass(frozen=True)
class Segment:
    """A utilisation band and/or a months-on-book band, by their labels (``unknown`` too)."""

    utilisation: str | None = None
    mob: str | None = None

    @classmethod
    def of(cls, utilisation: str | None, mob: str | None) -> Segment | None:
        """The segment of two optional labels, or None; a label that is no band's is an error
        naming the bands."""
        for label, bands, what in (
            (utilisation, UTILISATION_BANDS, "utilisation"),
            (mob, MOB_BANDS, "months-on-book"),
        ):
            choices = [b for b, _ in bands] + [UNKNOWN]
            if label is not None and label not in choices:
                raise ValueError(f"no {what} band {label!r}; use one of: {', '.join(choices)}")
        return cls(utilisation, mob) if (utilisation or mob) else None


def _scope(
    con: Any,
    tiers: Sequence[str] | None,
    segment: Segment | None,
    scores: str = "scores",
) -> tuple[str, list[Any]]:
    """The WHERE condition (and its parameters) keeping the rows of ``scores`` (the table or
    its alias) in ``tiers`` and ``segment``."""
    prefix = "" if scores == "scores" else f"{scores}."
    where, params = _tier_clause(tiers, f"{prefix}risk_tier")
    if segment is None:
        return where, params
    feature_cols = columns_of(con, "features")
    if not feature_cols:
        return f"{where} AND FALSE", params
    conditions = []
    for label, candidates, bands in (
        (segment.utilisation, UTILISATION_COLUMNS, UTILISATION_BANDS),
        (segment.mob, (MOB_COLUMN,), MOB_BANDS),
    ):
        if label is not None:
            expr = _feature_expr(feature_cols, candidates).replace('f."', 'seg."')
            conditions.append(f"{_band_case(expr, bands)} = ?")
            params.append(label)
    where += (
        f" AND EXISTS (SELECT 1 FROM features seg WHERE seg.account_id = {scores}.account_id "
        f"AND seg.obs_date = {scores}.obs_date AND {' AND '.join(conditions)})"
    )
    return where, params


def _band_case(column: str, bands: Sequence[tuple[str, float]]) -> str:
    """A CASE mapping ``column`` to the label of the last band whose lower bound it reaches."""
    whens = " ".join(
        f"WHEN {column} >= {lower!r} THEN '{label}'" for label, lower in reversed(bands[1:])
    )
    return f"CASE WHEN {column} IS NULL THEN '{UNKNOWN}' {whens} ELSE '{bands[0][0]}' END"


def columns_of(con: Any, view: str) -> list[str]:
    """The columns of a view or table, or [] when it does not exist."""
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
        "ORDER BY ordinal_position",
        [view],
    ).fetchall()
    return [r[0] for r in rows]


def score_dates(con: Any) -> list[str]:
    """The score dates present, oldest first."""
    _, rows = _run(con, "SELECT DISTINCT score_date FROM scores ORDER BY 1")
    return [r[0] for r in rows]


def overview(
    con: Any,
    tiers: Sequence[str] | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    lgd: float = 1.0,
    segment: Segment | None = None,
) -> Result:
    where, params = _scope(con, tiers, segment)
    sql = f"""
        SELECT score_date,
               count(*) AS accounts,
               sum(exposure) AS exposure,
               sum(pd * exposure * ?) AS expected_loss,
               avg(pd) AS predicted_default_rate,
               avg(label) AS observed_default_rate,
               count(label) AS labelled_accounts,
               count(*) FILTER (WHERE decision = 'decline') AS declines
        FROM scores
        WHERE {where} AND (? IS NULL OR score_date >= CAST(? AS DATE))
              AND (? IS NULL OR score_date <= CAST(? AS DATE))
        GROUP BY score_date ORDER BY score_date"""
    return _run(con, sql, [lgd, *params, date_from, date_from, date_to, date_to])


def distribution(
    con: Any,
    score_date: str,
    tiers: Sequence[str] | None = None,
    scale: ScoreScale = DEFAULT_SCALE,
    segment: Segment | None = None,
) -> Result:
    """Accounts per score band (``band_low`` to ``band_low + 25`` from the scale's minimum; the
    last band holds the maximum)."""
    where, params = _scope(con, tiers, segment)
    low = int(scale.min_score)
    last = low + SCORE_BAND * ((int(scale.max_score) - low - 1) // SCORE_BAND)
    sql = f"""
        SELECT least(greatest({low} + {SCORE_BAND} * floor((score - {low})
                 / {SCORE_BAND}), {low}), {last})::INTEGER AS band_low,
               risk_tier, count(*) AS accounts
        FROM scores WHERE score_date = CAST(? AS DATE) AND {where}
        GROUP BY ALL ORDER BY band_low, risk_tier"""
    return _run(con, sql, [score_date, *params])


def score_range(
    con: Any, score_date: str, tiers: Sequence[str] | None = None, segment: Segment | None = None
) -> Result:
    """The lowest, median and highest score of a date (what the scale's range really holds)."""
    where, params = _scope(con, tiers, segment)
    sql = f"""
        SELECT min(score) AS min_score, median(score) AS median_score, max(score) AS max_score,
               count(*) AS accounts
        FROM scores WHERE score_date = CAST(? AS DATE) AND {where}"""
    return _run(con, sql, [score_date, *params])


def replaced_runs(con: Any) -> list[tuple[str, str, str | None, int]]:
    """The kept runs that reruns of a score date replaced: (score date, ``replaced_at``, model
    version, accounts), oldest date first and, within a date, the latest replaced first."""
    if not columns_of(con, REPLACED_SCORES_TABLE):
        return []
    _, rows = _run(
        con,
        f"""SELECT score_date, {REPLACED_AT}, any_value(model_version), count(*)
            FROM {REPLACED_SCORES_TABLE} GROUP BY 1, 2 ORDER BY 1, 2 DESC""",
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def migration(
    con: Any,
    date_from: str,
    date_to: str,
    tiers: Sequence[str] | None = None,
    segment: Segment | None = None,
    from_run: str | None = None,
) -> Result:
    """Every (from tier, to tier) pair with its count, zeros included, in tier order (tiers and
    segment as at ``date_from``). With ``from_run`` (a ``replaced_at`` of
    :func:`replaced_runs`) the ``from`` side is that replaced run of ``date_from`` instead of
    its current one: the migration between two runs of one date."""
    source, params = "scores", []
    if from_run is not None:
        source = f"(SELECT * FROM {REPLACED_SCORES_TABLE} WHERE {REPLACED_AT} = ?)"
        params = [from_run]
    where, scope_params = _scope(con, tiers, segment, "a")
    order = ", ".join(f"'{t}'" for t in TIER_NAMES)
    sql = f"""
        WITH t(tier, i) AS (SELECT unnest([{order}]), unnest(range({len(TIER_NAMES)}))),
        pairs AS (
            SELECT a.risk_tier AS from_tier, b.risk_tier AS to_tier, count(*) AS n
            FROM {source} a JOIN scores b ON a.account_id = b.account_id
            WHERE a.score_date = CAST(? AS DATE) AND b.score_date = CAST(? AS DATE) AND {where}
            GROUP BY ALL)
        SELECT f.tier AS from_tier, g.tier AS to_tier, coalesce(p.n, 0) AS accounts
        FROM t f CROSS JOIN t g
        LEFT JOIN pairs p ON p.from_tier = f.tier AND p.to_tier = g.tier
        ORDER BY f.i, g.i"""
    return _run(con, sql, [*params, date_from, date_to, *scope_params])


def _feature_expr(feature_cols: Sequence[str], candidates: Sequence[str]) -> str:
    for name in candidates:
        if name in feature_cols:
            return f'f."{name}"'
    return "NULL"


def segments(
    con: Any, score_date: str, tiers: Sequence[str] | None = None, segment: Segment | None = None
) -> Result:
    """Tier x utilisation band x months-on-book band, from the scores joined to their features
    (``unknown`` where the features lack the input)."""
    where, params = _scope(con, tiers, segment, "s")
    feature_cols = columns_of(con, "features")
    util = _feature_expr(feature_cols, UTILISATION_COLUMNS)
    mob = _feature_expr(feature_cols, (MOB_COLUMN,))
    join = (
        "LEFT JOIN features f ON f.account_id = s.account_id AND f.obs_date = s.obs_date"
        if feature_cols
        else ""
    )
    sql = f"""
        SELECT s.risk_tier, {_band_case(util, UTILISATION_BANDS)} AS utilisation_band,
               {_band_case(mob, MOB_BANDS)} AS mob_band,
               count(*) AS accounts, avg(s.pd) AS mean_pd, sum(s.exposure) AS exposure
        FROM scores s {join}
        WHERE s.score_date = CAST(? AS DATE) AND {where}
        GROUP BY ALL ORDER BY accounts DESC, 1, 2, 3"""
    return _run(con, sql, [score_date, *params])


def delinquency(
    con: Any, tiers: Sequence[str] | None = None, segment: Segment | None = None
) -> Result:
    """Accounts per repayment-status bucket of the latest month, per score date."""
    feature_cols = columns_of(con, "features")
    if STATUS_COLUMN not in feature_cols:
        return ["score_date", "bucket", "accounts"], []
    where, params = _scope(con, tiers, segment, "s")
    bucket = _band_case(f'f."{STATUS_COLUMN}"', DELINQUENCY_BUCKETS)
    sql = f"""
        SELECT s.score_date, {bucket} AS bucket, count(*) AS accounts
        FROM scores s JOIN features f ON f.account_id = s.account_id AND f.obs_date = s.obs_date
        WHERE {where} GROUP BY ALL ORDER BY 1, 2"""
    return _run(con, sql, params)


def roll_rates(
    con: Any, score_date: str, tiers: Sequence[str] | None = None, segment: Segment | None = None
) -> Result:
    """Accounts per (delinquency bucket of the month before last, of the last month) on
    ``score_date``, every pair in bucket order, with ``rate`` = accounts / accounts in the
    earlier bucket (how many roll forward, stay or cure)."""
    columns = ["from_bucket", "to_bucket", "accounts", "rate"]
    feature_cols = columns_of(con, "features")
    if STATUS_COLUMN not in feature_cols or STATUS_PREVIOUS_COLUMN not in feature_cols:
        return columns, []
    where, params = _scope(con, tiers, segment, "s")
    before = _band_case(f'f."{STATUS_PREVIOUS_COLUMN}"', DELINQUENCY_BUCKETS)
    after = _band_case(f'f."{STATUS_COLUMN}"', DELINQUENCY_BUCKETS)
    order = ", ".join(f"'{b}'" for b, _ in DELINQUENCY_BUCKETS)
    sql = f"""
        WITH b(bucket, i) AS (SELECT unnest([{order}]),
                                     unnest(range({len(DELINQUENCY_BUCKETS)}))),
        pairs AS (
            SELECT {before} AS from_bucket, {after} AS to_bucket, count(*) AS n
            FROM scores s
            JOIN features f ON f.account_id = s.account_id AND f.obs_date = s.obs_date
            WHERE s.score_date = CAST(? AS DATE) AND {where} GROUP BY ALL)
        SELECT x.bucket AS from_bucket, y.bucket AS to_bucket, coalesce(p.n, 0) AS accounts,
               coalesce(p.n, 0) / nullif(sum(coalesce(p.n, 0)) OVER (PARTITION BY x.bucket), 0)
                 AS rate
        FROM b x CROSS JOIN b y
        LEFT JOIN pairs p ON p.from_bucket = x.bucket AND p.to_bucket = y.bucket
        ORDER BY x.i, y.i"""
    return _run(con, sql, [score_date, *params])


def vintage(con: Any, tiers: Sequence[str] | None = None, segment: Segment | None = None) -> Result:
    """Per origination quarter and months on book: accounts, observed default rate (mean label
    where known) and mean PD, over every scoring date."""
    columns = ["cohort", "months_on_book", "accounts", "observed_default_rate", "mean_pd"]
    if MOB_COLUMN not in columns_of(con, "features"):
        return columns, []
    where, params = _scope(con, tiers, segment, "s")
    sql = f"""
        WITH rows AS (
            SELECT s.pd, s.label, f."{MOB_COLUMN}" AS mob,
                   s.obs_date - to_months(CAST(f."{MOB_COLUMN}" AS INTEGER)) AS opened
            FROM scores s
            JOIN features f ON f.account_id = s.account_id AND f.obs_date = s.obs_date
            WHERE f."{MOB_COLUMN}" IS NOT NULL AND {where})
        SELECT year(opened) || 'Q' || quarter(opened) AS cohort, mob AS months_on_book,
               count(*) AS accounts, avg(label) AS observed_default_rate, avg(pd) AS mean_pd
        FROM rows GROUP BY ALL ORDER BY cohort, months_on_book"""
    return _run(con, sql, params)


def accounts(
    con: Any,
    score_date: str,
    tiers: Sequence[str] | None = None,
    limit: int = HIGH_RISK_ROWS,
    segment: Segment | None = None,
) -> Result:
    """The ``limit`` riskiest accounts of ``score_date`` (highest PD first)."""
    where, params = _scope(con, tiers, segment)
    sql = f"""
        SELECT account_id, score, pd, risk_tier, decision, exposure, reason_1, reason_2, reason_3
        FROM scores WHERE score_date = CAST(? AS DATE) AND {where}
        ORDER BY pd DESC, account_id LIMIT ?"""
    return _run(con, sql, [score_date, *params, int(limit)])


def account(con: Any, account_id: str) -> Result:
    """One account's scores over time, oldest first."""
    sql = """
        SELECT score_date, obs_date, score, pd, risk_tier, decision, exposure, label,
               reason_1, reason_2, reason_3, model_name, model_version
        FROM scores WHERE account_id = ? ORDER BY score_date"""
    return _run(con, sql, [account_id])


def account_model(con: Any, score_date: str) -> Result:
    """The model that scored ``score_date`` (name and version; the newest if several)."""
    sql = """
        SELECT model_name AS name, model_version AS version, count(*) AS accounts
        FROM scores WHERE score_date = CAST(? AS DATE)
        GROUP BY ALL ORDER BY accounts DESC, version DESC LIMIT 1"""
    return _run(con, sql, [score_date])


def account_events(
    con: Any, account_id: str, tables: Sequence[str], portfolio: str | None = None, limit: int = 500
) -> Result:
    """One account's curated events over time (every ``curated_*`` table among ``tables`` that
    has ``account_id`` and ``event_time``; rows of ``portfolio`` only when the table carries a
    ``source``): time, type and the row as JSON, oldest first, at most ``limit``."""
    columns = ["event_time", "event_type", "detail"]
    parts, params = [], []
    for table in tables:
        if not table.startswith(CURATED_TABLE_PREFIX):
            continue
        have = columns_of(con, table)
        if "account_id" not in have or "event_time" not in have:
            continue
        kind = table.removeprefix(CURATED_TABLE_PREFIX)
        where = "account_id = ?"
        params.append(account_id)
        if portfolio is not None and "source" in have:
            where += " AND source = ?"
            params.append(portfolio)
        parts.append(
            f"SELECT CAST(event_time AS VARCHAR) AS event_time, '{kind}' AS event_type, "
            f'CAST(to_json(c) AS VARCHAR) AS detail FROM "{table}" c WHERE {where}'
        )
    if not parts:
        return columns, []
    sql = " UNION ALL ".join(parts) + " ORDER BY event_time, event_type LIMIT ?"
    return _run(con, sql, [*params, int(limit)])


def _monthly_spend(
    tables: Sequence[str], portfolio: str | None, tiers: Sequence[str] | None
) -> tuple[str, list[Any]] | None:
    """SQL (a CTE body) for every account's spend in every month from its first purchase to the
    portfolio's last month (0 where it bought nothing), with the average of the months before
    and how many there were; ``None`` when there is no purchase table."""
    if PURCHASES not in tables:
        return None
    where, params = "TRUE", []
    if portfolio is not None:
        where, params = "source = ?", [portfolio]
    if tiers:  # the accounts whose latest tier is among ``tiers``
        tier_sql, tier_params = _tier_clause(tiers)
        where += (
            " AND account_id IN (SELECT account_id FROM scores WHERE score_date = "
            f"(SELECT max(score_date) FROM scores) AND {tier_sql})"
        )
        params += tier_params
    sql = f"""
        bought AS (
            SELECT account_id, CAST(date_trunc('month', event_time) AS DATE) AS month,
                   sum(amount) AS spend
            FROM "{PURCHASES}" WHERE {where} GROUP BY ALL),
        span AS (SELECT account_id, min(month) AS first_month FROM bought GROUP BY ALL),
        months AS (
            SELECT s.account_id, CAST(m.month AS DATE) AS month
            FROM span s, LATERAL (SELECT unnest(generate_series(
                CAST(s.first_month AS TIMESTAMP),
                CAST((SELECT max(month) FROM bought) AS TIMESTAMP), INTERVAL 1 MONTH)) AS month) m),
        monthly AS (
            SELECT m.account_id, m.month, coalesce(b.spend, 0) AS spend,
                   avg(coalesce(b.spend, 0)) OVER w AS before_avg, count(*) OVER w AS before_n
            FROM months m LEFT JOIN bought b USING (account_id, month)
            WINDOW w AS (PARTITION BY m.account_id ORDER BY m.month
                         ROWS BETWEEN {SPEND_JUMP_MONTHS} PRECEDING AND 1 PRECEDING)),
        flagged AS (
            SELECT *, (before_n >= {SPEND_JUMP_HISTORY}
                       AND spend >= {SPEND_JUMP_RATIO!r} * before_avg
                       AND spend - before_avg >= {SPEND_JUMP_FLOOR!r}) AS jump
            FROM monthly)"""
    return sql, params


def spend(
    con: Any,
    tables: Sequence[str],
    portfolio: str | None = None,
    tiers: Sequence[str] | None = None,
) -> Result:
    """Per month: the portfolio's spend, accounts spending, spend per spending account, the 3-
    and 6-month rolling averages of the spend (the months up to and including this one) and
    how many accounts' spend jumped."""
    columns = [
        "month", "spend", "accounts", "spend_per_account", "avg_3m", "avg_6m", "jumps"
    ]  # fmt: skip
    body = _monthly_spend(tables, portfolio, tiers)
    if body is None:
        return columns, []
    cte, params = body
    sql = f"""
        WITH {cte},
        per_month AS (
            SELECT month, sum(spend) AS spend, count(*) FILTER (WHERE spend > 0) AS accounts,
                   count(*) FILTER (WHERE jump) AS jumps
            FROM flagged GROUP BY ALL)
        SELECT month, spend, accounts, spend / nullif(accounts, 0) AS spend_per_account,
               avg(spend) OVER (ORDER BY month ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS avg_3m,
               avg(spend) OVER (ORDER BY month ROWS BETWEEN 5 PRECEDING AND CURRENT ROW) AS avg_6m,
               jumps
        FROM per_month ORDER BY month"""
    return _run(con, sql, params)


def spend_jumps(
    con: Any,
    tables: Sequence[str],
    portfolio: str | None = None,
    month: str | None = None,
    tiers: Sequence[str] | None = None,
    limit: int = HIGH_RISK_ROWS * 4,
) -> Result:
    """The accounts whose spend jumped in ``month`` (default: every month), biggest jump first.

    The rule: the month's spend is at least ``SPEND_JUMP_RATIO`` (3) times the account's average
    over the ``SPEND_JUMP_MONTHS`` (6) months before it, months without a purchase counting as
    0, and at least ``SPEND_JUMP_FLOOR`` (100) above that average; an account needs
    ``SPEND_JUMP_HISTORY`` (3) months since its first purchase before it can jump."""
    columns = ["month", "account_id", "spend", "before_avg", "ratio"]
    body = _monthly_spend(tables, portfolio, tiers)
    if body is None:
        return columns, []
    cte, params = body
    month_sql = "TRUE"
    if month:
        month_sql = "month = CAST(date_trunc('month', CAST(? AS DATE)) AS DATE)"
        params = [*params, month]
    sql = f"""
        WITH {cte}
        SELECT month, account_id, spend, before_avg, spend / nullif(before_avg, 0) AS ratio
        FROM flagged WHERE jump AND {month_sql}
        ORDER BY month DESC, spend - before_avg DESC, account_id LIMIT ?"""
    return _run(con, sql, [*params, int(limit)])


def drift(reports: Sequence[dict[str, Any]], score_date: str | None = None) -> Result:
    """PSI per input (and of the score, input ``(score)``) per score date, with each one's bins
    (``edges`` of a numeric input, ``categories`` of a categorical one; shares expected from the
    champion's baseline and seen on the date) and flag."""
    rows = []
    for rep in sorted(reports, key=lambda r: str(r.get("score_date"))):
        day = rep.get("score_date")
        if score_date and day != score_date:
            continue
        entries = [("(score)", rep.get("score"))]
        entries += sorted((rep.get("features") or {}).items())
        for name, entry in entries:
            if not entry:
                continue
            value = entry.get("psi")
            rows.append(
                (
                    day,
                    name,
                    value,
                    bool(entry.get("flag", value is not None and value > PSI_ALERT)),
                    entry.get("edges"),
                    entry.get("categories"),
                    entry.get("expected"),
                    entry.get("actual"),
                )
            )
    columns = ["score_date", "input", "psi", "flag", "edges", "categories", "expected", "actual"]
    return columns, rows
