"""The operating point: a threshold sweep, a configurable rule that picks one threshold, its confusion matrix.

Rules (``ThresholdRule.kind``):

- ``max_f1``: the threshold with the highest F1 on the holdout;
- ``cost``: the threshold with the lowest expected cost ``FP + cost_ratio * FN`` (``cost_ratio`` = the cost of a
  missed delay relative to a false alarm);
- ``fixed``: ``threshold`` as given.

Pure numpy: one sort, then cumulative counts give every threshold's confusion matrix at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RULES: tuple[str, ...] = ("max_f1", "cost", "fixed")


@dataclass(frozen=True)
class ThresholdRule:
    kind: str = "max_f1"
    cost_ratio: float = 3.0
    threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in RULES:
            raise ValueError(f"unknown threshold rule {self.kind!r}; expected one of {', '.join(RULES)}")
        if self.cost_ratio <= 0:
            raise ValueError(f"cost_ratio must be positive, got {self.cost_ratio}")

    def describe(self) -> str:
        if self.kind == "cost":
            return f"min cost FP + {self.cost_ratio:g}*FN"
        if self.kind == "fixed":
            return f"fixed {self.threshold:g}"
        return "max F1"


@dataclass(frozen=True)
class ThresholdSweep:
    """Per threshold (predict delayed when ``p >= threshold``): counts and rates."""

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    tn: np.ndarray

    @property
    def precision(self) -> np.ndarray:
        return self.tp / np.maximum(self.tp + self.fp, 1)

    @property
    def recall(self) -> np.ndarray:
        return self.tp / np.maximum(self.tp + self.fn, 1)

    @property
    def f1(self) -> np.ndarray:
        return 2 * self.tp / np.maximum(2 * self.tp + self.fp + self.fn, 1)

    @property
    def false_positive_rate(self) -> np.ndarray:
        return self.fp / np.maximum(self.fp + self.tn, 1)

    def cost(self, cost_ratio: float) -> np.ndarray:
        return self.fp + cost_ratio * self.fn

    def rows(self) -> list[dict[str, float]]:
        return [
            {
                "threshold": float(self.thresholds[i]),
                "precision": float(self.precision[i]),
                "recall": float(self.recall[i]),
                "f1": float(self.f1[i]),
                "false_positive_rate": float(self.false_positive_rate[i]),
                "flagged": int(self.tp[i] + self.fp[i]),
            }
            for i in range(self.thresholds.size)
        ]


def threshold_sweep(
    y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray, thresholds: np.ndarray | None = None
) -> ThresholdSweep:
    labels = np.asarray(y, dtype=np.float64).ravel()
    probs = np.asarray(p, dtype=np.float64).ravel()
    grid = np.round(np.arange(0.01, 1.0, 0.01), 2) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    order = np.argsort(probs, kind="stable")
    sorted_p, sorted_y = probs[order], labels[order]
    # Rows below each threshold are predicted negative.
    below = np.searchsorted(sorted_p, grid, side="left")
    positives_below = np.r_[0.0, np.cumsum(sorted_y)][below]
    total_pos = float(labels.sum())
    total_neg = float(labels.size - total_pos)
    fn = positives_below
    tn = below - positives_below
    return ThresholdSweep(thresholds=grid, tp=total_pos - fn, fp=total_neg - tn, fn=fn, tn=tn)


@dataclass(frozen=True)
class OperatingPoint:
    rule: str
    threshold: float
    tp: int
    fp: int
    fn: int
    tn: int

    def as_dict(self) -> dict[str, float | int | str]:
        flagged = self.tp + self.fp
        return {
            "rule": self.rule,
            "threshold": self.threshold,
            "confusion_matrix": {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn},
            "precision": self.tp / flagged if flagged else 0.0,
            "recall": self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0,
            "f1": 2 * self.tp / (2 * self.tp + self.fp + self.fn) if self.tp + self.fp + self.fn else 0.0,
            "flagged_share": flagged / (self.tp + self.fp + self.fn + self.tn),
        }


def choose_threshold(sweep: ThresholdSweep, rule: ThresholdRule) -> float:
    if rule.kind == "fixed":
        return float(rule.threshold)
    if rule.kind == "cost":
        return float(sweep.thresholds[int(np.argmin(sweep.cost(rule.cost_ratio)))])
    return float(sweep.thresholds[int(np.argmax(sweep.f1))])


def operating_point(
    y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray, rule: ThresholdRule
) -> tuple[OperatingPoint, ThresholdSweep]:
    """The threshold chosen by ``rule`` on the sweep, with its exact confusion matrix."""
    sweep = threshold_sweep(y, p)
    threshold = choose_threshold(sweep, rule)
    at = threshold_sweep(y, p, np.array([threshold]))
    point = OperatingPoint(
        rule=rule.describe(),
        threshold=threshold,
        tp=int(at.tp[0]),
        fp=int(at.fp[0]),
        fn=int(at.fn[0]),
        tn=int(at.tn[0]),
    )
    return point, sweep
