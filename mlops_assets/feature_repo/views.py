"""Feast feature views over the per-entity feature tables in the lake (``<lake_root>/features/entity/<view>.parquet``).

The tables are derived from ``validated_features`` by the ``feature_store`` asset. The view list, fields and TTLs come
from :data:`mlops_assets.lib.features.FEATURE_VIEWS`, the same specification the point-in-time training join uses,
so serving and training read the same features. The lake root comes from the settings.
"""

import polars as pl
from feast import FeatureView, Field, FileSource
from feast.types import Float64, Int64, PrimitiveFeastType, String

from mlops_assets.feature_repo.entities import ENTITIES
from mlops_assets.lib.features import FEATURE_VIEWS, entity_table_uri
from mlops_assets.settings import load_settings


def _feast_type(dtype: pl.DataType) -> PrimitiveFeastType:
    if dtype.is_integer():
        return Int64
    if dtype.is_float():
        return Float64
    return String


def build_feature_views(lake_root: str) -> list[FeatureView]:
    views = []
    for spec in FEATURE_VIEWS:
        source = FileSource(
            name=f"{spec.name}_source",
            path=entity_table_uri(lake_root, spec.name),
            timestamp_field=spec.timestamp_column,
        )
        views.append(
            FeatureView(
                name=spec.name,
                entities=[ENTITIES[spec.entity]],
                ttl=spec.ttl,
                schema=[
                    Field(name=spec.join_key, dtype=String),
                    *(Field(name=name, dtype=_feast_type(dtype)) for name, dtype in spec.features.items()),
                ],
                online=True,
                source=source,
                description=spec.description,
            )
        )
    return views


FEATURE_VIEW_OBJECTS = build_feature_views(load_settings().lake_root)
