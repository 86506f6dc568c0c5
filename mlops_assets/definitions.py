"""The code location: assembles the domain definitions; no logic lives here."""

import dagster as dg

from mlops_assets.defs import features, monitoring, raw, serving, training, transform
from mlops_assets.defs.common import SETTINGS
from mlops_assets.defs.resources import build_executor, build_resources

automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
)

defs = dg.Definitions.merge(
    raw.defs,
    transform.defs,
    features.defs,
    training.defs,
    monitoring.defs,
    serving.defs,
    dg.Definitions(
        sensors=[automation_sensor],
        resources=build_resources(SETTINGS),
        executor=build_executor(SETTINGS),
    ),
)
