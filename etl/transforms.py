"""raw -> curated: parse, type, validate, de-duplicate and split raw event lines.

Pure module: DataFrame -> DataFrame functions only. Nothing here reads or writes storage, reads
the environment or the clock (``now`` is an argument). The rules come from the event contract in
:mod:`riskstream.events`, so the ETL and the stream consumer quarantine the same things.

Every input line ends in exactly one of three states (column ``status``):

- ``ok``: typed and valid, goes to the curated table of its event type;
- ``duplicate``: a later copy of an ``event_id`` already kept (counted, not written);
- ``quarantined``: broke a rule; ``reason`` (a short code) and ``detail`` (with the value)
  say which.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from riskstream.events import (
    ENVELOPE_FIELDS,
    EVENT_TYPES,
    MAX_CLOCK_SKEW,
    PAYLOAD_SCHEMAS,
    SCHEMA_VERSION,
    FieldSpec,
)

CORRUPT = "_corrupt_record"
STATUS_OK = "ok"
STATUS_DUPLICATE = "duplicate"
STATUS_QUARANTINED = "quarantined"

# the event contract's envelope, the payload aside (it is parsed into the per-type columns)
ENVELOPE_COLUMNS: tuple[str, ...] = tuple(f for f in ENVELOPE_FIELDS if f != "payload")

# Every payload field of every event type, in a stable order (first type that declares it wins).
PAYLOAD_FIELDS: dict[str, FieldSpec] = {}
for _fields in PAYLOAD_SCHEMAS.values():
    for _name, _spec in _fields.items():
        PAYLOAD_FIELDS.setdefault(_name, _spec)

_UUID_RE = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
_TIME_RE = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$"
_DATE_RE = r"^\d{4}-\d{2}-\d{2}$"
EARLIEST = "1970-01-01 00:00:00"


def raw_schema() -> T.StructType:
    """How a raw line is read: envelope plus payload, every leaf a string (typed later).

    Strings first, so a wrong type becomes a row with a ``bad_type`` reason naming the field
    and its value, instead of a silently nulled field.
    """
    payload = T.StructType(
        [
            T.StructField(
                name,
                T.MapType(T.StringType(), T.StringType())
                if spec.kind == "object"
                else T.StringType(),
            )
            for name, spec in PAYLOAD_FIELDS.items()
        ]
    )
    fields = [T.StructField(name, T.StringType()) for name in ENVELOPE_COLUMNS]
    fields.append(T.StructField("payload", payload))
    fields.append(T.StructField(CORRUPT, T.StringType()))
    return T.StructType(fields)


def _spark_type(spec: FieldSpec) -> T.DataType:
    return {
        "number": T.DoubleType(),
        "integer": T.IntegerType(),
        "flag": T.IntegerType(),
        "date": T.DateType(),
        "string": T.StringType(),
        "object": T.MapType(T.StringType(), T.StringType()),
    }[spec.kind]


def curated_schema(event_type: str) -> T.StructType:
    """The schema of one curated table (without the ``dt`` partition column)."""
    fields = [
        T.StructField("event_id", T.StringType(), True),
        T.StructField("account_id", T.StringType(), True),
        T.StructField("event_time", T.TimestampType(), True),
        T.StructField("source", T.StringType(), True),
    ]
    for name, spec in PAYLOAD_SCHEMAS[event_type].items():
        fields.append(T.StructField(name, _spark_type(spec), True))
    return T.StructType(fields)


def parse_lines(lines: DataFrame) -> DataFrame:
    """Lines (``value``, ``dt``, ``source_file``) -> one row per line with the JSON parsed.

    Output keeps the raw ``value`` (for quarantine) and adds ``j``: the parsed struct.
    """
    parsed = F.from_json(
        F.col("value"),
        raw_schema(),
        {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT},
    )
    return lines.select("value", "dt", "source_file", parsed.alias("j"))


def _typed(raw: Column, spec: FieldSpec) -> Column:
    """A raw string -> its typed value, null when it does not parse as ``spec.kind``."""
    if spec.kind == "number":
        value = raw.cast("double")  # non-ANSI cast: null when it does not parse
        return F.when(~F.isnan(value) & (F.abs(value) != float("inf")), value)
    if spec.kind == "integer":
        value = raw.cast("double")
        return F.when(
            ~F.isnan(value) & (value == F.floor(value)) & (F.abs(value) < 2**31), value
        ).cast("int")
    if spec.kind == "flag":
        return F.when(raw.isin("0", "1"), raw.cast("int"))
    if spec.kind == "date":
        return F.when(raw.rlike(_DATE_RE), F.to_date(raw, "yyyy-MM-dd"))
    return raw  # string, object


def validate_events(parsed: DataFrame, now: datetime) -> DataFrame:
    """Type every field and give each row its first broken rule, or none.

    Output: ``dt, source_file, value`` and the typed envelope and payload columns, plus ``reason``
    and ``detail`` (null for valid rows). ``now`` bounds event times: nothing after the end of
    the day of ``now + 1 day``.
    Built in steps (raw strings, then typed values, then rules on plain columns) so the generated
    code stays small enough for Spark's whole-stage code generation.
    """
    j = F.col("j")
    raw = parsed.select(
        "dt",
        "source_file",
        "value",
        (j.isNull() | j[CORRUPT].isNotNull()).alias("_corrupt"),
        *[j[name].alias(name) for name in ENVELOPE_COLUMNS],
        j["payload"].isNull().alias("_no_payload"),
        *[j["payload"][name].alias(f"_raw_{name}") for name in PAYLOAD_FIELDS],
    )
    time_text = F.col("event_time")
    typed = raw.select(
        *[c for c in raw.columns if c != "event_time"],
        F.col("event_time").alias("_raw_event_time"),
        F.when(time_text.rlike(_TIME_RE), F.to_timestamp(time_text)).alias("event_time"),
        F.col("schema_version").cast("double").alias("_version"),
        *[
            (
                F.col(f"_raw_{name}")
                if spec.kind == "object"
                else _typed(F.col(f"_raw_{name}"), spec)
            ).alias(name)
            for name, spec in PAYLOAD_FIELDS.items()
        ],
    )
    # Rounded up to a whole day so the generated code (which embeds it) is the same all day
    # and Spark's compiled-code cache is reused between runs.
    latest_day = (now + MAX_CLOCK_SKEW).date() + timedelta(days=1)
    latest = F.lit(latest_day.isoformat()).cast("timestamp")
    rules: list[tuple[Column, str, Column]] = [
        (F.col("_corrupt"), "bad_json", F.lit("not a JSON object in the event envelope shape"))
    ]
    for name in ENVELOPE_COLUMNS:
        source_name = "_raw_event_time" if name == "event_time" else name
        rules.append((F.col(source_name).isNull(), "missing_field", F.lit(f"missing {name}")))
    rules += [
        (F.col("_no_payload"), "missing_field", F.lit("missing payload")),
        (
            F.col("_version").isNull() | (F.col("_version") != SCHEMA_VERSION),
            "unsupported_schema_version",
            F.concat(
                F.lit("schema_version "),
                F.col("schema_version"),
                F.lit(f"; this build reads version {SCHEMA_VERSION}"),
            ),
        ),
        (
            ~F.col("event_id").rlike(_UUID_RE),
            "bad_event_id",
            F.concat(F.lit("event_id "), F.col("event_id"), F.lit(" is not a UUID")),
        ),
        (
            (F.length(F.trim(F.col("account_id"))) == 0) | (F.length(F.col("account_id")) > 64),
            "bad_account_id",
            F.concat(F.lit("account_id '"), F.col("account_id"), F.lit("' must be 1-64 chars")),
        ),
        (
            ~F.col("event_type").isin(*EVENT_TYPES),
            "unknown_event_type",
            F.concat(F.lit("event_type "), F.col("event_type")),
        ),
        (
            F.col("event_time").isNull(),
            "bad_time",
            F.concat(
                F.lit("event_time "),
                F.col("_raw_event_time"),
                F.lit(" is not ISO 8601 with a zone"),
            ),
        ),
        (
            (F.col("event_time") < F.lit(EARLIEST).cast("timestamp"))
            | (F.col("event_time") > latest),
            "time_out_of_range",
            F.concat(
                F.lit("event_time "),
                F.col("_raw_event_time"),
                F.lit(" is before 1970 or more than a day in the future"),
            ),
        ),
    ]
    envelope = _first(rules)
    payload: Column | None = None
    for event_type, fields in PAYLOAD_SCHEMAS.items():
        check = _first(_payload_rules(event_type, fields))
        payload = (
            F.when(F.col("event_type") == event_type, check)
            if payload is None
            else payload.when(F.col("event_type") == event_type, check)
        )
    assert payload is not None
    verdict = F.coalesce(envelope, payload)
    checked = typed.withColumn("_verdict", verdict)
    return checked.select(
        "dt",
        "source_file",
        "value",
        "event_id",
        "event_type",
        "account_id",
        "source",
        "event_time",
        *PAYLOAD_FIELDS,
        F.col("_verdict.reason").alias("reason"),
        F.col("_verdict.detail").alias("detail"),
    )


def _payload_rules(
    event_type: str, fields: dict[str, FieldSpec]
) -> list[tuple[Column, str, Column]]:
    """The rules for one event type's payload, on the typed (``name``) and raw (``_raw_name``)."""
    rules: list[tuple[Column, str, Column]] = []
    for name, spec in fields.items():
        raw, value, where = F.col(f"_raw_{name}"), F.col(name), f"payload.{name}"
        shown = raw.cast("string")
        if spec.required or not spec.nullable:
            rules.append((raw.isNull(), "missing_field", F.lit(f"{event_type} needs {where}")))
        if spec.kind != "object":
            rules.append(
                (
                    raw.isNotNull() & value.isNull(),
                    "bad_type",
                    F.concat(F.lit(f"{where} must be a {spec.kind}, got "), shown),
                )
            )
        if spec.minimum is not None:
            rules.append(
                (
                    value < spec.minimum,
                    "out_of_range",
                    F.concat(F.lit(f"{where}="), shown, F.lit(f" is below {spec.minimum:g}")),
                )
            )
        if spec.maximum is not None:
            rules.append(
                (
                    value > spec.maximum,
                    "out_of_range",
                    F.concat(F.lit(f"{where}="), shown, F.lit(f" is above {spec.maximum:g}")),
                )
            )
        if spec.choices is not None:
            rules.append(
                (
                    ~raw.isin(*spec.choices),
                    "bad_value",
                    F.concat(F.lit(f"{where}="), shown, F.lit(" is not a known value")),
                )
            )
    if event_type == "statement":
        rules.append(
            (
                F.col("due_date") < F.col("statement_date"),
                "impossible_value",
                F.concat(
                    F.lit("payload.due_date="),
                    F.col("_raw_due_date"),
                    F.lit(" is before payload.statement_date="),
                    F.col("_raw_statement_date"),
                ),
            )
        )
    return rules


