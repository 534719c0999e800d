"""WoE scorecard: binned characteristics, weight of evidence, a logistic model, a points table.

The industry's baseline and the form a risk committee reads (Siddiqi, *Credit Risk Scorecards*):

1. **Fine classing.** Each numeric characteristic is cut at its training quantiles (5% steps, or
   at each distinct value when it has few); a missing value is a bin of its own. A categorical
   characteristic (an ordinal code from the shared tree preprocessing) has a bin per category,
   ordered by default rate.
2. **Coarse classing.** Adjacent bins are merged until each holds ``min_bin_share`` of the rows
   and there are at most ``max_bins``. Where the business expects a direction (utilisation,
   arrears, missed payments rise with risk; payments, limits, months since arrears fall with it:
   :data:`RISING_RISK`, :data:`FALLING_RISK`) the bins are merged until the default rate is
   monotonic in that direction (pool-adjacent-violators); a characteristic whose data disagree
   with the business collapses to one bin and leaves the model.
3. **Weight of evidence** per bin, ``ln(share of goods / share of bads)`` (0.5 added to each
   count), and the **information value** per characteristic, ``sum((goods - bads) * woe)``.
   Characteristics under ``min_iv`` (0.02, "unpredictive") are left out.
4. **A logistic model on the WoE values**; a characteristic whose coefficient comes out with
   the wrong sign (collinearity) is dropped and the model refitted, so the points of every
   characteristic rise with its WoE.
5. **Points.** ``points = -factor * slope * coef * woe`` per bin and a base of
   ``offset - factor * (intercept + slope * b0)`` (``factor = pdo / ln 2``, ``offset`` and the
   Platt ``slope``/``intercept`` as served: :class:`riskstream.scorescale.ScoreScale`), so an
   account's base plus its bins' points is the score it is served, before rounding and
   clipping. Training logs the table (``kind/points_table.csv``, ``kind/information_value.csv``,
   ``kind/scorecard.json``) and the model card shows it.

**Segments.** With ``segmented`` (searched; the default) and a ``delinquent_months`` input
whose both sides are large enough, clean accounts and those with any month in arrears in the
lookback each get a card of their own (steps 1-5 on their rows, base points included): the
interaction a single additive card cannot express. A row is scored and explained by its
segment's card only.

Its reasons are the **points lost** per characteristic: the characteristic's best bin's points
minus the account's bin's (at ``pdo`` points to double the odds, before calibration, which
scales every characteristic alike). The compiled scorer runs the same array functions as the
estimator, so the two agree exactly.

Protected attributes never reach it: training selects the inputs (:mod:`training.lawful`).
The estimator class is built on first use (module ``__getattr__``), so importing the registry
loads no scikit-learn.
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any

from modelkinds.base import CompiledEstimator, FitOptions, KindReport, ModelKind, ReportContext

RISING_RISK = re.compile(r"utili[sz]ation|delinquen|missed|past_due|dpd|unpaid_to_limit|overlimit")
"""Characteristics whose default rate the business expects to rise with the value. Not a
repayment status: it mixes states (-2 no use, -1 paid duly, 0 revolving) with months in arrears
(1 and up), so it is not one scale and its bins follow the data."""
FALLING_RISK = re.compile(
    r"paid_in_full|pay_to_bill|pay_amt|payment_ratio|months_since|credit_limit|"
    r"income|months_on_book"
)
"""Characteristics whose default rate the business expects to fall as the value grows."""
FINE_BINS = 20  # fine classes per numeric characteristic (5% quantile steps)
SMOOTHING = 0.5  # added to each bin's good and bad counts in the WoE
CATEGORICAL_PREFIX = "cat__"  # the shared tree preprocessing's categorical columns
PDO = 20.0  # the points of the reasons: points lost at 20 points to double the odds
SEGMENT_ON = re.compile(r"(^|__)delinquent_months$")
"""The characteristic that splits a segmented scorecard: accounts with any month in arrears in
the lookback (``>= 1``) get a card of their own ("delinquent"); the others, and an account whose
value is missing, the "clean" card."""
MIN_SEGMENT_SHARE = 0.1  # each segment at least this share of the training rows
MIN_SEGMENT_BADS = 50  # and at least this many defaults, or the card stays one


def _trend(name: str) -> int:
    """+1: risk expected to rise with the value; -1: to fall; 0: no expectation."""
    base = name.split("__", 1)[-1].lower()
    if RISING_RISK.search(base) and not FALLING_RISK.search(base):
        return 1
    if FALLING_RISK.search(base):
        return -1
    return 0


# ---- binning (numpy only; the estimator and the compiled scorer share it) ---------------------
def _merge(counts: list[list[float]], pairs: list[int]) -> list[list[float]]:
    """``counts`` (per bin: rows, bads, then the fine classes it holds) with bin ``i`` merged
    into bin ``i + 1`` for each ``i`` of ``pairs`` (one at a time)."""
    for i in sorted(pairs, reverse=True):
        a, b = counts[i], counts[i + 1]
        counts[i : i + 2] = [[a[0] + b[0], a[1] + b[1], *a[2:], *b[2:]]]
    return counts


def _rate(bin_: list[float]) -> float:
    return bin_[1] / bin_[0] if bin_[0] else 0.0


def coarse_classes(
    rows: list[float], bads: list[float], trend: int, min_rows: float, max_bins: int
) -> list[list[int]]:
    """Adjacent fine classes (by their ``rows`` and ``bads``) grouped into coarse ones: the
    default rate monotonic in ``trend``'s direction (0: unconstrained), each group at least
    ``min_rows`` rows, at most ``max_bins`` groups. Returns the fine classes of each group."""
    counts: list[list[float]] = [[r, b, i] for i, (r, b) in enumerate(zip(rows, bads, strict=True))]
    if trend:  # pool adjacent violators: merge until strictly monotonic
        merged = True
        while merged and len(counts) > 1:
            merged = False
            for i in range(len(counts) - 1):
                if trend * (_rate(counts[i + 1]) - _rate(counts[i])) <= 0:
                    _merge(counts, [i])
                    merged = True
                    break
    while len(counts) > 1:  # small bins join the neighbour with the closer default rate
        small = min(range(len(counts)), key=lambda k: (counts[k][0], k))
        if counts[small][0] >= min_rows:
            break
        if small == 0:
            _merge(counts, [0])
        elif small == len(counts) - 1:
            _merge(counts, [small - 1])
        else:
            left = abs(_rate(counts[small]) - _rate(counts[small - 1]))
            right = abs(_rate(counts[small]) - _rate(counts[small + 1]))
            _merge(counts, [small - 1] if left <= right else [small])
    while len(counts) > max_bins:  # then the closest neighbours, until few enough
        gaps = [abs(_rate(counts[i + 1]) - _rate(counts[i])) for i in range(len(counts) - 1)]
        _merge(counts, [gaps.index(min(gaps))])
    return [[int(i) for i in c[2:]] for c in counts]


def _woe(goods: Any, bads: Any) -> tuple[Any, float]:
    """(WoE per bin, information value) from good and bad counts per bin."""
    import numpy as np

    g = (np.asarray(goods, dtype=np.float64) + SMOOTHING) / (np.sum(goods) + SMOOTHING)
    b = (np.asarray(bads, dtype=np.float64) + SMOOTHING) / (np.sum(bads) + SMOOTHING)
    woe = np.log(g / b)
    return woe, float(np.sum((g - b) * woe))


def bin_numeric(x: Any, cuts: Any) -> Any:
    """Bin index of each value: ``k`` for ``cuts[k-1] <= x < cuts[k]``, ``len(cuts) + 1`` for a
    missing value."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    out = np.searchsorted(cuts, x, side="right")
    return np.where(np.isnan(x), len(cuts) + 1, out)


