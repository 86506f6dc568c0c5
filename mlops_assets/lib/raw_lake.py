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


def remove_stale_temp_files(uri: str) -> int:
    """Delete temp siblings a killed writer left next to ``uri`` (``.<name>.<uuid>.tmp``, see lib/io.py).

    Only the run that publishes a partition writes into its folder, so any temp file found there before it writes is
    debris of a crash. Object stores have no temp files (one PUT), so only local paths are swept. Returns the count.
    """
    if "://" in uri:
        return 0
    path = Path(uri)
    removed = 0
    for stale in path.parent.glob(f".{path.name}.*.tmp") if path.parent.is_dir() else []:
        stale.unlink(missing_ok=True)
        removed += 1
    return removed
