"""Fairness report (pure): outcomes by group for each protected attribute present.

Protected attributes are never model inputs (``training.lawful``), but they stay in the feature
table so that the model's effect on each group can be measured on the test rows:

- **approval rate**: share of the group whose probability of default is below the decision
  threshold (approved);
- **adverse impact ratio (AIR)**: the group's approval rate over the highest group's approval rate;
  below 0.8 (the "four-fifths rule") is flagged for review;
- **calibration by group**: mean predicted probability of default beside the observed default
  rate (and their difference); a model calibrated overall can still under- or over-state the risk
  of one group.

Numeric attributes (age) are reported in bands; groups smaller than ``min_group`` rows are
reported but neither flagged nor used as the reference.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

AIR_FLAG = 0.8
AGE_BANDS = (0, 25, 35, 45, 55, 65, 200)


def _groups(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        bands = pd.cut(values, bins=list(AGE_BANDS), right=False)
        labels = bands.astype(str).str.replace(", 200)", "+)", regex=False)
        return labels.where(values.notna(), "missing")
    return values.astype("string").fillna("missing").astype(str)


def fairness_report(
    frame: pd.DataFrame,
    p: np.ndarray,
    threshold: float,
    attributes: Iterable[str],
    min_group: int = 30,
) -> dict[str, Any]:
    """The report for ``frame`` (rows with ``label``) scored ``p``, at the decision threshold."""
    p = np.asarray(p, dtype=float)
    approved = p < threshold
    out: dict[str, Any] = {
        "threshold": float(threshold),
        "air_flag_below": AIR_FLAG,
        "min_group_rows": min_group,
        "rows": len(frame),
        "attributes": {},
        "flags": [],
    }
    for attribute in attributes:
        if attribute not in frame.columns:
            continue
        groups = _groups(frame[attribute]).to_numpy()
        rows = []
        for group in sorted(set(groups.tolist())):
            mask = groups == group
            n = int(mask.sum())
            labels = frame["label"].to_numpy()[mask]
            rows.append(
                {
                    "group": str(group),
                    "rows": n,
                    "approval_rate": float(approved[mask].mean()),
                    "mean_pd": float(p[mask].mean()),
                    "default_rate": float(labels.mean()),
                    "calibration_gap": float(p[mask].mean() - labels.mean()),
                }
            )
        big = [r for r in rows if r["rows"] >= min_group]
        reference = max((r["approval_rate"] for r in big), default=0.0)
        for r in rows:
            r["adverse_impact_ratio"] = (
                float(r["approval_rate"] / reference) if reference > 0 else None
            )
            r["flagged"] = bool(
                r["rows"] >= min_group
                and r["adverse_impact_ratio"] is not None
                and r["adverse_impact_ratio"] < AIR_FLAG
            )
            if r["flagged"]:
                out["flags"].append(
                    f"{attribute}={r['group']}: adverse impact ratio "
                    f"{r['adverse_impact_ratio']:.3f} < {AIR_FLAG}"
                )
        out["attributes"][attribute] = rows
    return out


def min_air(report: dict[str, Any]) -> float | None:
    """The lowest adverse impact ratio over all (large enough) groups, None when there is none."""
    values = [
        r["adverse_impact_ratio"]
        for rows in report["attributes"].values()
        for r in rows
        if r["adverse_impact_ratio"] is not None and r["rows"] >= report["min_group_rows"]
    ]
    return min(values) if values else None


def to_markdown(report: dict[str, Any]) -> str:
    lines: list[str] = []
    if not report["attributes"]:
        return "No protected attribute is present in the test rows: no fairness report.\n"
    for attribute, rows in report["attributes"].items():
        lines += [
            f"**{attribute}**",
            "",
            "| group | rows | approval rate | AIR | mean PD | default rate | flagged |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for r in rows:
            air = "" if r["adverse_impact_ratio"] is None else f"{r['adverse_impact_ratio']:.3f}"
            lines.append(
                f"| {r['group']} | {r['rows']} | {r['approval_rate']:.3f} | {air} | "
                f"{r['mean_pd']:.3f} | {r['default_rate']:.3f} | "
                f"{'yes' if r['flagged'] else ''} |"
            )
        lines.append("")
    flags = report["flags"]
    lines.append("Flags: " + ("; ".join(flags) if flags else "none") + ".")
    return "\n".join(lines) + "\n"