def bin_codes(x: Any, codes: Any) -> Any:
    """Bin index of each categorical code: its position in ``codes``, ``len(codes)`` for a
    code not seen in training (an unseen category)."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    codes = np.asarray(codes, dtype=np.float64)
    if not len(codes):
        return np.zeros(len(x), dtype=np.int64)
    pos = np.minimum(np.searchsorted(codes, x), len(codes) - 1)
    return np.where(codes[pos] == x, pos, len(codes))


def woe_matrix(x: Any, characteristics: list[dict[str, Any]]) -> Any:
    """The WoE value of each row's bin, per characteristic (columns in the model's order)."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    out = np.empty((x.shape[0], len(characteristics)), dtype=np.float64)
    for k, c in enumerate(characteristics):
        column = x[:, c["column"]]
        fine = bin_codes(column, c["codes"]) if c["nominal"] else bin_numeric(column, c["cuts"])
        out[:, k] = c["woe_of_fine"][fine]
    return out


def _fit_characteristic(
    column: Any, y: Any, name: str, index: int, nominal: bool, max_bins: int, min_share: float
) -> dict[str, Any]:
    """One characteristic's bins, WoE and IV (see the module docstring)."""
    import numpy as np

    present = ~np.isnan(column)
    values, labels = column[present], y[present]
    codes = cuts = np.empty(0)
    if nominal:
        codes = np.unique(values)
        fine = bin_codes(values, codes)
        n_fine = len(codes)
    else:
        distinct = np.unique(values)
        if len(distinct) <= FINE_BINS:
            cuts = distinct[1:]
        else:
            qs = np.quantile(values, np.linspace(0, 1, FINE_BINS + 1)[1:-1], method="lower")
            cuts = np.unique(qs[qs > distinct[0]])
        fine = bin_numeric(values, cuts)
        n_fine = len(cuts) + 1
    rows = np.bincount(fine, minlength=n_fine).astype(np.float64)
    bads = np.bincount(fine, weights=labels, minlength=n_fine)
    order = np.arange(n_fine)
    if nominal:  # categories have no order: rank them by default rate
        order = np.argsort(np.where(rows > 0, bads / np.maximum(rows, 1), 0.0), kind="stable")
    trend = 0 if nominal else _trend(name)
    groups = coarse_classes(
        list(rows[order]), list(bads[order]), trend, min_share * len(y), max_bins
    )
    coarse_of_fine = np.zeros(n_fine, dtype=np.int64)  # fine class -> coarse bin
    for g, members in enumerate(groups):
        coarse_of_fine[order[members]] = g
    n_bins = len(groups)
    goods_b = np.zeros(n_bins + 1)  # the last: missing values (numeric), unseen (categorical)
    bads_b = np.zeros(n_bins + 1)
    np.add.at(bads_b, coarse_of_fine[fine], labels)
    np.add.at(goods_b, coarse_of_fine[fine], 1.0 - labels)
    n_missing = int((~present).sum())
    bads_b[n_bins] = float(y[~present].sum())
    goods_b[n_bins] = n_missing - bads_b[n_bins]
    kept = np.arange(n_bins + (1 if n_missing else 0))
    woe, iv = _woe(goods_b[kept], bads_b[kept])
    woe_bins = np.zeros(n_bins + 1)
    woe_bins[kept] = woe  # no missing value in training: a missing one is neutral (WoE 0)
    # per fine class, then one slot: a missing value (bin_numeric) or an unseen code (bin_codes)
    woe_of_fine = np.append(woe_bins[coarse_of_fine], woe_bins[n_bins])
    return {
        "name": name,
        "column": index,
        "nominal": nominal,
        "trend": trend,
        "codes": codes,
        "cuts": cuts,
        "groups": [[int(order[m]) for m in members] for members in groups],
        "woe_of_fine": woe_of_fine,
        "bins_woe": woe_bins,
        "bins_goods": goods_b,
        "bins_bads": bads_b,
        "has_missing": bool(n_missing),
        "iv": iv,
    }


