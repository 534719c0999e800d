"""Data and models for the benchmarks, built without running the pipeline; the tests use them too.

- A Taiwan feature table straight from the UCI CSV (:func:`taiwan_features`,
  :func:`read_taiwan_features`): the ETL's columns and rules (profile as strings, six monthly lags
  of bills, payments and repayment status, utilisation, payment-to-bill ratios, missed minimums,
  the statement-history evidence), one row per client at one observation date, for where the
  streaming pipeline has not run. tests/training/test_taiwan_fixture_parity.py holds it to the ETL.
- Small synthetic Taiwan-shaped feature tables (:func:`features_frame`; the label comes from a
  known logistic function of a few features, so fitted models have signal) and champion
  pipelines fitted on them (:func:`make_pipeline`, :func:`fit_pipeline`).
- A champion registered as training registers one (:func:`register_champion`) and a feature
  partition as the ETL writes one (:func:`write_features`).

The benchmark scripts import it as ``fixtures`` after ``common`` (which puts the repository on
``sys.path``); the tests as ``benchmarks.fixtures``. Nothing here imports ``tests``.
"""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from riskstream import names
from riskstream.events import MERCHANT_CATEGORIES
from riskstream.settings import Settings
from serving.storage import s3_filesystem

# ---- a Taiwan feature table without Spark -------------------------------------------------------
TAIWAN_OBS_DATE = dt.date(2005, 10, 1)  # the ETL derives it: the month after the last statement
TAIWAN_OPENED = dt.date(2005, 4, 1)  # ingestion.taiwan's account_opened time
TAIWAN_MINIMUM_DUE_RATE = 0.10  # ingestion.taiwan's documented rule

_SEX = {1: "male", 2: "female"}
_EDUCATION = {1: "graduate_school", 2: "university", 3: "high_school", 4: "other"}
_MARITAL = {1: "married", 2: "single", 3: "other"}


