"""Live performance of a served model on one labelled day, and its decay against the evaluation report's holdout.

Labels arrive with each landed day, so every day is a small out-of-time test of the champion (and of the shadow
challenger on the same rows, the online A/B comparison).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from mlops_assets.lib.calibration import expected_calibration_error
from mlops_assets.lib.evaluation_metrics import point_metrics
from mlops_assets.lib.model_artifacts import LoadedModel
from mlops_assets.lib.training import model_data


def score(model: LoadedModel, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Labels and the model's calibrated probabilities, in ``model_data``'s stable row order."""
    data = model_data(frame, model.vocabulary)
    return data.label, model.predict(data.features)


def day_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """AUC, PR-AUC, log loss, Brier and ECE on the day's rows (NaN AUCs when a class is absent)."""
    return {**point_metrics(y, p), "ece": expected_calibration_error(y, p)}


def holdout_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """The candidate's holdout figures from an evaluation report (the champion's own report is its reference)."""
    candidate = report.get("metrics", {}).get("candidate") or {}
    figures = {name: float(value["estimate"]) for name, value in candidate.items() if "estimate" in value}
    ece = (report.get("calibration", {}).get("candidate") or {}).get("ece")
    if ece is not None:
        figures["ece"] = float(ece)
    return figures


def relative_decay(holdout_auc: float | None, day_auc: float | None) -> float | None:
    """(holdout AUC - day AUC) / holdout AUC: positive when the day is worse; None when either is unknown."""
    if holdout_auc is None or day_auc is None or not np.isfinite(day_auc) or holdout_auc <= 0:
        return None
    return float((holdout_auc - day_auc) / holdout_auc)


def paired_auc_difference(
    days: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], resamples: int = 1000, seed: int = 2013
) -> dict[str, float] | None:
    """Challenger - champion mean daily AUC over days (y, p_champion, p_challenger), with a 95% CI from resampling
    whole days (paired: both models on the same rows of the same days). None with fewer than two days."""
    diffs = []
    for y, p_champion, p_challenger in days:
        champion_auc = point_metrics(y, p_champion)["roc_auc"]
        challenger_auc = point_metrics(y, p_challenger)["roc_auc"]
        if np.isfinite(champion_auc) and np.isfinite(challenger_auc):
            diffs.append(challenger_auc - champion_auc)
    if len(diffs) < 2:
        return None
    values = np.asarray(diffs)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, (resamples, values.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"estimate": float(values.mean()), "low": float(low), "high": float(high), "days": float(values.size)}
