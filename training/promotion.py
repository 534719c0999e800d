"""The promotion rule (pure): when does a challenger become the champion, and why."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PromotionPolicy:
    margin: float = 0.002  # ROC-AUC the challenger must gain over the champion, same test set
    min_ks: float = 0.20
    max_ece: float = 0.05


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def decide(
    challenger: dict[str, float],
    policy: PromotionPolicy,
    champion_version: str | None = None,
    champion_auc: float | None = None,
    champion_error: str | None = None,
) -> Decision:
    """Gates first (minimum KS, calibration error cap), then the margin over the champion's
    ROC-AUC measured on the challenger's own test set."""
    auc, ks, ece = challenger["roc_auc"], challenger["ks"], challenger["ece"]
    if ks < policy.min_ks:
        return Decision(False, f"rejected: KS {ks:.4f} is below the minimum {policy.min_ks:.4f}")
    if ece > policy.max_ece:
        return Decision(
            False,
            f"rejected: calibration error (ECE) {ece:.4f} exceeds the cap {policy.max_ece:.4f}",
        )
    gates = f"KS {ks:.4f} >= {policy.min_ks:.4f}, ECE {ece:.4f} <= {policy.max_ece:.4f}"
    if champion_version is None:
        return Decision(True, f"promoted: no champion yet; passes the gates ({gates})")
    if champion_auc is None:
        return Decision(
            True,
            f"promoted: champion v{champion_version} cannot score this test set "
            f"({champion_error or 'unknown error'}); challenger passes the gates ({gates})",
        )
    gain = auc - champion_auc
    if gain >= policy.margin:
        return Decision(
            True,
            f"promoted: ROC-AUC {auc:.4f} beats champion v{champion_version}'s {champion_auc:.4f} "
            f"on the same test set by {gain:+.4f} (margin {policy.margin:.4f}); {gates}",
        )
    return Decision(
        False,
        f"kept champion v{champion_version}: challenger ROC-AUC {auc:.4f} vs champion "
        f"{champion_auc:.4f} on the same test set, gain {gain:+.4f} < margin {policy.margin:.4f}",
    )
