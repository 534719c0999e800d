"""The UCI "default of credit card clients" data (Taiwan, 2005) as a stream of events. Pure module
(it reads the file it is given, read-only, and nothing else).

Per client, in time order:

- ``account_opened`` at 2005-04-01 (the data has no opening date; this is the start of the
  observation window): credit limit, age and readable sex/education/marital status. Codes the
  data set does not document (education 0, 5, 6; marriage 0) become ``"unknown"``; the raw codes
  always travel in ``attributes`` (``sex_code``, ``education_code``, ``marriage_code``) with the
  original ``client_id``.
- For each month April..September 2005: a ``payment`` on the 15th (``PAY_AMTx``, the amount paid in
  that month, zero included) and a ``statement`` on the last day (``BILL_AMTx``; repayment status
  from ``PAY_x``).
- ``outcome`` on 2005-10-31: ``default payment next month``.

The data has no minimum payment or due date; the contract requires both on a statement, so they are
derived by a documented rule, not observed: ``minimum_due = max(0, balance) * 0.10`` (rounded to
cents) and ``due_date = statement_date + 25 days``. Event ids are uuid5 of
source/account/type/date, so a replay puts the same ids on the stream.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from ingestion.ids import event_id
from riskstream import datasets, names
from riskstream.events import envelope

SOURCE = names.SOURCE_TAIWAN
# The copy shipped in data/taiwan_default/ (licence, source and sha256 beside it).
TAIWAN_CSV = datasets.TAIWAN_CSV
DEFAULT_PATH = TAIWAN_CSV
OPENED_TIME = "2005-04-01T00:00:00Z"
OBSERVED_DATE = "2005-10-31"
MINIMUM_DUE_RATE = 0.10
DUE_DAYS = 25

SEX = {1: "male", 2: "female"}
EDUCATION = {1: "graduate_school", 2: "university", 3: "high_school", 4: "other"}
MARRIAGE = {1: "married", 2: "single", 3: "other"}
# (status column, bill column, payment column) for April .. September 2005, oldest first.
MONTHS: tuple[tuple[int, str, str, str], ...] = (
    (4, "PAY_6", "BILL_AMT6", "PAY_AMT6"),
    (5, "PAY_5", "BILL_AMT5", "PAY_AMT5"),
    (6, "PAY_4", "BILL_AMT4", "PAY_AMT4"),
    (7, "PAY_3", "BILL_AMT3", "PAY_AMT3"),
    (8, "PAY_2", "BILL_AMT2", "PAY_AMT2"),
    (9, "PAY_0", "BILL_AMT1", "PAY_AMT1"),
)
LABEL = "default payment next month"
REQUIRED = (
    "ID",
    "LIMIT_BAL",
    "SEX",
    "EDUCATION",
    "MARRIAGE",
    "AGE",
    LABEL,
    *(c for m in MONTHS for c in m[1:]),
)
EVENTS_PER_CLIENT = 1 + 2 * len(MONTHS) + 1


class TaiwanDataError(ValueError):
    """The file is not the UCI Taiwan data set as documented; the message says what differs."""


def account_id(client_id: int) -> str:
    return f"TW{client_id:05d}"


def load(path: str | Path = TAIWAN_CSV) -> pd.DataFrame:
    """Read the CSV (header row, 25 columns); fail clearly when a column is missing.

    The shipped copy (``TAIWAN_CSV``) must match its pinned sha256; another file given by path is
    checked for the columns only.
    """
    path = Path(path)
    shipped = path.resolve() == TAIWAN_CSV.resolve()
    if not path.is_file():
        hint = (
            " (the copy shipped in the checkout's data/taiwan_default/; run from the checkout, "
            "where make setup installs the project editable)"
            if shipped
            else ""
        )
        raise TaiwanDataError(f"Taiwan data file {path} does not exist{hint}")
    if shipped:
        try:
            datasets.verify_sha256(path, datasets.TAIWAN_SHA256)
        except datasets.DatasetChecksumError as exc:
            raise TaiwanDataError(str(exc)) from None
    frame = pd.read_csv(path)
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise TaiwanDataError(f"{path} lacks columns {missing}; is this the UCI Taiwan file?")
    return frame


def events(path: str | Path = TAIWAN_CSV) -> Iterator[dict[str, Any]]:
    """Every client's events, client by client, each client's in time order."""
    yield from frame_events(load(path))


def frame_events(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """Events for an already loaded frame (see the module docstring for the mapping)."""
    months = [(m, _month_dates(m)) for m, *_ in MONTHS]
    columns = {c: frame[c].tolist() for c in REQUIRED}
    for row in range(len(frame)):
        client = int(columns["ID"][row])
        account = account_id(client)
        sex, edu, mar = (int(columns[c][row]) for c in ("SEX", "EDUCATION", "MARRIAGE"))
        yield _event(
            "account_opened",
            account,
            OPENED_TIME,
            {
                "credit_limit": float(columns["LIMIT_BAL"][row]),
                "age": int(columns["AGE"][row]),
                "sex": SEX.get(sex, "unknown"),
                "education": EDUCATION.get(edu, "unknown"),
                "marital_status": MARRIAGE.get(mar, "unknown"),
                "attributes": {
                    "client_id": client,
                    "sex_code": sex,
                    "education_code": edu,
                    "marriage_code": mar,
                },
            },
        )
        limit = float(columns["LIMIT_BAL"][row])
        for (_, status_col, bill_col, pay_col), (_, (pay_time, stmt_day, due_day)) in zip(
            MONTHS, months, strict=True
        ):
            yield _event(
                "payment",
                account,
                pay_time,
                {"amount": float(columns[pay_col][row]), "statement_date": None},
            )
            balance = float(columns[bill_col][row])
            yield _event(
                "statement",
                account,
                f"{stmt_day}T23:00:00Z",
                {
                    "statement_date": stmt_day,
                    "balance": balance,
                    "minimum_due": round(max(0.0, balance) * MINIMUM_DUE_RATE, 2),
                    "due_date": due_day,
                    "credit_limit": limit,
                    "repayment_status": int(columns[status_col][row]),
                },
            )
        yield _event(
            "outcome",
            account,
            f"{OBSERVED_DATE}T23:59:59Z",
            {"default_flag": int(columns[LABEL][row]), "observed_date": OBSERVED_DATE},
        )


def _month_dates(month: int) -> tuple[str, str, str]:
    last = date(2005, month, calendar.monthrange(2005, month)[1])
    return (
        f"2005-{month:02d}-15T12:00:00Z",
        last.isoformat(),
        (last + timedelta(days=DUE_DAYS)).isoformat(),
    )


def _event(kind: str, account: str, when: str, payload: dict[str, Any]) -> dict[str, Any]:
    return envelope(event_id(SOURCE, account, kind, when), kind, account, when, SOURCE, payload)