def taiwan_features(raw: pd.DataFrame, obs_date: dt.date = TAIWAN_OBS_DATE) -> pd.DataFrame:
    """Turn the UCI table (``ID, LIMIT_BAL, ..., default payment next month``) into the columns
    the ETL builds from the Taiwan replay (``ingestion.taiwan`` events through
    ``etl.features.build_features`` with its 6-month lookback), by the same rules: month 1 is
    September 2005; the payment of month k settles the statement of month k + 1; the replay's
    minimum due is 10% of a positive balance; there are no purchases (spend sums are zero, the
    spend mix is empty) and no income."""
    pay_cols = ["PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6"]
    limit_raw = raw["LIMIT_BAL"].to_numpy(float)
    out = pd.DataFrame(
        {
            "account_id": [f"TW{int(i):05d}" for i in raw["ID"]],  # the replay's ids
            "obs_date": obs_date,
            "label": raw["default payment next month"].astype("int64"),
            "source": names.SOURCE_TAIWAN,
            "months_on_book": _months_between(obs_date, TAIWAN_OPENED),
            "credit_limit_at_open": limit_raw,
            "income": np.nan,
            "age": raw["AGE"].astype("float64"),
            "sex": raw["SEX"].map(_SEX).fillna("unknown"),
            "education": raw["EDUCATION"].map(_EDUCATION).fillna("unknown"),
            "marital_status": raw["MARRIAGE"].map(_MARITAL).fillna("unknown"),
        }
    )
    bills = np.column_stack([raw[f"BILL_AMT{m}"].to_numpy(float) for m in range(1, 7)])
    pays = np.column_stack([raw[f"PAY_AMT{m}"].to_numpy(float) for m in range(1, 7)])
    status = np.column_stack([raw[c].to_numpy(float) for c in pay_cols])
    min_due = np.round(np.maximum(bills, 0.0) * TAIWAN_MINIMUM_DUE_RATE, 2)
    for m in range(6):
        out[f"bill_amt_m{m + 1}"] = bills[:, m]
        out[f"repayment_status_m{m + 1}"] = status[:, m]
        out[f"pay_amt_m{m + 1}"] = pays[:, m]
    out["statement_count"] = 6
    out["delinquent_months"] = (status >= 1).sum(axis=1).astype("int64")
    out["worst_delinquency"] = status.max(axis=1)
    out["statement_credit_limit"] = limit_raw  # every replayed statement states the limit
    out["credit_limit"] = limit_raw
    # no purchase events in the replay: the rolling sums are zero, ratios over them are empty
    out["spend_3m"] = 0.0
    out["spend_6m"] = 0.0
    out["spend_prev_3m"] = 0.0
    out["purchase_count_6m"] = 0
    out["avg_ticket_6m"] = np.nan
    for category in MERCHANT_CATEGORIES:
        out[f"spend_share_{category}"] = np.nan
    util = _ratio(bills, limit_raw[:, None])
    out["utilisation_m1"] = util[:, 0]
    out["utilisation_avg_3m"] = _ratio(bills[:, :3].mean(axis=1), limit_raw)
    out["utilisation_avg_6m"] = _ratio(bills.mean(axis=1), limit_raw)
    out["utilisation_trend_3m"] = util[:, 0] - util[:, 2]
    out["utilisation_trend_6m"] = util[:, 0] - util[:, 5]
    for k in range(1, 6):
        out[f"pay_to_bill_m{k}"] = _ratio(pays[:, k - 1], bills[:, k])
    out["pay_to_bill_avg"] = _ratio(
        pays[:, :5].sum(axis=1), np.maximum(bills[:, 1:], 0).sum(axis=1)
    )
    missed = (min_due[:, 1:] > 0) & (pays[:, :5] < min_due[:, 1:])
    out["missed_minimum_count"] = missed.sum(axis=1).astype("int64")
    _history(out, bills, pays, status, limit_raw)
    return out


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is not positive (as the ETL's)."""
    num, den = np.broadcast_arrays(np.asarray(numerator, float), np.asarray(denominator, float))
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _months_between(later: dt.date, earlier: dt.date) -> int:
    """Whole months from ``earlier`` to ``later`` (Spark's floor(months_between))."""
    months = (later.year - earlier.year) * 12 + later.month - earlier.month
    return months - (1 if later.day < earlier.day else 0)


def _history(
    out: pd.DataFrame, bills: np.ndarray, pays: np.ndarray, status: np.ndarray, limit: np.ndarray
) -> None:
    """The statement-history evidence of ``etl.features._history``, same names and rules."""
    late = status >= 1
    first = np.argmax(late, axis=1) + 1.0
    out["months_since_delinquency"] = np.where(late.any(axis=1), first, np.nan)
    run = np.zeros(len(out))
    longest = np.zeros(len(out))
    for k in range(status.shape[1]):
        run = np.where(late[:, k], run + 1, 0)
        longest = np.maximum(longest, run)
    out["longest_delinquent_run"] = longest
    full = (bills[:, 1:] > 0) & (pays[:, :-1] >= bills[:, 1:] - 0.005)
    out["paid_in_full_m1"] = full[:, 0].astype("float64")
    out["paid_in_full_count"] = full.sum(axis=1).astype("float64")
    unpaid = _ratio(bills - pays, limit[:, None])
    out["unpaid_to_limit_m1"] = unpaid[:, 0]
    out["unpaid_to_limit_avg"] = unpaid.mean(axis=1)
    out["bill_growth_1m"] = _ratio(bills[:, 0] - bills[:, 1], limit)
    out["bill_volatility"] = _ratio(bills, limit[:, None]).std(axis=1)
    out["status_delta_1m"] = status[:, 0] - status[:, 1]
    out["status_delta_3m"] = status[:, 0] - status[:, 2]


def read_taiwan_features(csv_path: str, n_rows: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Read the CSV (optionally a stratified sample of ``n_rows``) and build the features."""
    raw = pd.read_csv(csv_path)
    if n_rows is not None and n_rows < len(raw):
        frac = n_rows / len(raw)
        raw = raw.groupby("default payment next month", group_keys=False).sample(
            frac=frac, random_state=seed
        )
    return taiwan_features(raw.reset_index(drop=True))


# ---- synthetic feature tables and champion pipelines --------------------------------------------
NUMERIC = [
    "credit_limit",
    "age",
    *[f"bill_amt_m{i}" for i in range(1, 4)],
    *[f"pay_amt_m{i}" for i in range(1, 4)],
    *[f"repayment_status_m{i}" for i in range(1, 4)],
    "utilisation_avg_3m",
]
CATEGORICAL = ["education", "marital_status"]
EDUCATION = ["graduate_school", "university", "high_school", "other"]
MARITAL = ["married", "single", "other"]


def features_frame(n: int, obs_date: dt.date, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    """``n`` accounts on ``obs_date``; ``shift`` moves the risk drivers (for drift tests)."""
    rng = np.random.default_rng(seed)
    limit = rng.choice([20_000, 50_000, 100_000, 200_000, 500_000], size=n).astype(np.float64)
    status = np.clip(rng.poisson(0.4 + shift, size=(n, 3)) - 1, -2, 8).astype(np.int64)
    bills = np.abs(rng.normal(0.4 + 0.2 * shift, 0.3, size=(n, 3))) * limit[:, None]
    pays = np.abs(rng.normal(0.05, 0.05, size=(n, 3))) * limit[:, None]
    edu = rng.choice(EDUCATION, size=n, p=[0.35, 0.45, 0.15, 0.05])
    logit = -1.6 + 0.9 * status[:, 0] + 0.4 * status[:, 1] - 0.000004 * limit
    logit += 1.2 * (bills[:, 0] / limit - 0.4) + 0.3 * (edu == "high_school")
    label = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    frame = pd.DataFrame(
        {
            "account_id": [f"acct-{seed}-{i:07d}" for i in range(n)],
            "obs_date": pd.Series([obs_date] * n, dtype="object"),
            "label": label,
            "source": "synthetic",
            "credit_limit": limit,
            "age": rng.integers(21, 75, size=n).astype(np.int64),
        }
    )
    for i in range(3):
        frame[f"bill_amt_m{i + 1}"] = bills[:, i]
        frame[f"pay_amt_m{i + 1}"] = pays[:, i]
        frame[f"repayment_status_m{i + 1}"] = status[:, i]
    frame["utilisation_avg_3m"] = bills.mean(axis=1) / limit
    frame["education"] = edu
    frame["marital_status"] = rng.choice(MARITAL, size=n, p=[0.45, 0.5, 0.05])
    return frame


def make_pipeline(kind: str, seed: int = 0) -> Pipeline:
    preprocess = ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
        ]
    )
    model: Any
    if kind == "lr":
        model = LogisticRegression(max_iter=500)
    elif kind == "rf":
        model = RandomForestClassifier(n_estimators=30, max_depth=6, random_state=seed, n_jobs=1)
    elif kind == "xgb":
        from xgboost import XGBClassifier

        model = XGBClassifier(
            n_estimators=60, max_depth=4, learning_rate=0.2, n_jobs=1, random_state=seed
        )
    else:
        raise ValueError(kind)
    return Pipeline([("preprocess", preprocess), ("model", model)])


def small_xgb_pipeline(features: list[str], n_estimators: int) -> Pipeline:
    """A small XGBoost pipeline over ``features``: every numeric input passed through as is
    (the raw and live forms compute them exactly), ``education`` one-hot encoded."""
    from xgboost import XGBClassifier

    pipeline = make_pipeline("xgb")
    encoder = pipeline.steps[0][1]
    numeric = [c for c in features if c != "education"]
    encoder.set_params(
        transformers=[
            ("num", "passthrough", numeric),
            ("cat", encoder.transformers[1][1], ["education"]),
        ]
    )
    pipeline.steps[1] = ("model", XGBClassifier(n_estimators=n_estimators, max_depth=3, n_jobs=1))
    return pipeline


def fit_pipeline(
    kind: str, frame: pd.DataFrame, seed: int = 0, calibrated: bool = False
) -> Pipeline:
    """Fit on ``frame``; ``calibrated`` wraps the estimator as training does, with a sigmoid
    calibration on the last third of the rows."""
    pipeline = make_pipeline(kind, seed)
    x, y = frame[NUMERIC + CATEGORICAL], frame["label"]
    if not calibrated:
        pipeline.fit(x, y)
        return pipeline
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    cut = 2 * len(frame) // 3
    pre, model = pipeline.named_steps["preprocess"], pipeline.named_steps["model"]
    model.fit(pre.fit_transform(x.iloc[:cut]), y.iloc[:cut])
    calibrated_model = CalibratedClassifierCV(FrozenEstimator(model), method="sigmoid")
    calibrated_model.fit(pre.transform(x.iloc[cut:]), y.iloc[cut:])
    return Pipeline([("preprocess", pre), ("model", calibrated_model)])


def baseline_for(pipeline: Pipeline, frame: pd.DataFrame) -> dict[str, Any]:
    """The baseline.json training writes: bins of the PD and of every input."""
    from training.baseline import build_baseline

    pd_values = pipeline.predict_proba(frame[NUMERIC + CATEGORICAL])[:, 1]
    return build_baseline(pd_values, frame, NUMERIC, CATEGORICAL)


# ---- a champion in MLflow, a feature partition in S3 --------------------------------------------
def register_champion(
    settings: Settings,
    pipeline: Any,
    train: pd.DataFrame,
    kind: str,
    threshold: float = 0.3,
    alias: str = "champion",
) -> str:
    """Log ``pipeline`` the way training does and point ``alias`` at the new version."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    from training.tracking import model_requirements

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    mlflow.set_experiment(f"{settings.prefix}-serving-tests")
    x = train[NUMERIC + CATEGORICAL]
    with mlflow.start_run() as run, warnings.catch_warnings():
        # integer features are never missing here; MLflow's hint about that is noise
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=infer_signature(x, pipeline.predict_proba(x)[:, 1]),
            input_example=x.head(2),
            registered_model_name=settings.registered_model_name,
            serialization_format="cloudpickle",
            pip_requirements=model_requirements(),  # as training: no inference in a subprocess
        )
        mlflow.log_dict(baseline_for(pipeline, train), names.BASELINE_ARTIFACT)
    client = MlflowClient(settings.mlflow_tracking_uri)
    version = str(info.registered_model_version)
    tags = {"model_type": kind, "threshold": str(threshold), "roc_auc": "0.81", "ks": "0.45"}
    for key, value in tags.items():
        client.set_model_version_tag(settings.registered_model_name, version, key, value)
    client.set_registered_model_alias(settings.registered_model_name, alias, version)
    assert run.info.run_id
    return version


def write_features(settings: Settings, frame: pd.DataFrame, obs_date: dt.date) -> None:
    """One feature partition as ETL writes it (obs_date as a column and in the path)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.set_column(
        table.schema.get_field_index("obs_date"),
        "obs_date",
        pa.array(list(frame["obs_date"]), pa.date32()),
    )
    path = names.features_location(settings, obs_date).removeprefix("s3://") + "/part-0.parquet"
    pq.write_table(table, path, filesystem=s3_filesystem(settings))


def write_purchases(settings: Settings, frame: pd.DataFrame) -> None:
    """Curated purchase events as the ETL leaves them: Parquet per ``event_month`` under the
    curated table's location, registered in the catalog. ``frame``: account_id, event_time
    (timestamps), amount; every row is of the settings' portfolio."""
    from riskstream.clients import make_client
    from riskstream.storage import CatalogTable, register_partitions, register_table

    name = names.curated_table("purchase")
    rows = frame.assign(
        event_id=[f"p-{i}" for i in range(len(frame))],
        source=settings.portfolio,
        merchant_category=MERCHANT_CATEGORIES[0],
    )
    months = rows["event_time"].dt.strftime("%Y-%m")
    location = names.curated_location(settings, name)
    schema = None
    for month in sorted(set(months)):
        part = rows[months == month].reset_index(drop=True)
        table = pa.Table.from_pandas(part, preserve_index=False)
        schema = table.schema
        path = f"{location.removeprefix('s3://')}/event_month={month}/part-0.parquet"
        pq.write_table(table, path, filesystem=s3_filesystem(settings))
    catalog = CatalogTable(settings.glue_database, name, location, schema, "event_month")
    glue = make_client(settings, "glue")
    register_table(glue, catalog)
    register_partitions(glue, catalog, sorted(set(months)))


# ---- contract events for the live scorer ---------------------------------------------------------
def account_events(
    account_id: str,
    opened: dt.date,
    months: int,
    rng: np.random.Generator,
    source: str = "synthetic",
    limit: float = 50_000.0,
) -> list[dict[str, Any]]:
    """One account's events in the contract's shape, in event-time order: ``account_opened``
    (limit, age, education, marital status), then per month a few purchases, a statement at
    month end and a payment a few days later. The features of :data:`NUMERIC` and
    :data:`CATEGORICAL` come out of them (the live scorer's tests and benchmarks)."""
    from riskstream.events import new_event

    def at(day: dt.date, hour: int = 12) -> dt.datetime:
        return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)

    facts = {
        "credit_limit": limit,
        "age": int(rng.integers(21, 75)),
        "education": str(rng.choice(EDUCATION)),
        "marital_status": str(rng.choice(MARITAL)),
    }
    events = [new_event("account_opened", account_id, at(opened, 9), facts, source)]
    year, month = opened.year, opened.month
    for _ in range(months):
        first = dt.date(year, month, 1)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        end = dt.date(year, month, 1) - dt.timedelta(days=1)
        for day in sorted(rng.integers(1, 28, size=2)):
            payload = {
                "amount": round(float(rng.uniform(5, 300)), 2),
                "merchant_category": "grocery",
            }
            events.append(
                new_event("purchase", account_id, at(first.replace(day=int(day))), payload, source)
            )
        balance = round(float(abs(rng.normal(0.4, 0.25)) * limit), 2)
        statement = {
            "statement_date": end.isoformat(),
            "balance": balance,
            "minimum_due": round(balance * 0.05, 2),
            "due_date": (end + dt.timedelta(days=20)).isoformat(),
            "credit_limit": limit,
            "repayment_status": int(np.clip(rng.poisson(0.4) - 1, -2, 8)),
        }
        events.append(new_event("statement", account_id, at(end, 23), statement, source))
        paid = round(float(abs(rng.normal(0.05, 0.05)) * limit), 2)
        events.append(
            new_event(
                "payment", account_id, at(end + dt.timedelta(days=10)), {"amount": paid}, source
            )
        )
    return events