def _first(rules: Iterable[tuple[Column, str, Column]]) -> Column:
    """CASE WHEN over the rules in order -> struct(reason, detail) of the first hit, else null."""
    expr: Column | None = None
    for condition, reason, detail in rules:
        result = F.struct(F.lit(reason).alias("reason"), detail.alias("detail"))
        expr = F.when(condition, result) if expr is None else expr.when(condition, result)
    assert expr is not None
    return expr


def classify_events(validated: DataFrame, known_accounts: DataFrame | None = None) -> DataFrame:
    """Mark duplicates and events of unknown accounts; add ``status``.

    - duplicates: among valid rows with the same ``event_id`` the first by (dt, event_time,
      source_file, value) is kept, the others get status ``duplicate``;
    - ``unknown_account``: a valid non-opening event whose account has no ``account_opened``
      event, neither in this batch nor in ``known_accounts`` (one column ``account_id``: the
      accounts already curated). Such rows are quarantined, never guessed at.

    Only narrow columns are shuffled: the ids that occur more than once and the opened accounts
    are small sets, broadcast to the rows; only rows whose id repeats are ranked. ``value`` (the
    raw line) is kept for quarantined rows only. ``validated`` is read three times: persist it
    when it is expensive to compute.
    """
    valid = F.col("reason").isNull()
    repeated = (
        validated.where(valid)
        .groupBy("event_id")
        .count()
        .where(F.col("count") > 1)
        .select("event_id", F.lit(True).alias("_repeated"))
    )
    marked = validated.join(F.broadcast(repeated), "event_id", "left")
    is_repeat = valid & F.col("_repeated").isNotNull()
    order = Window.partitionBy("event_id").orderBy("dt", "event_time", "source_file", "value")
    ranked = (
        marked.where(is_repeat)
        .withColumn("_rank", F.row_number().over(order))
        .unionByName(marked.where(~is_repeat).withColumn("_rank", F.when(valid, F.lit(1))))
    )
    opened = validated.where(valid & (F.col("event_type") == "account_opened")).select("account_id")
    if known_accounts is not None:
        opened = opened.unionByName(known_accounts.select("account_id"))
    opened = opened.distinct().withColumn("_known", F.lit(True))
    joined = ranked.join(F.broadcast(opened), on="account_id", how="left")
    unknown = (
        valid
        & (F.col("_rank") == 1)
        & (F.col("event_type") != "account_opened")
        & F.col("_known").isNull()
    )
    reason = F.when(unknown, F.lit("unknown_account")).otherwise(F.col("reason"))
    detail = F.when(
        unknown,
        F.concat(
            F.lit("account_id "),
            F.col("account_id"),
            F.lit(" has no account_opened event"),
        ),
    ).otherwise(F.col("detail"))
    status = (
        F.when(reason.isNotNull(), F.lit(STATUS_QUARANTINED))
        .when(F.col("_rank") > 1, F.lit(STATUS_DUPLICATE))
        .otherwise(F.lit(STATUS_OK))
    )
    columns = [
        F.when(reason.isNotNull(), F.col("value")).alias("value") if c == "value" else F.col(c)
        for c in validated.columns
        if c not in ("reason", "detail")
    ]
    return joined.select(
        *columns,
        reason.alias("reason"),
        detail.alias("detail"),
        status.alias("status"),
    )


