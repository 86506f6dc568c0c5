"""Holdout metrics with bootstrap confidence intervals, vectorised: ROC-AUC, PR-AUC, log loss, Brier.

Pure numpy, no Dagster, no sklearn. A bootstrap resample is a vector of row *counts* (how often each row was drawn),
so every metric is computed as a weighted metric over the original rows. The scores are sorted and grouped by tied
value once; per resample, AUC is the Mann-Whitney statistic from the group sums of positive and negative weight
(ties count one half, like sklearn's ``roc_auc_score``) and PR-AUC the step-wise average precision over the same
groups (sklearn's ``average_precision_score``). A block of resamples is one ``(B, n)`` matrix, so 1,000 resamples of
a week of flights cost a few matrix operations instead of 1,000 sklearn calls.

Paired comparison: the candidate and the champion are scored with the *same* count matrix, so the delta's interval
reflects only how the two models differ on the same rows, not the sampling noise they share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

METRICS: tuple[str, ...] = ("roc_auc", "pr_auc", "log_loss", "brier")
# Higher is better for these; lower for the others (the gate and the report read the direction from here).
HIGHER_IS_BETTER: dict[str, bool] = {"roc_auc": True, "pr_auc": True, "log_loss": False, "brier": False}
_EPS = 1e-15
# Resamples per block: bounds the (B, n) matrices to a few tens of MB on a week of flights.
_BLOCK = 200


def _labels_scores(y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(y, dtype=np.float64).ravel()
    probs = np.asarray(p, dtype=np.float64).ravel()
    if labels.shape != probs.shape:
        raise ValueError(f"labels and scores differ in length ({labels.size} vs {probs.size})")
    if labels.size == 0:
        raise ValueError("no rows to score")
    if not np.all((labels == 0) | (labels == 1)):
        raise ValueError("labels must be 0 or 1")
    if np.any(np.isnan(probs)):
        raise ValueError("scores contain NaN")
    return labels, probs


class WeightedScorer:
    """One model's scores on fixed rows; :meth:`score` evaluates every metric under a matrix of row weights."""

    def __init__(self, y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray) -> None:
        self.y, self.p = _labels_scores(y, p)
        order = np.argsort(self.p, kind="stable")
        self._order = order
        sorted_p = self.p[order]
        # Start index of each run of tied scores in ascending order.
        self._starts = np.flatnonzero(np.r_[True, sorted_p[1:] != sorted_p[:-1]])
        self._y_sorted = self.y[order]
        clipped = np.clip(self.p, _EPS, 1 - _EPS)
        self._row_log_loss = -(self.y * np.log(clipped) + (1 - self.y) * np.log(1 - clipped))
        self._row_brier = (self.p - self.y) ** 2

    @property
    def rows(self) -> int:
        return int(self.y.size)

    def score(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """Every metric for each row of ``weights`` (shape ``(B, n)``, non-negative; counts for a bootstrap)."""
        w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
        w_sorted = w[:, self._order]
        pos = np.add.reduceat(w_sorted * self._y_sorted, self._starts, axis=1)
        neg = np.add.reduceat(w_sorted * (1 - self._y_sorted), self._starts, axis=1)
        total_pos, total_neg = pos.sum(axis=1), neg.sum(axis=1)
        neg_below = np.cumsum(neg, axis=1) - neg
        with np.errstate(invalid="ignore", divide="ignore"):
            auc = np.sum(pos * (neg_below + 0.5 * neg), axis=1) / (total_pos * total_neg)
            # Average precision: thresholds from the highest score down, one step per tied group.
            tp = np.cumsum(pos[:, ::-1], axis=1)
            fp = np.cumsum(neg[:, ::-1], axis=1)
            precision = tp / np.maximum(tp + fp, _EPS)
            pr_auc = np.sum(pos[:, ::-1] * precision, axis=1) / total_pos
            total = w.sum(axis=1)
            log_loss = (w @ self._row_log_loss) / total
            brier = (w @ self._row_brier) / total
        return {"roc_auc": auc, "pr_auc": pr_auc, "log_loss": log_loss, "brier": brier}

    def point(self) -> dict[str, float]:
        return {name: float(values[0]) for name, values in self.score(np.ones((1, self.rows))).items()}


def bootstrap_counts(rows: int, resamples: int, seed: int) -> np.ndarray:
    """A ``(resamples, rows)`` matrix of how often each row is drawn in each resample (rows drawn with replacement)."""
    if rows < 1 or resamples < 1:
        raise ValueError(f"rows and resamples must be positive, got {rows} and {resamples}")
    rng = np.random.default_rng(seed)
    index = rng.integers(0, rows, size=(resamples, rows))
    flat = (index + (np.arange(resamples) * rows)[:, None]).ravel()
    return np.bincount(flat, minlength=resamples * rows).reshape(resamples, rows).astype(np.float32)


def _blocks(rows: int, resamples: int, seed: int) -> list[np.ndarray]:
    """The resamples in blocks; block ``k`` has its own seed derived from ``seed``, so results depend only on it."""
    sizes = [min(_BLOCK, resamples - start) for start in range(0, resamples, _BLOCK)]
    seeds = np.random.SeedSequence(seed).spawn(len(sizes))
    return [bootstrap_counts(rows, size, int(s.generate_state(1)[0])) for size, s in zip(sizes, seeds, strict=True)]


@dataclass(frozen=True)
class Interval:
    """A point estimate with a percentile bootstrap interval."""

    estimate: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high}


