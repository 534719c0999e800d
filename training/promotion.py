"""The promotion rule (pure): when does a challenger become the champion, and why.

1. Gates: the challenger's KS on the test rows is at least ``min_ks`` and its calibration error
   (ECE) at most ``max_ece``. A challenger that fails a gate is never promoted.
   Serving cost: a challenger whose compiled scorer's single-row p99 (probability and exact
   reasons, one thread; :mod:`training.serving_cost`) exceeds ``serving_budget_ms`` is not
   promoted (``rejected_latency``) unless the run has the explicit override, which is then
   named in the reason.
2. No champion yet: promote.
3. The champion cannot be evaluated on the challenger's test rows (missing features, a broken
   artifact): **blocked**, with the reason, unless the run was started with the explicit override
   (``promote_override``), which is then recorded in the decision and the version's tags.
4. Otherwise challenger and champion are scored on the same test rows and compared with DeLong's
   paired test (1988). Promote only if the challenger's AUC is higher **and** the one-sided p-value
   is below ``alpha`` (default 0.05). Tie-break: anything else, including equal AUCs and a better
   but not significantly better challenger, keeps the incumbent champion (a change of model has a
   cost, so the burden of proof is on the challenger).
"""

from __future__ import annotations

from dataclasses import dataclass

from riskstream import names
from training.delong import PairedAuc


@dataclass(frozen=True)
class PromotionPolicy:
    alpha: float = 0.05  # one-sided significance level of DeLong's paired test
    min_ks: float = 0.20
    max_ece: float = 0.05
    override: bool = False  # promote even when the champion cannot be evaluated / over budget
    serving_budget_ms: float = 0.0  # the compiled scorer's single-row p99 cap; 0: none


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    # promoted | kept_champion | rejected_gate | rejected_latency | blocked_unevaluable | overridden
    outcome: str
    test: PairedAuc | None = None

    def tags(self) -> dict[str, str]:
        """The decision as model-version tags."""
        out = {
            names.TAG_DECISION: self.outcome,
            "promote": str(self.promote).lower(),
            names.TAG_DECISION_REASON: self.reason[:4900],
            "promotion_test": "delong_1988_paired" if self.test else "none",
        }
        if self.test is not None:
            out.update(
                {
                    "delong_z": f"{self.test.z:.6f}",
                    "delong_p_one_sided": f"{self.test.p_one_sided:.6g}",
                    "delong_p_two_sided": f"{self.test.p_two_sided:.6g}",
                    "auc_diff_vs_champion": f"{self.test.diff:+.6f}",
                    "auc_diff_se": f"{self.test.se:.6f}",
                }
            )
        return out


def decide(
    challenger: dict[str, float],
    policy: PromotionPolicy,
    champion_version: str | None = None,
    test: PairedAuc | None = None,
    champion_error: str | None = None,
    serving_p99_ms: float | None = None,
) -> Decision:
    """Apply the rule above. ``test`` is DeLong's test of challenger (a) vs champion (b);
    ``serving_p99_ms`` the challenger's measured single-row p99 (None: not measured)."""
    ks, ece = challenger["ks"], challenger["ece"]
    if ks < policy.min_ks:
        why = f"rejected: KS {ks:.4f} is below the minimum {policy.min_ks:.4f}"
        return Decision(False, why, "rejected_gate")
    if ece > policy.max_ece:
        return Decision(
            False,
            f"rejected: calibration error (ECE) {ece:.4f} exceeds the cap {policy.max_ece:.4f}",
            "rejected_gate",
        )
    gates = f"KS {ks:.4f} >= {policy.min_ks:.4f}, ECE {ece:.4f} <= {policy.max_ece:.4f}"
    budget = policy.serving_budget_ms
    if serving_p99_ms is not None and budget > 0:
        cost = (
            f"serving p99 {serving_p99_ms:.3f} ms per row (compiled scorer, probability and "
            f"reasons, one thread) against the budget {budget:g} ms"
        )
        if serving_p99_ms > budget and not policy.override:
            return Decision(
                False,
                f"rejected: {cost}: too slow to serve. Bound the kind's search space (e.g. the "
                "forest's depth and size), raise RISKSTREAM_SERVING_BUDGET_MS, or rerun with "
                "the override (DAG param promote_override=true, `riskstream train "
                "--promote-override`), which is recorded on the version",
                "rejected_latency",
            )
        gates += f", {cost}" + (
            ", over it: waived by promote_override" if serving_p99_ms > budget else ""
        )
    if champion_version is None:
        return Decision(True, f"promoted: no champion yet; passes the gates ({gates})", "promoted")
    if test is None:
        why = champion_error or "unknown error"
        if policy.override:
            return Decision(
                True,
                f"promoted by override: champion v{champion_version} cannot be evaluated on the "
                f"test rows ({why}); promote_override was set; {gates}",
                "overridden",
            )
        return Decision(
            False,
            f"blocked: champion v{champion_version} cannot be evaluated on the challenger's test "
            f"rows ({why}), so the challenger cannot be shown better. Fix the champion or its "
            "features, or rerun with the override (DAG param promote_override=true, "
            "`riskstream train --promote-override`), which is recorded on the version",
            "blocked_unevaluable",
        )
    stats = (
        f"ROC-AUC {test.auc_a:.4f} vs champion v{champion_version}'s {test.auc_b:.4f} on the "
        f"same {test.n_pos + test.n_neg} test rows, difference {test.diff:+.4f} "
        f"(DeLong z {test.z:.3f}, one-sided p {test.p_one_sided:.4g}, alpha {policy.alpha:g})"
    )
    if test.diff > 0 and test.p_one_sided < policy.alpha:
        return Decision(True, f"promoted: significantly better: {stats}; {gates}", "promoted", test)
    if test.diff > 0:
        return Decision(
            False,
            f"kept champion v{champion_version}: better but not significantly: {stats}",
            "kept_champion",
            test,
        )
    return Decision(
        False, f"kept champion v{champion_version}: not better: {stats}", "kept_champion", test
    )
