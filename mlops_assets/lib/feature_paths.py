"""Where the feature tables live in the lake."""

from __future__ import annotations

from datetime import date


def entity_table_uri(lake_root: str, view: str) -> str:
    """One Parquet file per view: Feast's file source and the point-in-time join both read it whole."""
    return f"{lake_root.rstrip('/')}/features/entity/{view}.parquet"


def partition_uri(lake_root: str, table: str, day: date) -> str:
    """``<lake_root>/features/<table>/date=YYYY-MM-DD/data.parquet`` for ``validated`` and ``quarantine``."""
    return f"{lake_root.rstrip('/')}/features/{table}/date={day.isoformat()}/data.parquet"
