"""The code location: assembles the domain definitions; no logic lives here."""

import warnings

import dagster as dg

from mlops_assets.defs import features, monitoring, raw, serving, training, transform
from mlops_assets.defs.common import SETTINGS
from mlops_assets.defs.resources import build_executor, build_resources

# Evaluated in the code server: the daemon can only evaluate serialisable conditions and silently skips an asset whose
# condition is a custom class (trained_model's ScheduledWeek), so scheduled weeks were never trained under `dagster dev`
# (test_daemon_e2e). The parameter is beta in Dagster 1.13 and is used on purpose, so its BetaWarning is silenced here,
# for this call only; at most 500 targeted entities.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*use_user_code_server.*", category=dg.BetaWarning)
    automation_sensor = dg.AutomationConditionSensorDefinition(
        "automation_sensor",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
        use_user_code_server=True,
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
