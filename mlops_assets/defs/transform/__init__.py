"""Transform domain: the dbt project (staging, enriched flights, point-in-time delay history) and the maintenance of
the warehouse it builds."""

import dagster as dg

from mlops_assets.defs.transform.assets import build_transform_assets
from mlops_assets.defs.transform.maintenance import warehouse_maintenance, warehouse_maintenance_schedule
from mlops_assets.defs.transform.project import dbt_project

defs = dg.Definitions(
    assets=build_transform_assets(dbt_project),
    jobs=[warehouse_maintenance],
    schedules=[warehouse_maintenance_schedule],
)
