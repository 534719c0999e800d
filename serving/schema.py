"""Pure request schema for the scoring API, built from the champion's own feature list.

Each application carries exactly the champion's features (unknown fields are rejected), with
types from the model signature and bounds from :data:`BOUNDS` (known credit fields) or a generous
finite range. Categorical features whose encoder rejects unknown values are limited to the
categories seen in training, so a request can never make the model raise.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

MAX_APPLICATIONS = 1000
MAX_BODY_BYTES = 1_000_000
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


def request_model(application: type[BaseModel]) -> type[BaseModel]:
    """``{"applications": [Application, ...]}`` with 1..MAX_APPLICATIONS items."""
    return create_model(  # type: ignore[call-overload, no-any-return]
        "ScoreRequest",
        __config__=ConfigDict(extra="forbid"),
        applications=(  # type: ignore[arg-type]
            Annotated[
                list[application],  # type: ignore[valid-type]
                Field(min_length=1, max_length=MAX_APPLICATIONS),
            ],
            ...,
        ),
    )


class Reason(BaseModel):
    feature: str
    name: str
    contribution: float


class ScoreResult(BaseModel):
    application_id: str | None = None
    pd: float
    score: int
    risk_tier: str
    decision: str
    reasons: list[Reason]


class ScoreResponse(BaseModel):
    model_name: str
    model_version: str
    results: list[ScoreResult]


class AccountScore(BaseModel):
    model_name: str
    model_version: str
    account_id: str
    obs_date: str | None = None
    pd: float
    score: int
    risk_tier: str
    decision: str
    reasons: list[Reason]


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
    model_type: str
    threshold: float
    metrics: dict[str, float]
    decision_reason: str | None = None
    features: list[str]
    loaded_at: float
    scorer: str
    reason_method: str | None = None
