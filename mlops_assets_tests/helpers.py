"""Test helpers that run real Dagster jobs in-process."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from mlops_assets.lib.warehouse import WarehouseLocation

if TYPE_CHECKING:
    from mlops_assets.defs.common import WarehouseConfig


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


# Opens a write transaction on the warehouse's SQLite catalog (with DuckDB's own SQLite, whose locks DuckLake's commits
# honour), says so, and holds it for argv[3] seconds.
_LOCK_HOLDER = """
import sys, time, duckdb
con = duckdb.connect(config={"extension_directory": sys.argv[2], "autoinstall_known_extensions": False})
con.execute(f"attach '{sys.argv[1]}' as catalog (type sqlite)")
con.execute("begin")
con.execute("update catalog.ducklake_metadata set value = value")
print("locked", flush=True)
time.sleep(float(sys.argv[3]))
con.close()
"""


def hold_write_lock(location: WarehouseLocation, seconds: float) -> subprocess.Popen[str]:
    """A second process holding the write lock of the warehouse's SQLite catalog for ``seconds``, as a commit in
    progress elsewhere would; returns once it holds it."""
    assert location.catalog_file is not None, "only a SQLite catalog has a file to lock"
    process = subprocess.Popen(
        [sys.executable, "-c", _LOCK_HOLDER, str(location.catalog_file), location.extension_dir, str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "locked"
    return process


def scratch_warehouse(source: WarehouseLocation, directory: Path) -> WarehouseLocation:
    """An empty warehouse of its own under ``directory`` (a SQLite catalog), sharing ``source``'s extensions."""
    return WarehouseLocation(f"sqlite:{directory / 'catalog.sqlite'}", f"{directory / 'data'}/", source.extension_dir)


def warehouse_config(directory: Path) -> WarehouseConfig:
    """A warehouse of its own under ``directory``, as LakeResource config (nothing is created until it is opened)."""
    from mlops_assets.defs.common import SETTINGS, WarehouseConfig

    return WarehouseConfig.of(scratch_warehouse(WarehouseLocation.from_settings(SETTINGS), directory))
