"""Probability calibration for the weekly model: the error measure, a reliability curve, and calibrators.

Pure numpy, no Dagster, no LightGBM: the trained model carries a :class:`Calibrator` as JSON (``to_json``) next to
its booster, and serving applies it to the booster's raw probability (``apply``).

Why it is needed: the delay base rate moves with the season (about 0.16 to 0.30 from week to week in Oct-Dec 2013),
and a model trained on the weeks before the holdout week predicts their base rate. A calibrator must be a function of
data available before the holdout week, so every ``fit_*`` here takes the *validation* window's out-of-sample
predictions (the early-stopped model, trained on the training window only) and its labels; never the holdout week's.

Calibrators (``method``):

- ``identity``: no change (the baseline).
- ``intercept``: a shift of the logit so that the mean prediction on the validation window equals its observed base
  rate: the most recent base rate, with the model's ranking untouched (AUC unchanged). One parameter, stable on a week.
- ``platt``: logistic regression of the label on the logit (slope and intercept), fitted by Newton's method; also
  corrects over- or under-confidence. AUC unchanged (monotone).
- ``isotonic``: pool-adjacent-violators on the validation predictions, stored as breakpoints and interpolated; the most
  flexible, and it can tie scores (AUC may move slightly).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Probabilities are clipped before a logit: a 0 or 1 from a calibrator or a booster must not produce infinities.
EPSILON = 1e-6
METHODS: tuple[str, ...] = ("identity", "intercept", "platt", "isotonic")


def _arrays(y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(y, dtype=np.float64).ravel()
    probs = np.asarray(p, dtype=np.float64).ravel()
    if labels.shape != probs.shape:
        raise ValueError(f"labels and probabilities differ in length ({labels.size} vs {probs.size})")
    if labels.size == 0:
        raise ValueError("no predictions: calibration needs at least one labelled prediction")
    if np.any((probs < 0) | (probs > 1)) or np.any(np.isnan(probs)):
        raise ValueError("probabilities must lie in [0, 1] and not be NaN")
    if not np.all((labels == 0) | (labels == 1)):
        raise ValueError("labels must be 0 or 1")
    return labels, probs


def logit(p: np.ndarray) -> np.ndarray:
    clipped = np.clip(np.asarray(p, dtype=np.float64), EPSILON, 1 - EPSILON)
    return np.log(clipped / (1 - clipped))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


@dataclass(frozen=True)
class ReliabilityCurve:
    """Per equal-width bin of predicted probability: edges, row count, mean prediction, observed positive rate.

    Empty bins have count 0 and NaN means (they carry no weight in the ECE).
    """

    edges: np.ndarray
    counts: np.ndarray
    mean_predicted: np.ndarray
    observed_rate: np.ndarray

    def rows(self) -> list[dict[str, float]]:
        """One dict per non-empty bin, for tables and logs."""
        return [
            {
                "low": float(self.edges[i]),
                "high": float(self.edges[i + 1]),
                "count": int(self.counts[i]),
                "mean_predicted": float(self.mean_predicted[i]),
                "observed_rate": float(self.observed_rate[i]),
            }
            for i in range(self.counts.size)
            if self.counts[i] > 0
        ]


def reliability_curve(
    y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray, bins: int = 10
) -> ReliabilityCurve:
    """Bins ``[0, 1/bins), ..., [(bins-1)/bins, 1]`` (the last one closed so p = 1 is counted)."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    labels, probs = _arrays(y, p)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.minimum((probs * bins).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins).astype(np.float64)
    sum_p = np.bincount(index, weights=probs, minlength=bins)
    sum_y = np.bincount(index, weights=labels, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.where(counts > 0, sum_p / counts, np.nan)
        rate = np.where(counts > 0, sum_y / counts, np.nan)
    return ReliabilityCurve(edges=edges, counts=counts.astype(np.int64), mean_predicted=mean_p, observed_rate=rate)


def expected_calibration_error(
    y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray, bins: int = 10
) -> float:
    """ECE: the count-weighted mean over equal-width bins of |observed rate - mean prediction|."""
    curve = reliability_curve(y, p, bins)
    filled = curve.counts > 0
    weights = curve.counts[filled] / curve.counts.sum()
    return float(np.sum(weights * np.abs(curve.observed_rate[filled] - curve.mean_predicted[filled])))


@dataclass(frozen=True)
class Calibrator:
    """A fitted map from the model's probability to a calibrated one; ``params`` are plain JSON values."""

    method: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown calibration method {self.method!r}; expected one of {', '.join(METHODS)}")

    def apply(self, p: Sequence[float] | np.ndarray) -> np.ndarray:
        probs = np.asarray(p, dtype=np.float64)
        if self.method == "identity":
            return probs.copy()
        if self.method == "intercept":
            return sigmoid(logit(probs) + float(self.params["intercept"]))
        if self.method == "platt":
            return sigmoid(float(self.params["slope"]) * logit(probs) + float(self.params["intercept"]))
        # isotonic: a step function through the fitted breakpoints, linear between them, flat outside.
        x = np.asarray(self.params["x"], dtype=np.float64)
        values = np.asarray(self.params["y"], dtype=np.float64)
        return np.clip(np.interp(probs, x, values), 0.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "params": dict(self.params)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibrator:
        return cls(method=str(data["method"]), params=dict(data.get("params", {})))

    @classmethod
    def from_json(cls, text: str) -> Calibrator:
        return cls.from_dict(json.loads(text))


def identity() -> Calibrator:
    return Calibrator("identity", {})


def fit_intercept(y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray, max_iter: int = 100) -> Calibrator:
    """The logit shift ``b`` with ``mean(sigmoid(logit(p) + b)) == mean(y)`` (Newton's method; the mean is monotone
    in ``b``, so the root is unique)."""
    labels, probs = _arrays(y, p)
    target = float(np.clip(labels.mean(), EPSILON, 1 - EPSILON))
    z = logit(probs)
    b = 0.0
    for _ in range(max_iter):
        q = sigmoid(z + b)
        gap = float(q.mean()) - target
        slope = float(np.mean(q * (1 - q)))
        if abs(gap) < 1e-10 or slope <= 0:
            break
        b -= gap / slope
    return Calibrator("intercept", {"intercept": b, "target_rate": target, "rows": int(labels.size)})


def fit_platt(
    y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray, max_iter: int = 50, ridge: float = 1e-6
) -> Calibrator:
    """Logistic regression of ``y`` on ``logit(p)`` (slope, intercept) by Newton-Raphson with a tiny ridge (keeps the
    Hessian invertible when the logit is nearly constant)."""
    labels, probs = _arrays(y, p)
    design = np.column_stack([logit(probs), np.ones_like(probs)])
    coef = np.array([1.0, 0.0])
    for _ in range(max_iter):
        q = sigmoid(design @ coef)
        gradient = design.T @ (labels - q) - ridge * coef
        hessian = (design * (q * (1 - q))[:, None]).T @ design + ridge * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        coef = coef + step
        if float(np.max(np.abs(step))) < 1e-9:
            break
    return Calibrator("platt", {"slope": float(coef[0]), "intercept": float(coef[1]), "rows": int(labels.size)})


def _pool_adjacent_violators(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Non-decreasing least-squares fit of ``values`` (already in increasing order of the score)."""
    means: list[float] = []
    sizes: list[float] = []
    lengths: list[int] = []
    for value, weight in zip(values, weights, strict=True):
        means.append(float(value))
        sizes.append(float(weight))
        lengths.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            total = sizes[-2] + sizes[-1]
            means[-2] = (means[-2] * sizes[-2] + means[-1] * sizes[-1]) / total
            sizes[-2] = total
            lengths[-2] += lengths[-1]
            del means[-1], sizes[-1], lengths[-1]
    return np.repeat(np.asarray(means), lengths)


def fit_isotonic(y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray) -> Calibrator:
    """Isotonic regression of ``y`` on ``p``, stored as the breakpoints where the fitted step changes."""
    labels, probs = _arrays(y, p)
    unique, inverse = np.unique(probs, return_inverse=True)
    weights = np.bincount(inverse).astype(np.float64)
    means = np.bincount(inverse, weights=labels) / weights
    fitted = _pool_adjacent_violators(means, weights)
    # Keep the first and last point of each flat run: interpolation between them reproduces the step function.
    keep = np.ones(unique.size, dtype=bool)
    if unique.size > 2:
        same_prev = np.r_[False, fitted[1:] == fitted[:-1]]
        same_next = np.r_[fitted[:-1] == fitted[1:], False]
        keep = ~(same_prev & same_next)
    return Calibrator(
        "isotonic",
        {"x": [float(v) for v in unique[keep]], "y": [float(v) for v in fitted[keep]], "rows": int(labels.size)},
    )


def fit(method: str, y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray) -> Calibrator:
    """Fit ``method`` (one of :data:`METHODS`) on validation labels ``y`` and out-of-sample predictions ``p``."""
    if method == "identity":
        return identity()
    if method == "intercept":
        return fit_intercept(y, p)
    if method == "platt":
        return fit_platt(y, p)
    if method == "isotonic":
        return fit_isotonic(y, p)
    raise ValueError(f"unknown calibration method {method!r}; expected one of {', '.join(METHODS)}")
