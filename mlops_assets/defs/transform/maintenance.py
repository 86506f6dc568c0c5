"""Warehouse maintenance: DuckLake keeps every replaced Parquet file for time travel until told otherwise.

Every daily run adds small Parquet files, and every re-run of a partition (a re-delivered day, a backfill) commits a
new snapshot and leaves the rows it replaced in files that only older snapshots read. ``warehouse_maintenance``
merges adjacent small files, expires the snapshots older than ``keep_days`` and deletes the files no remaining
snapshot reads. It is housekeeping of storage, not of data freshness, so it runs on
the wall clock (nightly) rather than on data arrival; it takes the warehouse pool like every other writer.
"""

from datetime import timedelta

import dagster as dg

from mlops_assets.defs.common import WAREHOUSE_POOL, LakeResource
from mlops_assets.lib.warehouse import maintain


class MaintenanceConfig(dg.Config):
    keep_days: int = 7
    """How far back the warehouse can still be read as of an earlier snapshot (time travel, debugging a run)."""


@dg.op(
    description="Merge the warehouse's small files, expire snapshots older than keep_days and delete the files no "
    "snapshot reads any more.",
    pool=WAREHOUSE_POOL,
    retry_policy=dg.RetryPolicy(max_retries=3, delay=30),
)
def expire_warehouse_snapshots(
    context: dg.OpExecutionContext, config: MaintenanceConfig, lake: LakeResource
) -> dg.Output[None]:
    if config.keep_days < 0:
        raise dg.Failure(f"keep_days={config.keep_days} must be 0 or more (days of snapshots kept for time travel)")
    result = maintain(lake.warehouse.location(), keep=timedelta(days=config.keep_days))
    context.log.info(
        f"{result.files_merged} files merged away; snapshots {result.snapshots_before} -> {result.snapshots_after}; "
        f"{result.files_deleted} files deleted"
    )
    return dg.Output(
        None,
        metadata={
            "files_merged": result.files_merged,
            "snapshots_before": result.snapshots_before,
            "snapshots_after": result.snapshots_after,
            "files_deleted": result.files_deleted,
        },
    )


@dg.job(description="Compact the DuckLake's small files, expire old snapshots and delete the files no one reads.")
def warehouse_maintenance() -> None:
    expire_warehouse_snapshots()


warehouse_maintenance_schedule = dg.ScheduleDefinition(
    job=warehouse_maintenance,
    cron_schedule="30 3 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