@functools.cache
def _scorecard_class() -> type:
    """The estimator class (scikit-learn imported here, on first use)."""
    import numpy as np
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.linear_model import LogisticRegression

    class WoEScorecard(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
        """Weight-of-evidence scorecard (see :mod:`modelkinds.scorecard`)."""

        def __init__(
            self,
            max_bins: int = 8,
            min_bin_share: float = 0.05,
            min_iv: float = 0.02,
            C: float = 1.0,
            pdo: float = PDO,
            segmented: bool = True,
        ) -> None:
            self.max_bins = max_bins
            self.min_bin_share = min_bin_share
            self.min_iv = min_iv
            self.C = C
            self.pdo = pdo
            self.segmented = segmented

        def fit(self, x: Any, y: Any) -> Any:
            names = [str(c) for c in getattr(x, "columns", [])]
            matrix = np.asarray(x, dtype=np.float64)
            y = np.asarray(y).astype(np.float64)
            if not names:
                names = [f"x{j}" for j in range(matrix.shape[1])]
            self.classes_ = np.array([0, 1])
            self.n_features_in_ = matrix.shape[1]
            self.column_names_ = names
            self.segment_rule_ = _segment_rule(names, matrix, y) if self.segmented else None
            segment = segment_of(self, matrix)
            self.segments_ = [
                self._fit_card(matrix[segment == k], y[segment == k], names, label)
                for k, label in enumerate(segment_labels(self))
            ]
            self.information_value_ = (  # of every characteristic, over all rows
                self.segments_[0]["iv"]
                if len(self.segments_) == 1
                else {c["name"]: c["iv"] for c in self._characteristics(matrix, y, names)}
            )
            importances = np.zeros(matrix.shape[1])
            for card in self.segments_:
                for c in card["characteristics"]:
                    importances[c["column"]] = max(importances[c["column"]], c["iv"])
            self.feature_importances_ = importances
            return self

        def _characteristics(self, matrix: Any, y: Any, names: list[str]) -> list[Any]:
            """Every input's bins, WoE and IV on these rows."""
            return [
                _fit_characteristic(
                    matrix[:, j],
                    y,
                    name,
                    j,
                    name.startswith(CATEGORICAL_PREFIX),
                    self.max_bins,
                    self.min_bin_share,
                )
                for j, name in enumerate(names)
            ]

        def _fit_card(self, matrix: Any, y: Any, names: list[str], label: str) -> dict[str, Any]:
            """One scorecard on these rows: its characteristics, coefficients and intercept."""
            every = self._characteristics(matrix, y, names)
            chosen = [c for c in every if c["iv"] >= self.min_iv] or [
                max(every, key=lambda c: c["iv"])
            ]
            woe = woe_matrix(matrix, chosen)
            keep = np.arange(len(chosen))
            while True:  # drop the wrong-signed characteristics (collinearity), refit
                model = LogisticRegression(C=self.C, solver="newton-cholesky", max_iter=200)
                model.fit(woe[:, keep], y)
                coef = model.coef_[0]
                if len(keep) == 1 or (coef <= 0).all():
                    break
                keep = keep[coef <= 0] if (coef <= 0).any() else keep[[int(np.argmin(coef))]]
            return {
                "label": label,
                "rows": len(y),
                "characteristics": [chosen[k] for k in keep],
                "coef": np.asarray(coef, dtype=np.float64),
                "intercept": float(model.intercept_[0]),
                "iv": {c["name"]: c["iv"] for c in every},
            }

        def __setstate__(self, state: dict[str, Any]) -> None:
            """A scorecard pickled before segments existed reads as one card."""
            if "characteristics_" in state and "segments_" not in state:
                card = {
                    "label": "all accounts",
                    "rows": None,
                    "characteristics": state.pop("characteristics_"),
                    "coef": state.pop("coef_woe_"),
                    "intercept": state.pop("intercept_woe_"),
                    "iv": state.get("information_value_", {}),
                }
                state.update(segments_=[card], segment_rule_=None, segmented=False)
            super().__setstate__(state)

        def decision_function(self, x: Any) -> Any:
            return decision(self, np.asarray(x, dtype=np.float64))

        def predict_proba(self, x: Any) -> Any:
            from scipy.special import expit

            p = expit(self.decision_function(x))
            return np.column_stack([1.0 - p, p])

        def predict(self, x: Any) -> Any:
            return (self.decision_function(x) >= 0).astype(int)

    WoEScorecard.__module__ = __name__
    WoEScorecard.__qualname__ = WoEScorecard.__name__
    return WoEScorecard


def __getattr__(name: str) -> Any:
    """``WoEScorecard``, built on first use (so a pickled model finds its class)."""
    if name == "WoEScorecard":
        return _scorecard_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _segment_rule(names: list[str], matrix: Any, y: Any) -> dict[str, Any] | None:
    """The clean / delinquent split (:data:`SEGMENT_ON` >= 1) when the inputs have it and both
    segments are large enough to fit a card of their own; None otherwise."""
    import numpy as np

    for j, name in enumerate(names):
        if SEGMENT_ON.search(name) and not name.startswith(CATEGORICAL_PREFIX):
            dirty = np.nan_to_num(matrix[:, j], nan=0.0) >= 1.0
            for part in (dirty, ~dirty):
                if part.mean() < MIN_SEGMENT_SHARE or y[part].sum() < MIN_SEGMENT_BADS:
                    return None
            return {"column": j, "name": name, "at_least": 1.0}
    return None


def segment_labels(model: Any) -> list[str]:
    """The label of each card: one card, or the clean and the delinquent segment."""
    rule = getattr(model, "segment_rule_", None)
    if rule is None:
        return ["all accounts"]
    source = rule["name"].split("__", 1)[-1]
    return [
        f"clean ({source} < {rule['at_least']:g})",
        f"delinquent ({source} >= {rule['at_least']:g})",
    ]


def segment_of(model: Any, x: Any) -> Any:
    """Each row's card: 0, or 1 for the delinquent segment of a segmented scorecard."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    rule = getattr(model, "segment_rule_", None)
    if rule is None:
        return np.zeros(x.shape[0], dtype=np.int64)
    return (np.nan_to_num(x[:, rule["column"]], nan=0.0) >= rule["at_least"]).astype(np.int64)


def decision(model: Any, x: Any) -> Any:
    """Log-odds of default: the row's card's intercept + coefficients x WoE values."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    out = np.empty(x.shape[0], dtype=np.float64)
    segment = segment_of(model, x)
    for k, card in enumerate(model.segments_):
        rows = segment == k
        if rows.any():
            woe = woe_matrix(x[rows], card["characteristics"])
            out[rows] = woe @ card["coef"] + card["intercept"]
    return out


def points_lost(model: Any, x: Any) -> Any:
    """Per input column: the points its characteristic's best bin gets minus the points of the
    row's bin, in the row's card (0 for a column the card does not use); ``model.pdo`` points
    double the odds."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    factor = model.pdo / math.log(2.0)
    out = np.zeros(x.shape, dtype=np.float64)
    segment = segment_of(model, x)
    for s, card in enumerate(model.segments_):
        rows = np.flatnonzero(segment == s)
        if not len(rows):
            continue
        woe = woe_matrix(x[rows], card["characteristics"])
        for k, c in enumerate(card["characteristics"]):
            coef = card["coef"][k]
            best = np.max(-coef * c["woe_of_fine"])  # every bin (and missing/unseen) it can give
            out[rows, c["column"]] = factor * (best + coef * woe[:, k])
    return out


# ---- the kind --------------------------------------------------------------------------------
def preprocess(numeric: list[str], categorical: list[str], variant: str | None) -> Any:
    """Numerics as they are (missing stays missing: its own bin), categoricals as ordinal codes
    (the trees' preprocessing), as a DataFrame so the scorecard knows which is which."""
    from modelkinds.parts.preprocess import native_trees

    return native_trees(numeric, categorical).set_output(transform="pandas")


def estimator(params: dict[str, Any], options: FitOptions) -> Any:
    return _scorecard_class()(**params)


def contributions(model: Any, xt: Any, exact: bool) -> Any:
    return points_lost(model, xt)


def compile_estimator(model: Any) -> CompiledEstimator:
    from scipy.special import expit

    return CompiledEstimator(
        raw=lambda x: decision(model, x),
        proba=lambda x: expit(decision(model, x)),
        contribs=lambda x: points_lost(model, x),
        reason_method=KIND.reason_method,
    )


def _bin_labels(c: dict[str, Any], categories: list[str] | None) -> list[str]:
    """A readable label per coarse bin of a characteristic."""
    labels = []
    for members in c["groups"]:
        if c["nominal"]:
            names = [
                categories[int(c["codes"][m])]
                if categories is not None and 0 <= int(c["codes"][m]) < len(categories)
                else f"code {c['codes'][m]:g}"
                for m in members
            ]
            labels.append(", ".join(sorted(names)))
            continue
        low = -math.inf if min(members) == 0 else float(c["cuts"][min(members) - 1])
        top = max(members)
        high = math.inf if top >= len(c["cuts"]) else float(c["cuts"][top])
        labels.append(f"[{low:.6g}, {high:.6g})")
    return labels


def _categories(context: ReportContext, name: str) -> list[str] | None:
    """The category of each ordinal code of a categorical column, from the fitted
    preprocessing (None when it cannot be read)."""
    pre = context.preprocess
    try:
        cat = pre.named_transformers_["cat"]
        encoder = cat.named_steps["ordinal"]
        columns = list(pre.transformers_[[t[0] for t in pre.transformers_].index("cat")][2])
        return [str(v) for v in encoder.categories_[columns.index(name)]]
    except (AttributeError, KeyError, ValueError, IndexError, TypeError):
        return None


def points_table(
    model: Any, context: ReportContext
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """(one row per card, characteristic and bin; the base points of each card) on the served
    scale."""
    scale = context.scale
    slope, intercept = context.calibration or (1.0, 0.0)
    factor = scale.factor
    rows: list[dict[str, Any]] = []
    bases: dict[str, float] = {}
    for card in model.segments_:
        bases[card["label"]] = scale.offset - factor * (intercept + slope * card["intercept"])
        for k, c in enumerate(card["characteristics"]):
            source = c["name"].split("__", 1)[-1]
            coef = float(card["coef"][k])
            labels = _bin_labels(c, _categories(context, source) if c["nominal"] else None)
            extra = ["missing"] if not c["nominal"] else ["unseen category"]
            for b, label in enumerate([*labels, *extra]):
                goods, bads = float(c["bins_goods"][b]), float(c["bins_bads"][b])
                woe = float(c["bins_woe"][b])
                rows.append(
                    {
                        "segment": card["label"],
                        "characteristic": source,
                        "bin": label,
                        "rows": int(goods + bads),
                        "default_rate": round(bads / (goods + bads), 6) if goods + bads else None,
                        "woe": round(woe, 6),
                        "points": round(-factor * slope * coef * woe, 2),
                    }
                )
    return rows, bases


def report(model: Any, context: ReportContext) -> KindReport:
    """The points table, the information values and the scaling, for the run and the card."""
    rows, bases = points_table(model, context)
    scale = context.scale
    header = ["segment", "characteristic", "bin", "rows", "default_rate", "woe", "points"]
    quoted = {"segment", "bin"}
    csv = [",".join(header)]
    csv += [",".join(json.dumps(r[h]) if h in quoted else str(r[h]) for h in header) for r in rows]
    ivs = sorted(model.information_value_.items(), key=lambda kv: -kv[1])
    used = {c["name"] for card in model.segments_ for c in card["characteristics"]}
    iv_csv = ["characteristic,information_value,in_model"] + [
        f"{n.split('__', 1)[-1]},{v:.6f},{int(n in used)}" for n, v in ivs
    ]
    scaling = {
        "base_score": scale.base_score,
        "base_odds": scale.base_odds,
        "pdo": scale.pdo,
        "min_score": scale.min_score,
        "max_score": scale.max_score,
        "base_points": {label: round(base, 4) for label, base in bases.items()},
        "calibration": list(context.calibration) if context.calibration else None,
        "segment_rule": model.segment_rule_
        and {
            "characteristic": model.segment_rule_["name"].split("__", 1)[-1],
            "at_least": model.segment_rule_["at_least"],
        },
    }
    segments = [
        f"  - {card['label']}: "
        + (f"{card['rows']:,} training rows, " if card["rows"] else "")
        + f"base points {bases[card['label']]:.1f}, "
        f"{len(card['characteristics'])} characteristics"
        for card in model.segments_
    ]
    card_md = [
        "## Scorecard",
        f"- Scale: {scale.describe()}. Score = the base points of the account's segment + the "
        "points of its bin in each characteristic of that segment's card, rounded and clipped "
        "(calibration included).",
        f"- {len(model.segments_)} card(s):",
        *segments,
        f"- Characteristics with information value >= {model.min_iv} enter a card; reasons: "
        "the points lost per characteristic.",
        "",
        "| characteristic | information value (all rows) | in a card |",
        "| --- | --- | --- |",
        *[
            f"| `{n.split('__', 1)[-1]}` | {v:.3f} | {'yes' if n in used else 'no'} |"
            for n, v in ivs
        ],
        "",
        "| segment | characteristic | bin | rows | default rate | WoE | points |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *[
            f"| {r['segment']} | `{r['characteristic']}` | {r['bin']} | {r['rows']} | "
            f"{'' if r['default_rate'] is None else format(r['default_rate'], '.3f')} | "
            f"{r['woe']:.3f} | {r['points']:.1f} |"
            for r in rows
        ],
        "",
    ]
    return KindReport(
        {
            "points_table.csv": "\n".join(csv) + "\n",
            "information_value.csv": "\n".join(iv_csv) + "\n",
            "scorecard.json": json.dumps({"scaling": scaling, "points": rows}, indent=1),
        },
        "\n".join(card_md),
    )


KIND = ModelKind(
    name="scorecard",
    label="WoE Scorecard",
    order=40,
    estimator_classes=("WoEScorecard",),
    default_params={"max_bins": 8, "min_bin_share": 0.05, "C": 1.0, "segmented": True},
    library_defaults={},
    search_space={
        "max_bins": [5, 6, 8, 10],
        "min_bin_share": [0.02, 0.03, 0.05],
        "C": [0.01, 0.1, 1.0],
        "segmented": [True, False],
    },
    preprocess=preprocess,
    estimator=estimator,
    compile=compile_estimator,
    contributions=contributions,
    reason_method="points lost per characteristic (its best bin's points minus this bin's, "
    "20 points to double the odds, before calibration)",
    report=report,
)
