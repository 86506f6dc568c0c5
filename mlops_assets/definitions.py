"""The code location: assembles the domain definitions; no logic lives here."""


import dagster as dg

from mlops_assets.defs.common import SETTINGS
from mlops_assets.defs.raw.assets import daily_raw_assets, dimension_raw_assets
from mlops_assets.defs.raw.sensors import landing_sensor, raw_daily_job, raw_dimensions_job
from mlops_assets.defs.resources import build_resources
from mlops_assets.defs.transform.assets import build_transform_assets
from mlops_assets.defs.transform.project import dbt_project

automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
)

defs = dg.Definitions(
    assets=[*daily_raw_assets, *dimension_raw_assets, *build_transform_assets(dbt_project)],
    jobs=[raw_daily_job, raw_dimensions_job],
    sensors=[landing_sensor, automation_sensor],
    resources=build_resources(SETTINGS),
    executor=dg.in_process_executor,
)
