"""Where the raw lake keeps a day's partition and its quarantine, and what is already published there."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import fsspec
import pyarrow.parquet as pq


def partition_uri(lake_root: str, table: str, day: date) -> str:
    return f"{lake_root.rstrip('/')}/raw/{table}/date={day.isoformat()}/data.parquet"


def quarantine_uri(lake_root: str, table: str, day: date) -> str:
    """Bad rows of a published delivery: ``<lake>/raw_quarantine/<table>/date=D/data.parquet``."""
    return f"{lake_root.rstrip('/')}/raw_quarantine/{table}/date={day.isoformat()}/data.parquet"


def published_row_count(uri: str) -> int | None:
    """Rows of the published Parquet file at ``uri`` (from its footer), or None when nothing is published."""
    if "://" not in uri:
        path = Path(uri)
        return pq.ParquetFile(path).metadata.num_rows if path.exists() else None
    fs, path = fsspec.core.url_to_fs(uri)
    if not fs.exists(path):
        return None
    with fs.open(path, "rb") as handle:
        return pq.ParquetFile(handle).metadata.num_rows


def remove_if_exists(uri: str) -> bool:
    """Delete a file (a stale quarantine once its day is re-delivered clean); True when one was removed."""
    if "://" not in uri:
        path = Path(uri)
        if path.exists():
            path.unlink()
            return True
        return False
    fs, path = fsspec.core.url_to_fs(uri)
    if fs.exists(path):
        fs.rm(path)
        return True
    return False
