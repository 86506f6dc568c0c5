"""Test helpers that run real Dagster jobs in-process."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg


def materialize_range(
    defs: dg.Definitions, instance: Any, selection: str, start: date, end: date, raise_on_error: bool = True
) -> dg.ExecuteInProcessResult:
    """Materialise the selected assets over [start, end] as one run, as a single-run backfill would.

    Unpartitioned assets in the selection are materialised in the same run, before their partitioned dependents.
    """
    job = defs.resolve_implicit_global_asset_job_def()
    keys = dg.AssetSelection.from_string(selection).resolve(defs.resolve_asset_graph())
    return job.execute_in_process(
        instance=instance,
        asset_selection=list(keys),
        tags={
            "dagster/asset_partition_range_start": start.isoformat(),
            "dagster/asset_partition_range_end": end.isoformat(),
        },
        raise_on_error=raise_on_error,
    )


# Opens the file for writing, says so, and holds it for argv[2] seconds.
_LOCK_HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def hold_write_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    """A second process holding DuckDB's write lock on ``path`` for ``seconds``; returns once it holds it."""
    process = subprocess.Popen(
        [sys.executable, "-c", _LOCK_HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "locked"
    return process