def curated_table(classified: DataFrame, event_type: str) -> DataFrame:
    """The valid, de-duplicated rows of one event type, with the curated schema plus ``dt``."""
    if event_type not in PAYLOAD_SCHEMAS:
        raise ValueError(f"event_type {event_type!r} is not one of {EVENT_TYPES}")
    schema = curated_schema(event_type)
    rows = classified.where((F.col("status") == STATUS_OK) & (F.col("event_type") == event_type))
    return rows.select(
        *[F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields], F.col("dt")
    )


QUARANTINE_COLUMNS: tuple[str, ...] = (
    "reason",
    "detail",
    "event_id",
    "event_type",
    "account_id",
    "source_file",
    "value",
    "dt",
)


def quarantine_table(classified: DataFrame) -> DataFrame:
    """The quarantined rows: reason, detail, what we could read of the event, the raw line."""
    return classified.where(F.col("status") == STATUS_QUARANTINED).select(*QUARANTINE_COLUMNS)


def quarantine_schema() -> T.StructType:
    """The quarantine table's schema (without the ``dt`` partition column)."""
    return T.StructType(
        [T.StructField(name, T.StringType(), True) for name in QUARANTINE_COLUMNS if name != "dt"]
    )


def with_event_month(frame: DataFrame) -> DataFrame:
    """Add ``event_month`` (``YYYY-MM`` of the UTC ``event_time``): the curated partition key."""
    return frame.withColumn("event_month", F.date_format("event_time", "yyyy-MM"))


