"""LightGBM on an encoded matrix: the model data, one training run, the deterministic refit, the model's bytes.

Kept free of polars, pandera and sklearn on purpose: Ray imports this module in every trial worker, and each worker
pays its imports on the sweep's critical path. LightGBM is imported inside the functions that use it, so loading the
code location does not pay for it.

Determinism: the same matrix and parameters give a byte-identical model. LightGBM runs with ``deterministic=True``,
``force_col_wise=True``, a fixed seed and a fixed thread count (the split search is reproducible only when all are
fixed); :func:`mlops_assets.lib.training.model_data` fixes the row order and the categorical codes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import lightgbm as lgb

DEFAULT_SEED = 2013

# Fixed for every training run; the sweep varies only the tuned parameters on top of these.
BASE_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "metric": "auc",
    "verbosity": -1,
    "seed": DEFAULT_SEED,
    "deterministic": True,
    "force_col_wise": True,
    "bagging_freq": 1,
}


class TrainingDataError(ValueError):
    """The training frame cannot be used (missing columns, one class only, no rows)."""


@dataclass(frozen=True)
class ModelData:
    """A float32 feature matrix in stable row order, its labels and the column names LightGBM sees."""

    features: np.ndarray
    label: np.ndarray
    feature_names: tuple[str, ...]
    categorical_features: tuple[str, ...]

    @property
    def rows(self) -> int:
        return int(self.label.shape[0])

    def dataset(self, reference: lgb.Dataset | None = None) -> lgb.Dataset:
        import lightgbm as lgb

        return lgb.Dataset(
            self.features,
            label=self.label,
            feature_name=list(self.feature_names),
            categorical_feature=list(self.categorical_features),
            reference=reference,
            free_raw_data=False,
        )


def training_params(tuned: Mapping[str, Any], num_threads: int, use_gpu: bool = False) -> dict[str, Any]:
    """The full LightGBM parameter set for tuned parameters: fixed base, thread count and device."""
    params = {**BASE_PARAMS, **tuned, "num_threads": num_threads}
    if use_gpu:
        # The PyPI wheel has the OpenCL learner only ("cuda" is not compiled in); see NOTES.md.
        params["device_type"] = "gpu"
    return params


def train_booster(
    params: Mapping[str, Any],
    train: ModelData,
    valid: ModelData | None,
    num_boost_round: int,
    early_stopping_rounds: int | None = None,
    callbacks: Sequence[Any] = (),
) -> lgb.Booster:
    """One LightGBM run; with ``valid`` and ``early_stopping_rounds`` it stops when validation AUC stalls."""
    import lightgbm as lgb

    train_set = train.dataset()
    valid_sets = [valid.dataset(reference=train_set)] if valid is not None else []
    all_callbacks = list(callbacks)
    if valid is not None and early_stopping_rounds:
        all_callbacks.append(lgb.early_stopping(early_stopping_rounds, first_metric_only=True, verbose=False))
    return lgb.train(
        dict(params),
        train_set,
        num_boost_round=num_boost_round,
        valid_sets=valid_sets,
        valid_names=["valid"] if valid_sets else None,
        callbacks=all_callbacks,
    )


def concat_model_data(first: ModelData, second: ModelData) -> ModelData:
    """Rows of ``first`` then ``second`` (earlier window first, so the order stays chronological)."""
    if first.feature_names != second.feature_names:
        raise TrainingDataError("cannot concatenate model data with different feature columns")
    return ModelData(
        features=np.concatenate([first.features, second.features]),
        label=np.concatenate([first.label, second.label]),
        feature_names=first.feature_names,
        categorical_features=first.categorical_features,
    )


def refit(params: Mapping[str, Any], data: ModelData, num_boost_round: int) -> lgb.Booster:
    """The final model: the chosen parameters on all tuning data for a fixed number of rounds (no early stopping)."""
    return train_booster(params, data, None, num_boost_round=max(1, num_boost_round))


def model_text(booster: lgb.Booster) -> str:
    return booster.model_to_string(num_iteration=-1)


def model_sha256(booster: lgb.Booster) -> str:
    return hashlib.sha256(model_text(booster).encode()).hexdigest()