def _interval(estimate: float, samples: np.ndarray, level: float) -> Interval:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return Interval(estimate, float("nan"), float("nan"))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return Interval(float(estimate), float(low), float(high))


@dataclass(frozen=True)
class BootstrapResult:
    """Per metric: the candidate's interval, the champion's (if any) and the paired candidate - champion delta."""

    candidate: dict[str, Interval]
    champion: dict[str, Interval] | None
    delta: dict[str, Interval] | None
    resamples: int
    seed: int
    level: float

    def as_dict(self) -> dict[str, object]:
        def block(values: dict[str, Interval] | None) -> dict[str, dict[str, float]] | None:
            return None if values is None else {name: interval.as_dict() for name, interval in values.items()}

        return {
            "resamples": self.resamples,
            "seed": self.seed,
            "level": self.level,
            "candidate": block(self.candidate),
            "champion": block(self.champion),
            "delta": block(self.delta),
        }


def paired_bootstrap(
    y: Sequence[float] | np.ndarray,
    candidate: Sequence[float] | np.ndarray,
    champion: Sequence[float] | np.ndarray | None = None,
    resamples: int = 1000,
    seed: int = 2013,
    level: float = 0.95,
) -> BootstrapResult:
    """Bootstrap intervals for every metric of ``candidate`` and, with ``champion`` scored on the same rows, of the
    champion and of the paired delta (both models see the same resampled rows)."""
    cand = WeightedScorer(y, candidate)
    champ = WeightedScorer(y, champion) if champion is not None else None
    cand_samples: dict[str, list[np.ndarray]] = {name: [] for name in METRICS}
    champ_samples: dict[str, list[np.ndarray]] = {name: [] for name in METRICS}
    for counts in _blocks(cand.rows, resamples, seed):
        for name, values in cand.score(counts).items():
            cand_samples[name].append(values)
        if champ is not None:
            for name, values in champ.score(counts).items():
                champ_samples[name].append(values)
    cand_point = cand.point()
    cand_all = {name: np.concatenate(parts) for name, parts in cand_samples.items()}
    candidate_ci = {name: _interval(cand_point[name], cand_all[name], level) for name in METRICS}
    if champ is None:
        return BootstrapResult(candidate_ci, None, None, resamples, seed, level)
    champ_point = champ.point()
    champ_all = {name: np.concatenate(parts) for name, parts in champ_samples.items()}
    return BootstrapResult(
        candidate=candidate_ci,
        champion={name: _interval(champ_point[name], champ_all[name], level) for name in METRICS},
        delta={
            name: _interval(cand_point[name] - champ_point[name], cand_all[name] - champ_all[name], level)
            for name in METRICS
        },
        resamples=resamples,
        seed=seed,
        level=level,
    )


def point_metrics(y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Every metric once, on all rows (NaN AUCs when a class is absent)."""
    return WeightedScorer(y, p).point()


def _cumulative_counts(
    y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives above each distinct threshold, highest threshold first (ties count together)."""
    labels, probs = _labels_scores(y, p)
    order = np.argsort(-probs, kind="stable")
    sorted_p, sorted_y = probs[order], labels[order]
    last_of_group = np.r_[sorted_p[1:] != sorted_p[:-1], True]
    return np.cumsum(sorted_y)[last_of_group], np.cumsum(1 - sorted_y)[last_of_group]


def roc_curve(y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold, from (0, 0) to (1, 1)."""
    tp, fp = _cumulative_counts(y, p)
    return np.r_[0.0, fp / max(fp[-1], 1)], np.r_[0.0, tp / max(tp[-1], 1)]


def pr_curve(y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recall and precision at every distinct threshold, highest threshold first."""
    tp, fp = _cumulative_counts(y, p)
    return tp / max(tp[-1], 1), tp / np.maximum(tp + fp, 1)
