"""The model card of a registered version (pure: run records in, Markdown out)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import modelkinds
from riskstream import names
from training.fairness import to_markdown
from training.promotion import Decision


def _f(metrics: Mapping[str, float], key: str, fmt: str = "{:.4f}") -> str:
    return fmt.format(metrics[key]) if key in metrics else "n/a"


def _reason_method(kind: str) -> str:
    try:
        return modelkinds.get(kind).reason_method
    except modelkinds.UnknownModelKind:
        return "the method of an unknown model kind"


def model_card(
    *,
    name: str,
    version: str,
    kind: str,
    config: Mapping[str, str],
    parent: Any,
    best: Any,
    split: Mapping[str, object],
    features: Mapping[str, Any],
    fairness: Mapping[str, Any],
    decision: Decision,
    test_rows: int,
    kind_section: str = "",
    serving: str = "not measured",
    by_date: Mapping[str, Any] | None = None,
) -> str:
    """The card's Markdown; ``kind_section`` is what the model's kind published about its fit
    (e.g. the scorecard's points table, :attr:`modelkinds.ModelKind.report`), after the
    metrics."""
    m = best.data.metrics
    tags = parent.data.tags
    p = best.data.params
    lines = [
        f"# Model card: {name} v{version} ({kind})",
        "",
        "## Purpose",
        "Probability that a credit-card account defaults in the performance window after its "
        "observation date; used to score, tier and decide (approve/review) accounts.",
        "",
        "## Data and windows",
        f"- Feature table: `{tags.get(names.TAG_FEATURES_URI, '')}` (digest "
        f"`{tags.get(names.TAG_FEATURES_DIGEST, '')}`, {tags.get('features_files', '?')} files)",
        f"- Split: {split.get('strategy')}; train rows {split.get('train_rows')}, default rate "
        f"{split.get('train_default_rate')}; test rows {split.get('test_rows')}, default rate "
        f"{split.get('test_default_rate')}",
        f"- Observation dates: train {split.get('train_obs_dates', split.get('obs_dates'))}, "
        f"test {split.get('test_obs_dates', split.get('obs_dates'))}",
        f"- Windows: lookback {_months(config.get('lookback_months'))} before each "
        f"observation date, performance window {_months(config.get('performance_months'))} "
        "after it.",
        "- Features use only events before each observation date (the lookback window of the "
        "features job); the label is the worst default flag in the performance window that "
        "starts at the observation date (docs/etl.md).",
        "",
        "## Training protocol",
        f"- Search: {p.get('search_max_trials', config.get('max_trials'))} trials at most, seed "
        f"{config.get('seed')}, on an inner validation split of the training rows; stopped by "
        f"{p.get('search_stopped_by', '?')} (time guard {config.get('budget_seconds')} s)",
        f"- Calibration and threshold: {p.get('calibration', '')}; threshold "
        f"{_f(m, 'threshold', '{:.4f}')} minimises expected cost (missed defaulter "
        f"{config.get('cost_fn')}, rejected good {config.get('cost_fp')})",
        f"- Refitted on all {p.get('refit_rows', '?')} training rows; the test rows were used "
        "once, to report and to compare with the champion.",
        "- Model selection, calibration and the threshold use the training rows only (under the "
        "out-of-time split, the earlier observation dates); an account's rows are never on both "
        "sides of a split or of a cross-validation fold.",
        "",
        "## Inputs",
        f"- {len(features.get('features', []))} model inputs: "
        + ", ".join(f"`{c}`" for c in features.get("features", [])),
        "- Protected attributes present, never inputs (kept for monitoring): "
        + (", ".join(f"`{c}`" for c in features.get("protected_present_not_inputs", [])) or "none"),
        "- Identifiers, never inputs: "
        + (", ".join(f"`{c}`" for c in features.get("identifiers_not_inputs", [])) or "none"),
        "- Dropped as empty or constant in every labelled row: "
        + (
            ", ".join(f"`{c}`" for c in features.get("dropped_all_empty_or_constant", [])) or "none"
        ),
        f"- Protected list in force: {', '.join(features.get('policy', {}).get('protected', []))} "
        f"(age allowed: {features.get('policy', {}).get('allow_age')})",
        "",
        f"## Metrics on the {test_rows} test rows ({_test_kind(split)})",
        f"- ROC-AUC {_f(m, 'roc_auc')} (95% DeLong interval {_f(m, 'roc_auc_ci_low')}-"
        f"{_f(m, 'roc_auc_ci_high')}); out-of-fold training ROC-AUC {_f(m, 'cv_roc_auc')}",
        f"- KS {_f(m, 'ks')}, Gini {_f(m, 'gini')}, PR-AUC {_f(m, 'pr_auc')}, Brier "
        f"{_f(m, 'brier')}, ECE {_f(m, 'ece')}, expected cost per account "
        f"{_f(m, 'expected_cost')}",
        *_in_time_lines(m),
        *_by_date_lines(by_date or {}),
        "",
        *([kind_section.rstrip(), ""] if kind_section.strip() else []),
        "## Fairness (test rows, at the decision threshold)",
        to_markdown(dict(fairness)),
        "## Serving",
        f"- Single-row latency: {serving}; budget {config.get('serving_budget_ms', 'none')} ms",
        f"- Reasons: {_reason_method(kind)}",
        "",
        "## Decision",
        f"- Outcome: **{decision.outcome}** (promote: {decision.promote})",
        f"- {decision.reason}",
        "",
        "## Limitations",
        "- Trained on one portfolio and period; re-validate before use on another population.",
        "- Test-set AUC has the sampling error shown by its interval; differences inside it are "
        "not evidence.",
        "- Fairness figures are observational (approval rates and calibration by group); an "
        "adverse impact ratio below 0.8 calls for review, not an automatic conclusion. Groups "
        f"under {fairness.get('min_group_rows', 30)} rows are not flagged.",
        "- Reasons given to applicants are the inputs above with the largest risk-increasing "
        f"contributions, computed by {_reason_method(kind)}; no protected attribute can be one.",
        "",
    ]
    return "\n".join(lines)


def _test_kind(split: Mapping[str, object]) -> str:
    if split.get("strategy") == names.SPLIT_OUT_OF_TIME:
        return f"out of time: observation dates {split.get('test_obs_dates')}, held-out accounts"
    return "a stratified random share of the accounts, same observation dates as training"


def _in_time_lines(m: Mapping[str, float]) -> list[str]:
    """In-time figures: the held-out accounts at the training dates (out-of-time splits only)."""
    if "in_time_roc_auc" not in m:
        return []
    return [
        f"- In time (the held-out accounts at the training dates, "
        f"{_f(m, 'in_time_rows', '{:.0f}')} rows): ROC-AUC {_f(m, 'in_time_roc_auc')}, KS "
        f"{_f(m, 'in_time_ks')}, Brier {_f(m, 'in_time_brier')}, ECE {_f(m, 'in_time_ece')}; "
        f"out of time minus in time: ROC-AUC "
        f"{m['roc_auc'] - m['in_time_roc_auc']:+.4f}"
        if "roc_auc" in m
        else ""
    ]


def _by_date_lines(by_date: Mapping[str, Any]) -> list[str]:
    """The ROC-AUC by observation date, in time then out of time: how the model ages."""
    rows = [(part, r) for part in ("in_time", "test") for r in by_date.get(part, [])]
    if not rows:
        return []
    out = [
        "",
        "### ROC-AUC by observation date",
        "",
        "| observation date | part | rows | default rate | ROC-AUC |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for part, r in rows:
        auc = "n/a" if r.get("roc_auc") is None else f"{r['roc_auc']:.4f}"
        label = "in time" if part == "in_time" else "test"
        out.append(
            f"| {r.get(names.OBS_DATE)} | {label} | {r.get('rows')} | "
            f"{r.get('default_rate', 0):.4f} | {auc} |"
        )
    return out


def _months(raw: object) -> str:
    """``12`` -> "12 months"; 0, empty or absent -> "not recorded" (features built outside the
    pipeline)."""
    try:
        value = int(str(raw))
    except ValueError:
        return "not recorded"
    return f"{value} months" if value > 0 else "not recorded"
