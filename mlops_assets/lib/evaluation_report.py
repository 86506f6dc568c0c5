"""The weekly evaluation report, computed: the candidate and the champion scored on the same holdout rows.

:func:`evaluate` takes loaded models and frames (no Dagster, no MLflow calls) and returns a JSON-ready ``dict``, the
one document the gate (:mod:`mlops_assets.lib.promotion`), the HTML/Markdown rendering
(:mod:`mlops_assets.lib.report_render`) and Dagster's metadata all read. Sections: provenance, metrics (bootstrap
CIs and the paired delta), calibration, operating point, slices, baselines, explanations, operations, curves.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from mlops_assets.lib.baselines import fit_logistic, logistic_predictions, prior_rate
from mlops_assets.lib.boosting import ModelData
from mlops_assets.lib.calibration import expected_calibration_error, reliability_curve
from mlops_assets.lib.evaluation_metrics import paired_bootstrap, point_metrics, pr_curve, roc_curve
from mlops_assets.lib.evaluation_slices import slice_columns, slice_metrics, worst_slice
from mlops_assets.lib.feature_contract import KEY_COLUMN, TIMESTAMP_COLUMN
from mlops_assets.lib.model_artifacts import LoadedModel
from mlops_assets.lib.model_diagnostics import (
    gain_importance,
    importance_shift,
    mean_abs_contributions,
    model_size_bytes,
    predict_latency,
    top,
)
from mlops_assets.lib.operating_point import ThresholdRule, operating_point
from mlops_assets.lib.training import model_data

REPORT_VERSION = 1
SECTIONS: tuple[str, ...] = (
    "provenance",
    "metrics",
    "calibration",
    "operating_point",
    "slices",
    "baselines",
    "explanations",
    "operations",
)
# Curves are thinned to this many points for the report (plots do not need every threshold).
_CURVE_POINTS = 200


# Where a week's report lives on the candidate's MLflow run: evaluation_report writes it, the gate, the champion step
# and the serving runtime (its decision threshold) read it.
REPORT_ARTIFACT_DIR = "evaluation"


def report_artifact(week: str, name: str = "report.json") -> str:
    """The artifact path of one of the week's report files on the candidate's run."""
    return f"{REPORT_ARTIFACT_DIR}/{week}/{name}"


@dataclass(frozen=True)
class EvaluationSettings:
    resamples: int = 1000
    seed: int = 2013
    level: float = 0.95
    calibration_bins: int = 10
    min_slice_rows: int = 200
    threshold_rule: ThresholdRule = field(default_factory=ThresholdRule)
    latency_repeats: int = 200


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    """The row order :func:`mlops_assets.lib.training.model_data` uses, so slices align with predictions."""
    order = [TIMESTAMP_COLUMN, KEY_COLUMN] if TIMESTAMP_COLUMN in frame.columns else [KEY_COLUMN]
    return frame.sort(order)


def rows_hash(frame: pl.DataFrame) -> str:
    """SHA-256 of the holdout rows (sorted by key; every column as CSV text): the same rows give the same hash."""
    return hashlib.sha256(frame.sort(KEY_COLUMN).write_csv().encode()).hexdigest()


def _thin(x: np.ndarray, y: np.ndarray) -> dict[str, list[float]]:
    if x.size > _CURVE_POINTS:
        index = np.unique(np.linspace(0, x.size - 1, _CURVE_POINTS).astype(int))
        x, y = x[index], y[index]
    return {"x": [float(v) for v in x], "y": [float(v) for v in y]}


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _provenance(
    candidate: LoadedModel, champion: LoadedModel | None, holdout: pl.DataFrame, settings: EvaluationSettings
) -> dict[str, Any]:
    def model(m: LoadedModel) -> dict[str, Any]:
        return {
            "name": m.name,
            "version": m.version,
            "run_id": m.run_id,
            "partition": m.partition,
            "training_data_hash": m.tags.get("training_data_hash"),
            "git_sha": m.tags.get("git_sha"),
            "config_hash": m.tags.get("config_hash"),
            "model_sha256": m.tags.get("model_sha256"),
            "training_seed": m.params.get("sweep.seed"),
            "calibrator": m.calibrator.method if m.calibrated else "none (identity)",
        }

    return {
        "candidate": model(candidate),
        "champion": model(champion) if champion is not None else None,
        "holdout_rows_hash": rows_hash(holdout),
        "bootstrap_seed": settings.seed,
        "bootstrap_resamples": settings.resamples,
    }


def _calibration(y: np.ndarray, p: np.ndarray, bins: int) -> dict[str, Any]:
    return {
        "ece": expected_calibration_error(y, p, bins),
        "bins": bins,
        "reliability": reliability_curve(y, p, bins).rows(),
        "mean_prediction": float(np.mean(p)),
        "observed_rate": float(np.mean(y)),
    }


def evaluate(
    week: str,
    holdout_window: str,
    holdout_frame: pl.DataFrame,
    train_frame: pl.DataFrame,
    candidate: LoadedModel,
    champion: LoadedModel | None,
    settings: EvaluationSettings,
) -> dict[str, Any]:
    """The report for ``week``: both models on ``holdout_frame``; baselines fitted on ``train_frame`` (the
    candidate's training window)."""
    holdout_frame = _sorted(holdout_frame)
    cand_data = model_data(holdout_frame, candidate.vocabulary)
    y = cand_data.label.astype(np.float64)
    p_cand = candidate.predict(cand_data.features)
    champ_data: ModelData | None = None
    p_champ: np.ndarray | None = None
    if champion is not None:
        champ_data = model_data(holdout_frame, champion.vocabulary)
        p_champ = champion.predict(champ_data.features)

    boot = paired_bootstrap(y, p_cand, p_champ, settings.resamples, settings.seed, settings.level)
    point, sweep = operating_point(y, p_cand, settings.threshold_rule)
    slices = slice_metrics(
        slice_columns(holdout_frame), y, p_cand, p_champ, settings.min_slice_rows, seed=settings.seed
    )
    worst = worst_slice(slices)

    train_data = model_data(train_frame, candidate.vocabulary)
    prior = prior_rate(train_data, y.size)
    logistic = fit_logistic(train_data)
    train_auc = point_metrics(train_data.label, candidate.predict(train_data.features))["roc_auc"]
    cand_importance = gain_importance(candidate.booster)
    champ_importance = gain_importance(champion.booster) if champion is not None else None

    fpr, tpr = roc_curve(y, p_cand)
    recall, precision = pr_curve(y, p_cand)
    curves: dict[str, Any] = {
        "candidate": {"roc": _thin(fpr, tpr), "pr": _thin(recall, precision)},
        "champion": None,
    }
    if p_champ is not None:
        c_fpr, c_tpr = roc_curve(y, p_champ)
        c_recall, c_precision = pr_curve(y, p_champ)
        curves["champion"] = {"roc": _thin(c_fpr, c_tpr), "pr": _thin(c_recall, c_precision)}

    cand_ops = {"size_bytes": model_size_bytes(candidate.booster)} | predict_latency(
        candidate.booster, cand_data.features, settings.latency_repeats
    )
    champ_ops = None
    if champion is not None and champ_data is not None:
        champ_ops = {"size_bytes": model_size_bytes(champion.booster)} | predict_latency(
            champion.booster, champ_data.features, settings.latency_repeats
        )

    holdout_auc = boot.candidate["roc_auc"].estimate
    return {
        "report_version": REPORT_VERSION,
        "week": week,
        "holdout_window": holdout_window,
        "rows": int(y.size),
        "positives": int(y.sum()),
        "has_champion": champion is not None,
        "provenance": _provenance(candidate, champion, holdout_frame, settings),
        "metrics": boot.as_dict(),
        "calibration": {
            "candidate": _calibration(y, p_cand, settings.calibration_bins),
            "champion": _calibration(y, p_champ, settings.calibration_bins) if p_champ is not None else None,
        },
        "operating_point": {
            **point.as_dict(),
            "sweep": sweep.rows()[::5],
            "champion": (
                operating_point(y, p_champ, settings.threshold_rule)[0].as_dict() if p_champ is not None else None
            ),
        },
        "slices": {
            "min_rows": settings.min_slice_rows,
            "rows": [row.as_dict() for row in slices],
            "worst": worst.as_dict() if worst is not None else None,
        },
        "baselines": {
            "prior_rate": {"rate": float(prior[0]), **point_metrics(y, prior)},
            "logistic_regression": point_metrics(y, logistic_predictions(logistic, cand_data.features)),
            "train_rows": train_data.rows,
            "train_auc": _finite(train_auc),
            "holdout_auc": _finite(holdout_auc),
            "train_holdout_gap": _finite(train_auc - holdout_auc),
        },
        "explanations": {
            "gain_importance": top(cand_importance),
            "mean_abs_contribution": top(mean_abs_contributions(candidate.booster, cand_data.features, settings.seed)),
            "importance_shift": importance_shift(cand_importance, champ_importance)[:15]
            if champ_importance is not None
            else None,
        },
        "operations": {"candidate": cand_ops, "champion": champ_ops},
        "curves": curves,
    }
