"""The score scale: probability of default -> points (pure; loads nothing on import).

"Points to double the odds", the usual scorecard convention::

    odds   = (1 - pd) / pd                       # good:bad odds
    factor = pdo / ln(2)                         # points per doubling of the odds
    offset = base_score - factor * ln(base_odds)
    score  = round(offset + factor * ln(odds)), clipped to [min_score, max_score]

Serving scores with it (:func:`serving.scoring.pd_to_score`); a model kind that publishes a
points table (the WoE scorecard) scales its points with the same one, so the points of an
account's bins add up to the score it is served.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ScoreScale:
    """Points-to-double-odds scaling; see the module docstring."""

    base_score: float = 600.0
    base_odds: float = 50.0
    pdo: float = 20.0
    min_score: int = 300
    max_score: int = 850

    def __post_init__(self) -> None:
        if self.pdo <= 0:
            raise ValueError(f"pdo={self.pdo} must be positive")
        if self.base_odds <= 0:
            raise ValueError(f"base_odds={self.base_odds} must be positive")
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

    def describe(self) -> str:
        """One line for a model card or a label."""
        return (
            f"{self.base_score:g} points at {self.base_odds:g}:1 good:bad odds, {self.pdo:g} "
            f"points to double the odds, clipped to {self.min_score}-{self.max_score}"
        )
