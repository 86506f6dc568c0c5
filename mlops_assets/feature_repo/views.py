"""Feast feature views over the per-entity feature tables in the lake (``<lake_root>/features/entity/<view>.parquet``).

The tables are written by the ``feature_store`` asset. The view list, fields and TTLs come from
:data:`mlops_assets.lib.feature_views.FEATURE_VIEWS`, the same specification the point-in-time training join uses,
so serving and training read the same features. The intraday views are ``StreamFeatureView`` s over a ``PushSource``
each: online, the departure feed pushes their rows as events happen (``mlops-assets replay-departures``); offline,
their batch source is the same lake table training joins. The lake root comes from the settings.
"""

import warnings

import polars as pl
from feast import FeatureView, Field, FileSource, PushSource, StreamFeatureView
from feast.types import Float64, Int64, PrimitiveFeastType, String

from mlops_assets.feature_repo.entities import ENTITIES
from mlops_assets.lib.feature_paths import entity_table_uri
from mlops_assets.lib.feature_views import FEATURE_VIEWS
from mlops_assets.settings import load_settings


def _feast_type(dtype: pl.DataType) -> PrimitiveFeastType:
    if dtype.is_integer():
        return Int64
    if dtype.is_float():
        return Float64
    return String


def build_feature_views(lake_root: str) -> list[FeatureView | PushSource]:
    """Every view, and the push source of each live view (apply needs both)."""
    objects: list[FeatureView | PushSource] = []
    for spec in FEATURE_VIEWS:
        batch = FileSource(
            name=f"{spec.name}_source",
            path=entity_table_uri(lake_root, spec.name),
            timestamp_field=spec.timestamp_column,
        )
        schema = [
            Field(name=spec.join_key, dtype=String),
            *(Field(name=name, dtype=_feast_type(dtype)) for name, dtype in spec.features.items()),
        ]
        common = {
            "name": spec.name,
            "entities": [ENTITIES[spec.entity]],
            "ttl": spec.ttl,
            "schema": schema,
            "online": True,
            "description": spec.description,
        }
        if spec.live:
            push = PushSource(name=spec.push_source, batch_source=batch)
            with warnings.catch_warnings():
                # Feast flags every StreamFeatureView as alpha; we use only its stable part (a push source feeding
                # the online store, no stream transformation), so the warning says nothing about this repo.
                warnings.filterwarnings("ignore", "Stream feature views are experimental", RuntimeWarning)
                stream = StreamFeatureView(source=push, timestamp_field=spec.timestamp_column, **common)
            objects += [push, stream]
        else:
            objects.append(FeatureView(source=batch, **common))
    return objects


FEATURE_VIEW_OBJECTS = build_feature_views(load_settings().lake_root)