PARTITION_FORMATS = {"event_month": "yyyy-MM", "event_year": "yyyy"}


def with_partition_key(frame: DataFrame, key: str) -> DataFrame:
    """Add the partition column ``key`` (``event_month`` or ``event_year`` of the UTC
    ``event_time``)."""
    if key not in PARTITION_FORMATS:
        raise ValueError(f"no partition key {key!r}; use one of {sorted(PARTITION_FORMATS)}")
    return frame.withColumn(key, F.date_format("event_time", PARTITION_FORMATS[key]))


def mark_already_curated(classified: DataFrame, curated_ids: DataFrame) -> DataFrame:
    """Valid rows whose ``event_id`` is already in a curated table become ``duplicate``.

    ``curated_ids`` (one column ``event_id``) holds the ids of the partitions this run touches,
    so de-duplication holds across runs, not only within one.
    """
    known = curated_ids.select("event_id").distinct().withColumn("_curated", F.lit(True))
    joined = classified.join(known, "event_id", "left")
    status = F.when(
        (F.col("status") == STATUS_OK) & F.col("_curated").isNotNull(), F.lit(STATUS_DUPLICATE)
    ).otherwise(F.col("status"))
    return joined.select(
        *[status.alias(c) if c == "status" else F.col(c) for c in classified.columns]
    )
