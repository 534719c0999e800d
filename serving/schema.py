"""Pure request schema for the scoring API, built from the champion's own feature list.

Each application carries exactly the champion's features (unknown fields are rejected), with
types from the model signature and bounds from :data:`BOUNDS` (known credit fields) or a generous
finite range. Categorical features whose encoder rejects unknown values are limited to the
categories seen in training, so a request can never make the model raise.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model, model_validator

from riskstream.events import MERCHANT_CATEGORIES, PAYLOAD_SCHEMAS, FieldSpec

MAX_APPLICATIONS = 1000
MAX_BODY_BYTES = 1_000_000
MAX_EVENTS = 600  # statements, payments or purchases per raw application (50 years monthly)
# The contract's account facts that are protected attributes: a raw application may carry one
# only when the champion takes it as an input (as the precomputed form), else 422 names it.
PROTECTED_FACTS = ("age", "sex", "marital_status")
MAX_STRING = 64
DEFAULT_BOUND = 1e12

# (pattern, lower, upper) for known numeric features; the first match wins.
BOUNDS: tuple[tuple[str, float, float], ...] = (
    (r"credit_limit", 0, 1e9),
    (r"age", 18, 120),
    (r"bill_amt_m\d+", -1e9, 1e9),
    (r"pay_amt_m\d+", 0, 1e9),
    (r"repayment_status_m\d+", -2, 9),
    (r".*(utilization|ratio|rate|share).*", -1e3, 1e3),
)


def _integral(value: Any) -> Any:
    """JSON Schema's ``integer`` includes 3.0; accept it as 3 so the schema is what we accept."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def bounds_for(name: str) -> tuple[float, float]:
    for pattern, low, high in BOUNDS:
        if re.fullmatch(pattern, name):
            return low, high
    return -DEFAULT_BOUND, DEFAULT_BOUND


def feature_kinds(pipeline: Any, signature: Sequence[dict[str, Any]]) -> dict[str, str]:
    """name -> ``int``, ``float``, ``bool`` or ``str`` for every feature the pipeline needs."""
    from serving.scoring import source_features, split_pipeline

    preprocess, _ = split_pipeline(pipeline)
    sig = {c.get("name"): str(c.get("type", "")) for c in signature}
    categorical = set(categories(pipeline))
    kinds: dict[str, str] = {}
    for name in source_features(preprocess):
        t = sig.get(name, "")
        if t in ("long", "integer"):
            kinds[name] = "int"
        elif t in ("double", "float"):
            kinds[name] = "float"
        elif t == "boolean":
            kinds[name] = "bool"
        elif t == "string" or name in categorical:
            kinds[name] = "str"
        else:
            kinds[name] = "float"
    return kinds


def categories(pipeline: Any) -> dict[str, list[str] | None]:
    """Categorical features -> allowed values (None when any string is accepted)."""
    from serving.scoring import split_pipeline

    preprocess, _ = split_pipeline(pipeline)
    out: dict[str, list[str] | None] = {}
    for _name, trans, cols in getattr(preprocess, "transformers_", []):
        encoder = _find_encoder(trans)
        if encoder is None:
            continue
        strict = getattr(encoder, "handle_unknown", "error") == "error"
        names = [str(c) for c in cols] if not isinstance(cols, slice) else []
        for col, cats in zip(names, getattr(encoder, "categories_", []), strict=False):
            out[col] = [str(c) for c in cats if c == c] if strict else None  # drop NaN
    return out


def _find_encoder(trans: Any) -> Any:
    if type(trans).__name__ in ("OneHotEncoder", "OrdinalEncoder", "TargetEncoder"):
        return trans
    for _name, step in getattr(trans, "steps", []):
        if type(step).__name__ in ("OneHotEncoder", "OrdinalEncoder", "TargetEncoder"):
            return step
    return None


