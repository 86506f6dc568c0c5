"""The model a weekly partition registers: the sweep's best configuration fitted once more, then calibrated.

Two fits, chosen by evidence (``benchmarks/quality.py``, README "Quality, out of time"):

- ``early`` (default): the best configuration trained on the training window with early stopping on the validation
  week. Its validation predictions are out of sample, so the calibrator fitted on them fits the model it is applied
  to. Pooled over Oct-Dec 2013 this gave the lowest calibration error of every variant measured.
- ``refit``: the best configuration retrained on training + validation for the early-stopped number of rounds. It has
  seen the most recent week, but a calibrator fitted on the early model's validation predictions fits it less well.

The calibrator (:mod:`mlops_assets.lib.calibration`) is always fitted on validation predictions of the early model,
never on the holdout week. Every fit is deterministic (fixed seed, threads and row order).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from mlops_assets.lib.boosting import ModelData, concat_model_data, refit, train_booster
from mlops_assets.lib.calibration import Calibrator, expected_calibration_error, fit

if TYPE_CHECKING:
    import lightgbm as lgb

FinalFit = Literal["early", "refit"]


@dataclass(frozen=True)
class FinalModel:
    booster: lgb.Booster
    """Holds exactly ``rounds`` trees; its raw probability goes through ``calibrator``."""
    calibrator: Calibrator
    fit: FinalFit
    rounds: int
    valid_auc: float
    """Validation AUC of the early-stopped model (out of sample; the refit has seen the validation week)."""
    valid_ece_raw: float
    valid_ece_calibrated: float
    """In-sample for the calibrator: how well it fits the week it was fitted on, not a quality estimate."""

    def predict(self, data: ModelData) -> Any:
        return self.calibrator.apply(self.booster.predict(data.features))


def _truncated(booster: lgb.Booster, rounds: int) -> lgb.Booster:
    """A booster with only the first ``rounds`` trees: what is saved is exactly what is served."""
    import lightgbm as lgb

    return lgb.Booster(model_str=booster.model_to_string(num_iteration=rounds))


def fit_final_model(
    params: Mapping[str, Any],
    train: ModelData,
    valid: ModelData,
    max_rounds: int,
    early_stopping_rounds: int,
    calibration: str = "platt",
    final_fit: FinalFit = "early",
) -> FinalModel:
    from sklearn.metrics import roc_auc_score

    early = train_booster(params, train, valid, max_rounds, early_stopping_rounds=early_stopping_rounds)
    rounds = max(1, early.best_iteration or early.current_iteration())
    early = _truncated(early, rounds)
    p_valid = early.predict(valid.features)
    calibrator = fit(calibration, valid.label, p_valid)
    booster = early if final_fit == "early" else refit(params, concat_model_data(train, valid), rounds)
    return FinalModel(
        booster=booster,
        calibrator=calibrator,
        fit=final_fit,
        rounds=rounds,
        valid_auc=float(roc_auc_score(valid.label, p_valid)),
        valid_ece_raw=expected_calibration_error(valid.label, p_valid),
        valid_ece_calibrated=expected_calibration_error(valid.label, calibrator.apply(p_valid)),
    )