# ---- batch and live parity -----------------------------------------------------------------------
PARITY_FEATURES = [
    "credit_limit",
    "months_on_book",
    *[f"bill_amt_m{k}" for k in range(1, 7)],
    *[f"pay_amt_m{k}" for k in range(1, 7)],
    *[f"repayment_status_m{k}" for k in range(1, 7)],
    "utilisation_avg_3m",
    "pay_to_bill_avg",
    "missed_minimum_count",
    "unpaid_to_limit_avg",
    "bill_volatility",
    "spend_3m",
    "spend_6m",
    "purchase_count_6m",
    "avg_ticket_6m",
    "education",
]


def parity_stream(accounts: int, months: int, seed: int = 0) -> list[tuple[dict[str, Any], str]]:
    """(event, arrival day) in stream order: a synthetic portfolio, 5% of it sent twice (the
    copy arrives later), and 3% held back and sent at the end (late, out of order)."""
    from ingestion.synthetic import SyntheticConfig, simulate

    config = SyntheticConfig(accounts=accounts, months=months, seed=11, start=dt.date(2024, 1, 1))
    events = list(simulate(config).events())
    rng = np.random.default_rng(seed)
    late = set(rng.choice(len(events), size=len(events) * 3 // 100, replace=False).tolist())
    out = [(e, str(e["event_time"])[:10]) for i, e in enumerate(events) if i not in late]
    out += [(events[i], "2030-01-01") for i in sorted(late)]
    for i in rng.choice(len(events), size=len(events) // 20, replace=False).tolist():
        out.append((events[i], "2030-01-02"))
    return out


def batch_and_live(spark: Any, sent: list[tuple[dict[str, Any], str]]) -> dict[str, Any]:
    """The stream through the ETL transforms and the Spark features job (the batch side) and,
    in stream order, through the live scorer's per-account state (the live side)."""
    from etl import chain
    from riskstream.events import serialize
    from serving.livestate import AccountState

    rows = [(serialize(e).decode(), day, f"f{i // 500}") for i, (e, day) in enumerate(sent)]
    lines = spark.createDataFrame(rows, "value string, dt string, source_file string")
    tables = chain.curate(lines, dt.datetime(2030, 1, 3, tzinfo=dt.UTC))
    (obs,) = chain.observation_dates(tables)
    frame = chain.features_of(tables, [obs], labels_known_on=dt.date(2030, 1, 1))
    batch = {r["account_id"]: r.asDict() for r in frame.collect()}
    states: dict[str, AccountState] = {}
    for i, (event, _) in enumerate(sent):
        state = states.setdefault(event["account_id"], AccountState(event["account_id"]))
        if not state.seen("shardId-0", str(i)):
            state.apply(event)
            state.mark("shardId-0", str(i))
    columns = [c for c in frame.schema.fieldNames() if c not in ("label", "source")]
    return {"obs": obs, "batch": batch, "states": states, "columns": columns}


def parity_pds(world: dict[str, Any]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """An XGBoost pipeline fitted on the batch features; each account's PD by the batch job's
    path (``serving.scoring.explain``) and by the live scorer's (the compiled scorer over the
    live features)."""
    from serving.compiled import compile_pipeline
    from serving.livestate import feature_rows
    from serving.scoring import ScoringConfig, explain

    batch, states, obs = world["batch"], world["states"], world["obs"]
    accounts = sorted(batch)
    table = pd.DataFrame([batch[a] for a in accounts])
    pipeline = small_xgb_pipeline(PARITY_FEATURES, n_estimators=20)
    rng = np.random.default_rng(0)  # the labels only need both classes: parity is the point
    pipeline.fit(table[PARITY_FEATURES], rng.integers(0, 2, size=len(table)))
    batch_pd = explain(pipeline, table[PARITY_FEATURES], ScoringConfig()).pd
    rows = feature_rows([states[a] for a in accounts], 6, obs)
    scorer = compile_pipeline(pipeline)
    live_pd = scorer.pd(scorer.transform([{n: r.get(n) for n in PARITY_FEATURES} for r in rows]))
    return accounts, np.asarray(batch_pd, dtype=np.float64), np.asarray(live_pd, dtype=np.float64)


def same_value(a: Any, b: Any, tolerance: float = 1e-9) -> bool:
    """Equal features: both null (None or NaN), equal strings and dates, numbers to 1e-9."""

    def null(v: Any) -> bool:
        return v is None or (isinstance(v, float) and np.isnan(v))

    if null(a) or null(b):
        return null(a) and null(b)
    if isinstance(a, str | dt.date) or isinstance(b, str | dt.date):
        return bool(a == b)
    return bool(np.isclose(float(a), float(b), rtol=tolerance, atol=tolerance))