def application_model(
    kinds: dict[str, str], allowed: dict[str, list[str] | None]
) -> type[BaseModel]:
    """The pydantic model of one application (strict types, bounds, no unknown fields)."""
    fields: dict[str, Any] = {
        "application_id": (
            Annotated[str | None, Field(max_length=MAX_STRING, description="echoed back")],
            None,
        )
    }
    for name, kind in kinds.items():
        if kind == "str":
            values = allowed.get(name)
            if values:
                fields[name] = (Literal[tuple(values)], ...)  # type: ignore[misc]
            else:
                fields[name] = (Annotated[str, Field(min_length=1, max_length=MAX_STRING)], ...)
        elif kind == "bool":
            fields[name] = (Annotated[bool, Field(strict=True)], ...)
        else:
            low, high = bounds_for(name)
            if kind == "int":
                fields[name] = (
                    Annotated[
                        int,
                        Field(strict=True, ge=int(low), le=int(high)),
                        BeforeValidator(_integral),  # after Field: keeps minimum/maximum
                    ],
                    ...,
                )
            else:
                fields[name] = (
                    Annotated[float, Field(strict=True, ge=low, le=high, allow_inf_nan=False)],
                    ...,
                )
    return create_model(  # type: ignore[call-overload, no-any-return]
        "Application", __config__=ConfigDict(extra="forbid"), **fields
    )


Day = Annotated[date, Field(strict=True, description="YYYY-MM-DD")]


def _contract(spec: FieldSpec, required: bool | None = None) -> tuple[Any, Any]:
    """One field with the event contract's type and bounds (:data:`PAYLOAD_SCHEMAS`)."""
    needed = spec.required if required is None else required
    kind: Any
    if spec.kind == "number":
        kind = Annotated[
            float, Field(strict=True, ge=spec.minimum, le=spec.maximum, allow_inf_nan=False)
        ]
    elif spec.kind == "integer":
        kind = Annotated[
            int,
            Field(strict=True, ge=int(spec.minimum or 0), le=int(spec.maximum or 0)),
            BeforeValidator(_integral),
        ]
    elif spec.kind == "date":
        kind = Day
    elif spec.choices:
        kind = Literal[tuple(spec.choices)]  # type: ignore[misc]
    else:
        kind = Annotated[str, Field(min_length=1, max_length=MAX_STRING)]
    if spec.nullable or not needed:
        kind = kind | None
    return (kind, ... if needed else None)


def _event_model(name: str, event_type: str, fields: dict[str, Any]) -> type[BaseModel]:
    schema = PAYLOAD_SCHEMAS[event_type]
    spec = {k: _contract(schema[k]) for k in fields.pop("_from_contract")}
    return create_model(  # type: ignore[call-overload, no-any-return]
        name, __config__=ConfigDict(extra="forbid"), **spec, **fields
    )


Statement = _event_model(
    "Statement",
    "statement",
    {
        "_from_contract": ["statement_date", "balance", "minimum_due", "repayment_status"],
        "credit_limit": _contract(PAYLOAD_SCHEMAS["statement"]["credit_limit"]),
        "due_date": _contract(PAYLOAD_SCHEMAS["statement"]["due_date"], required=False),
    },
)
Payment = _event_model(
    "Payment",
    "payment",
    {"_from_contract": ["amount"], "date": (Day, ...)},
)
Purchase = _event_model(
    "Purchase",
    "purchase",
    {
        "_from_contract": ["amount"],
        "merchant_category": (Literal[MERCHANT_CATEGORIES], ...),  # type: ignore[valid-type]
        "date": (Day, ...),
    },
)
Scalar = Annotated[str, Field(max_length=MAX_STRING)] | float | bool | None


def raw_application_model(
    kinds: dict[str, str], allowed: dict[str, list[str] | None]
) -> type[BaseModel]:
    """One application by its raw facts: the contract's ``account_opened`` facts, the statement
    history, the payments and the purchases, and an optional observation date.

    A categorical fact the champion takes with a closed list of values is required and limited
    to that list, as in the precomputed form; a protected fact (:data:`PROTECTED_FACTS`) is a
    field only when the champion takes it as an input.
    """
    opened = PAYLOAD_SCHEMAS["account_opened"]
    fields: dict[str, Any] = {
        "application_id": (
            Annotated[str | None, Field(max_length=MAX_STRING, description="echoed back")],
            None,
        ),
        "obs_date": (
            Day | None,
            Field(None, description="default: the first day of the month after the last statement"),
        ),
        "opened_on": (Day, Field(..., description="the account_opened event's date")),
    }
    for fact in ("credit_limit", "income", "education", "age", "sex", "marital_status"):
        if fact in PROTECTED_FACTS and fact not in kinds:
            continue
        values = allowed.get(fact) if kinds.get(fact) == "str" else None
        if values:
            fields[fact] = (Literal[tuple(values)], ...)  # type: ignore[misc]
        else:
            fields[fact] = _contract(opened[fact])
    fields["attributes"] = (
        Annotated[dict[Annotated[str, Field(max_length=MAX_STRING)], Scalar], Field(max_length=200)]
        | None,
        None,
    )
    for name, model in (("statements", Statement), ("payments", Payment), ("purchases", Purchase)):
        fields[name] = (
            Annotated[list[model], Field(max_length=MAX_EVENTS)],  # type: ignore[valid-type]
            [],
        )
    return create_model(  # type: ignore[call-overload, no-any-return]
        "RawApplication", __config__=ConfigDict(extra="forbid"), **fields
    )


