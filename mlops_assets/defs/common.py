"""Cross-domain Dagster building blocks: partitions, freshness policies, the settings resource."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import timedelta

import dagster as dg

from mlops_assets.lib.warehouse import WarehouseLocation
from mlops_assets.settings import Settings, load_settings

NEW_YORK = "America/New_York"

SETTINGS: Settings = load_settings()

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=SETTINGS.partitions_start.isoformat(),
    end_date=(SETTINGS.partitions_end + timedelta(days=1)).isoformat(),
    timezone=NEW_YORK,
)

# Every daily-partitioned asset carries this tag (dbt models get it from their `daily` tag), so `tag:daily`
# selects the partitioned chain. Every asset, partitioned or not, has a single-run backfill policy, so
# `dagster asset materialize --select '*' --partition-range A...B` runs the whole pipeline as one run.
DAILY_TAG = {"daily": ""}

# Daily data is expected every day; a day of slack covers a late upstream delivery before the check fails.
DAILY_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=48), warn_window=timedelta(hours=26))
# Dimensions change rarely but are re-delivered with every landing.
DIMENSION_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(days=8), warn_window=timedelta(days=2))


# Automation follows data arrival, never the wall clock (2013 is replayed day by day). ``eager()`` only considers a
# time-partitioned asset's latest window, which for a partition set ending 2013-12-31 is that last day whatever day
# just landed; these conditions drop that operand, so the day that landed (or re-landed) is the one that propagates.
#
# Daily assets ignore updates of their unpartitioned (dimension) parents: dimensions are re-delivered with every
# landing, and an update of ``raw/planes`` would otherwise request every landed day of the year again. A corrected
# dimension takes effect from the next landed day on; rebuilding history for it is a deliberate backfill.
DIMENSION_ASSETS = dg.AssetSelection.all() - dg.AssetSelection.tag("daily", "")


def daily_arrival(previous_day_parents: Sequence[dg.AssetKey] = ()) -> dg.AutomationCondition:
    """A day's partition runs once every parent partition exists, after one of them (the landed day) updated.

    ``previous_day_parents`` are parents whose day D - 1 partition D reads (declared with
    :data:`PREVIOUS_DAY`): their update requests D, so a re-landed day reaches the day after it, but a missing one
    does not hold D back (the first landed day has no eve; its statistics are unknown, hence null)."""
    missing = dg.AutomationCondition.any_deps_missing()
    if previous_day_parents:
        missing = missing.ignore(dg.AssetSelection.assets(*previous_day_parents))
    return (
        (dg.AutomationCondition.newly_missing() | dg.AutomationCondition.any_deps_updated().ignore(DIMENSION_ASSETS))
        .since_last_handled()
        .with_label("newly missing or a daily parent updated")
        & ~missing
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("daily data arrival")


DAILY_AUTOMATION = daily_arrival()

# Partition D of the child reads partition D - 1 of the parent (e.g. statistics built at the end of the day before).
# Day one's eve lies before the partition set: Dagster treats it as absent (so ``daily_arrival`` must not wait for it).
# Every step that opens the warehouse (the dbt builds write it; validated_features and feature_store read it) is in
# this pool; dagster.yaml limits each pool to one step at a time across runs. Two writers of one DuckLake table
# conflict at commit, and a reader of a SQLite catalog waits out a commit (lib/warehouse.py): taking turns avoids both.
WAREHOUSE_POOL = "duckdb_warehouse"
PREVIOUS_DAY = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)

# Unpartitioned assets have a single partition, which ``in_latest_time_window()`` always contains: ``eager()``
# already follows each re-delivery.
DIMENSION_AUTOMATION = dg.AutomationCondition.eager()


class WarehouseConfig(dg.Config):
    """Where the warehouse is, as resource config (plain values); ``location()`` is what opens it."""

    catalog: str
    data_path: str
    extension_dir: str
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"

    @classmethod
    def of(cls, location: WarehouseLocation) -> WarehouseConfig:
        return cls(**dataclasses.asdict(location))

    def location(self) -> WarehouseLocation:
        return WarehouseLocation(**self.model_dump())


class LakeResource(dg.ConfigurableResource):
    """Where landed files are read, the Parquet lake is written, and the dbt warehouse is read."""

    landing_root: str
    lake_root: str
    warehouse: WarehouseConfig

    def raw_table_uri(self, table: str) -> str:
        return f"{self.lake_root.rstrip('/')}/raw/{table}"
