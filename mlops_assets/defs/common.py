"""Cross-domain Dagster building blocks: partitions, freshness policies, the settings resource."""

from datetime import timedelta
from pathlib import Path

import dagster as dg

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


class LakeResource(dg.ConfigurableResource):
    """Where landed files are read, the Parquet lake is written, and the dbt warehouse is read."""

    landing_dir: str
    lake_root: str
    warehouse_path: str

    def landing_path(self) -> Path:
        return Path(self.landing_dir)

    def raw_table_uri(self, table: str) -> str:
        return f"{self.lake_root.rstrip('/')}/raw/{table}"
