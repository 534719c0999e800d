"""The score scale: probability of default -> points (pure; loads nothing on import).

"Points to double the odds", the usual scorecard convention::

    odds   = (1 - pd) / pd                       # good:bad odds
    factor = pdo / ln(2)                         # points per doubling of the odds
    offset = base_score - factor * ln(base_odds)
    score  = round(offset + factor * ln(odds)), clipped to [min_score, max_score]

Serving scores with it (:func:`serving.scoring.pd_to_score`); a model kind that publishes a
points table (the WoE scorecard) scales its points with the same one, so the points of an
account's bins add up to the score it is served.

The defaults (750 points at 50:1 good:bad odds, 40 points to double the odds, 300-850) were
chosen on the default portfolio (``riskstream run``: 2,000 synthetic accounts, 12 months, seed
7; its champion's probabilities of default ran from 0.15% to 99.7%): its scores spread over the
whole range, 1st percentile 304, quartiles 661 / 722 / 764, 99th percentile 849, with 0.8% of the
accounts clipped at 300 and 1.0% at 850. The previous 600 at 50:1 with 20 to double put the same
accounts between 314 and 675 (quartiles 555 / 586 / 607), leaving the top of the scale empty.
A portfolio of another risk level sets ``RISKSTREAM_SCORE_BASE``, ``_ODDS``, ``_PDO``, ``_MIN``,
``_MAX`` (:class:`riskstream.settings.Settings`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from riskstream.checks import require_positive


@dataclass(frozen=True)
class ScoreScale:
    """Points-to-double-odds scaling; see the module docstring."""

    base_score: float = 750.0
    base_odds: float = 50.0
    pdo: float = 40.0
    min_score: int = 300
    max_score: int = 850

    def __post_init__(self) -> None:
        require_positive(pdo=self.pdo, base_odds=self.base_odds)
        if self.min_score >= self.max_score:
            raise ValueError(f"min_score={self.min_score} must be below max_score={self.max_score}")

    @property
    def factor(self) -> float:
        """Points per doubling of the good:bad odds."""
        return self.pdo / math.log(2.0)

    @property
    def offset(self) -> float:
        """The (unclipped) score at even odds."""
        return self.base_score - self.factor * math.log(self.base_odds)

    def score_at(self, odds: float) -> float:
        """The (unrounded, unclipped) score of good:bad ``odds``."""
        return self.offset + self.factor * math.log(odds)

    def tier_cuts(self) -> tuple[float, ...]:
        """The minimum score of each risk tier but the last, best first: the scores of
        :data:`TIER_ODDS` on this scale, so a tier means the same odds whatever the scale."""
        return tuple(float(round(self.score_at(odds))) for odds in TIER_ODDS)

    def describe(self) -> str:
        """One line for a model card or a label."""
        return (
            f"{self.base_score:g} points at {self.base_odds:g}:1 good:bad odds, {self.pdo:g} "
            f"points to double the odds, clipped to {self.min_score}-{self.max_score}"
        )


DEFAULT_SCALE = ScoreScale()
"""The documented defaults (``RISKSTREAM_SCORE_*`` override them: riskstream.settings)."""

TIER_ODDS: tuple[float, ...] = (25.0, 50.0 * 2.0**-2.5, 3.125)
"""Good:bad odds at the bottom of each risk tier but the last (Prime from 25:1, about 3.8% PD;
Near-prime from 8.8:1, about 10%; Subprime from 3.1:1, about 24%; High risk below)."""
