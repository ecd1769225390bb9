"""The signal-ranking model in pure Python: logistic regression over standardised setup
features, as `python -m backtest rank-train` writes it to `model.json`.

No scikit-learn in the Lambda: the model is a handful of numbers, and
P(winner) = 1 / (1 + exp(−(b + Σ wᵢ · (xᵢ − meanᵢ) / scaleᵢ))) is what sklearn's
`StandardScaler` + `LogisticRegression.predict_proba` compute (a test holds the two equal).
Inputs are `SetupFeatures.vector()` in `FEATURE_NAMES` order (rules/score.py), so the
backtest, the deterministic score and the model read a setup the same way.

model.json::

    {"kind": "logistic_regression", "features": [...FEATURE_NAMES],
     "mean": [...], "scale": [...], "coef": [...], "intercept": b, "trained_on": {...}}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.rules.score import FEATURE_NAMES, SetupFeatures

KIND = "logistic_regression"


class RankModelError(ValueError):
    """model.json does not describe a model this code can evaluate."""


def _numbers(data: Mapping[str, Any], key: str, n: int) -> tuple[float, ...]:
    values = data.get(key)
    if not isinstance(values, list) or len(values) != n:
        raise RankModelError(f"model.json: {key} must be a list of {n} numbers")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise RankModelError(f"model.json: {key} holds {v!r}, not a finite number")
        out.append(float(v))
    return tuple(out)


@dataclass(frozen=True)
class RankModel:
    """P(the trade is a winner) from a setup's features."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    trained_on: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RankModel:
        if data.get("kind") != KIND:
            raise RankModelError(f"model.json: kind must be {KIND!r}")
        names = tuple(data.get("features") or ())
        if names != FEATURE_NAMES:
            raise RankModelError(
                f"model.json: features {list(names)} are not this code's {list(FEATURE_NAMES)}"
            )
        n = len(names)
        scale = _numbers(data, "scale", n)
        if any(s <= 0 for s in scale):
            raise RankModelError("model.json: every scale must be positive")
        intercept = data.get("intercept")
        if isinstance(intercept, bool) or not isinstance(intercept, int | float):
            raise RankModelError("model.json: intercept must be a number")
        return cls(
            features=names,
            mean=_numbers(data, "mean", n),
            scale=scale,
            coef=_numbers(data, "coef", n),
            intercept=float(intercept),
            trained_on=dict(data.get("trained_on") or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "features": list(self.features),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "coef": list(self.coef),
            "intercept": self.intercept,
            "trained_on": self.trained_on,
        }

    def probability_of(self, values: Sequence[float]) -> float:
        """P(winner) for a feature vector in `features` order."""
        if len(values) != len(self.coef):
            raise ValueError(f"expected {len(self.coef)} features, got {len(values)}")
        z = self.intercept + sum(
            w * (x - m) / s
            for w, x, m, s in zip(self.coef, values, self.mean, self.scale, strict=True)
        )
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)

    def probability(self, features: SetupFeatures) -> float:
        return self.probability_of(features.vector())
