"""From a point-in-time training frame to LightGBM's matrix: model features, categorical codes, row order, metrics.

Rows are sorted by a stable key (prediction time, flight id) before they become a matrix and categorical codes come
from a sorted vocabulary, so the same frame always gives the same matrix (the refit's determinism rests on it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from mlops_assets.lib.boosting import ModelData, TrainingDataError
from mlops_assets.lib.feature_contract import (
    CATEGORICAL_COLUMNS,
    FEATURE_COLUMNS,
    HISTORICAL_STAT_COLUMNS,
    KEY_COLUMN,
    LABEL_COLUMN,
    TIMESTAMP_COLUMN,
)
from mlops_assets.lib.feature_views import FEATURE_VIEWS
from mlops_assets.lib.intraday import INTRADAY_COLUMNS
from mlops_assets.lib.point_in_time import REQUEST_COLUMNS

if TYPE_CHECKING:
    import lightgbm as lgb

# What serving can supply: the request columns plus the online feature views. ``weather_age_minutes`` is validated
# but no view serves it, so it is not a model input (a feature the model needs must exist at serving time).
_SERVABLE = {*REQUEST_COLUMNS, *(name for spec in FEATURE_VIEWS for name in spec.features)}
# The trailing delay statistics stay features of the contract and the store (analysts and monitoring read them), but
# not model inputs: out of time they lowered pooled AUC by 0.013-0.016 (benchmarks/quality.py, README "Quality, out
# of time"); the intraday features carry the same signal, fresher.
MODEL_FEATURE_COLUMNS: tuple[str, ...] = (
    *(name for name in FEATURE_COLUMNS if name in _SERVABLE and name not in HISTORICAL_STAT_COLUMNS),
    *INTRADAY_COLUMNS,
)
MODEL_CATEGORICAL_COLUMNS: tuple[str, ...] = tuple(name for name in CATEGORICAL_COLUMNS if name in _SERVABLE)


@dataclass(frozen=True)
class CategoryVocabulary:
    """Sorted values per categorical column; a value's code is its index. Unknown values and nulls become missing."""

    values: Mapping[str, tuple[str, ...]]

    @classmethod
    def fit(cls, frame: pl.DataFrame, columns: Sequence[str] = MODEL_CATEGORICAL_COLUMNS) -> CategoryVocabulary:
        return cls({name: tuple(sorted(frame.get_column(name).drop_nulls().unique().to_list())) for name in columns})

    def encode(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            pl.col(name).replace_strict(list(values), list(range(len(values))), default=None, return_dtype=pl.Float32)
            for name, values in self.values.items()
        )

    def to_json(self) -> str:
        return json.dumps({name: list(values) for name, values in self.values.items()}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CategoryVocabulary:
        return cls({name: tuple(values) for name, values in json.loads(text).items()})


def in_model_order(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame's rows in :func:`model_data`'s stable order (time, then key): row i of the matrix is row i here."""
    order = [TIMESTAMP_COLUMN, KEY_COLUMN] if TIMESTAMP_COLUMN in frame.columns else [KEY_COLUMN]
    return frame.sort(order)


def model_data(frame: pl.DataFrame, vocabulary: CategoryVocabulary) -> ModelData:
    """Encode a training frame (one row per flight, :data:`MODEL_FEATURE_COLUMNS` and the label) as a matrix."""
    missing = [name for name in (KEY_COLUMN, LABEL_COLUMN, *MODEL_FEATURE_COLUMNS) if name not in frame.columns]
    if missing:
        raise TrainingDataError(
            f"training frame lacks columns {missing}; build it with "
            "mlops_assets.lib.point_in_time.build_training_frame so it carries every model feature"
        )
    if frame.height == 0:
        raise TrainingDataError("training frame has no rows; materialise validated_features for the window first")
    encoded = vocabulary.encode(in_model_order(frame)).select(
        *(pl.col(name).cast(pl.Float32) for name in MODEL_FEATURE_COLUMNS), pl.col(LABEL_COLUMN).cast(pl.Float32)
    )
    return ModelData(
        features=encoded.select(MODEL_FEATURE_COLUMNS).to_numpy(order="c"),
        label=encoded.get_column(LABEL_COLUMN).to_numpy(),
        feature_names=MODEL_FEATURE_COLUMNS,
        categorical_features=tuple(vocabulary.values),
    )


def input_example(data: ModelData, rows: int = 5) -> pl.DataFrame:
    """The first rows as a frame with the model's column names (MLflow's input example and signature)."""
    return pl.DataFrame(data.features[:rows], schema=list(data.feature_names), orient="row")


def require_both_classes(data: ModelData, window: str) -> None:
    positives = int(data.label.sum())
    if positives in (0, data.rows):
        raise TrainingDataError(
            f"the {window} window has {data.rows} rows and {positives} delayed flights: AUC needs both classes; "
            "widen the window (MLOPS_TRAIN_DAYS / MLOPS_VALID_DAYS) or land more days"
        )


def auc(booster: lgb.Booster, data: ModelData) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(data.label, booster.predict(data.features)))
