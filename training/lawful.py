"""Which columns may be model inputs (pure): protected attributes and identifiers never are.

Regulation B (12 CFR 1002) bars sex and marital status (and race, colour, religion, national
origin) as a basis for a credit decision and limits the use of age; adverse-action reasons must
describe the factors actually scored, so a column that is not a model input can never be a reason.

- **Protected attributes** (:data:`DEFAULT_PROTECTED`, ``RISKSTREAM_PROTECTED_ATTRIBUTES``, and
  every column a CSV mapping marks ``protected``, which the pipeline names ``attr_protected_*``)
  stay in the feature table, so monitoring and the fairness report can use them, and are dropped
  only at the model's input. ``age`` leaves the list only with the explicit opt-in
  ``RISKSTREAM_ALLOW_AGE=1``, for jurisdictions and products where the law allows it (e.g. an
  empirically derived, demonstrably sound system under 12 CFR 1002.6(b)(2)).
- **Identifiers** (``account_id``, ``id``, any ``*_id``) are never features: they carry no
  evidence, only a row's position.

A column's *base name* is its name in lower case without the ``attr_`` prefix the ETL gives CSV
attributes, so ``attr_sex`` and ``attr_client_id`` are caught like ``sex`` and ``client_id``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_PROTECTED: tuple[str, ...] = (
    "sex",
    "gender",
    "marital_status",
    "age",
    "race",
    "ethnicity",
    "colour",
    "color",
    "religion",
    "national_origin",
)
AGE = "age"
PROTECTED_PREFIX = "protected_"  # a CSV mapping's `protected` columns become attr_protected_<name>
ATTRIBUTE_PREFIX = "attr_"


def base_name(column: str) -> str:
    name = column.strip().lower()
    return name[len(ATTRIBUTE_PREFIX) :] if name.startswith(ATTRIBUTE_PREFIX) else name


def is_identifier(column: str) -> bool:
    base = base_name(column)
    return base in ("id", "account_id") or base.endswith("_id") or column == "account_id"


@dataclass(frozen=True)
class InputPolicy:
    """The protected list in force: the defaults, the extra names, and whether age is allowed."""

    extra: tuple[str, ...] = ()
    allow_age: bool = False

    @property
    def protected(self) -> tuple[str, ...]:
        names = [*DEFAULT_PROTECTED, *(base_name(e) for e in self.extra)]
        if self.allow_age:
            names = [n for n in names if n != AGE]
        return tuple(dict.fromkeys(names))

    def is_protected(self, column: str) -> bool:
        base = base_name(column)
        return base in self.protected or base.startswith(PROTECTED_PREFIX)

    def describe(self) -> dict[str, object]:
        return {
            "protected": list(self.protected),
            "protected_prefix": ATTRIBUTE_PREFIX + PROTECTED_PREFIX,
            "allow_age": self.allow_age,
            "identifiers": "account_id, id, *_id",
        }


@dataclass(frozen=True)
class InputSelection:
    """The model inputs, and what was kept out of them and why."""

    features: tuple[str, ...]
    protected: tuple[str, ...]  # present in the table, excluded, kept for monitoring
    identifiers: tuple[str, ...]


def select_inputs(columns: Iterable[str], policy: InputPolicy) -> InputSelection:
    features: list[str] = []
    protected: list[str] = []
    identifiers: list[str] = []
    for column in columns:
        if is_identifier(column):
            identifiers.append(column)
        elif policy.is_protected(column):
            protected.append(column)
        else:
            features.append(column)
    return InputSelection(tuple(features), tuple(protected), tuple(identifiers))