class _ExactlyOneForm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _one_form(self) -> _ExactlyOneForm:
        given = [k for k in self.model_fields_set if getattr(self, k) is not None]
        if len(given) != 1 or len(self.model_fields_set) != 1:
            raise ValueError(
                "send exactly one of `applications` (precomputed features) or "
                "`raw_applications` (account facts, statements, payments)"
            )
        return self


def score_request_model(
    application: type[BaseModel], raw_application: type[BaseModel]
) -> type[BaseModel]:
    """``{"applications": [...]}`` or ``{"raw_applications": [...]}``, 1..MAX_APPLICATIONS items."""

    def items(model: type[BaseModel]) -> Any:
        return Annotated[
            list[model] | None,  # type: ignore[valid-type]
            Field(min_length=1, max_length=MAX_APPLICATIONS),
        ]

    return create_model(  # type: ignore[call-overload, no-any-return]
        "ScoreRequest",
        __base__=_ExactlyOneForm,
        applications=(items(application), None),
        raw_applications=(items(raw_application), None),
    )


def raw_request_model(raw_application: type[BaseModel]) -> type[BaseModel]:
    """The published schema of the raw form: ``{"raw_applications": [...]}``."""
    return _list_request("RawScoreRequest", "raw_applications", raw_application)


def request_model(application: type[BaseModel]) -> type[BaseModel]:
    """``{"applications": [Application, ...]}`` with 1..MAX_APPLICATIONS items."""
    return _list_request("FeatureScoreRequest", "applications", application)


def _list_request(name: str, field: str, item: type[BaseModel]) -> type[BaseModel]:
    """A model named ``name`` with one required field: a list of 1..MAX_APPLICATIONS ``item``s."""
    items = Annotated[
        list[item],  # type: ignore[valid-type]
        Field(min_length=1, max_length=MAX_APPLICATIONS),
    ]
    return create_model(  # type: ignore[call-overload, no-any-return]
        name, __config__=ConfigDict(extra="forbid"), **{field: (items, ...)}
    )


class Reason(BaseModel):
    feature: str
    name: str
    contribution: float


class ScoreResult(BaseModel):
    application_id: str | None = None
    obs_date: str | None = Field(None, description="raw form only: the observation date used")
    features: dict[str, Any] | None = Field(
        None, description="raw form only: the features computed and scored (null: unknown)"
    )
    pd: float
    score: int
    risk_tier: str
    decision: str
    reasons: list[Reason]


class ScoreResponse(BaseModel):
    model_name: str
    model_version: str
    reason_method: str | None = None  # how the reasons' contributions are computed
    results: list[ScoreResult]


class AccountScore(BaseModel):
    model_name: str
    model_version: str
    account_id: str
    obs_date: str | None = None
    reason_method: str | None = None  # how the reasons' contributions are computed
    pd: float
    score: int
    risk_tier: str
    decision: str
    reasons: list[Reason]
    as_of: str | None = None  # live: the event time of the latest event in this score
    event_id: str | None = None  # live: the latest event applied
    source: str = "batch"  # "live" (the live scorer's state) or "batch" (materialized features)


class Health(BaseModel):
    status: str
    model_version: str | None = None
    checked_at: float | None = None
    error: str | None = None
    online_accounts: int = 0


class ModelInfo(BaseModel):
    name: str
    version: str
    alias: str
    run_id: str | None = None
    portfolio: str | None = None  # the portfolio the champion was trained on and serves
    model_type: str
    threshold: float
    metrics: dict[str, float]
    decision_reason: str | None = None
    features: list[str]
    loaded_at: float
    scorer: str
    reason_method: str | None = None
