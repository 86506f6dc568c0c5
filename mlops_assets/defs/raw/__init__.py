"""Raw domain: landed files to the Parquet lake."""

import dagster as dg

from mlops_assets.defs.raw.assets import daily_raw_assets, dimension_raw_assets
from mlops_assets.defs.raw.sensors import landing_sensor, raw_daily_job, raw_dimensions_job

defs = dg.Definitions(
    assets=[*daily_raw_assets, *dimension_raw_assets],
    jobs=[raw_daily_job, raw_dimensions_job],
    sensors=[landing_sensor],
)
