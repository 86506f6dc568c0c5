"""Monitoring domain: the daily drift_profile (whylogs profiles, drift, live performance), the drift sensor that
requests a retrain between scheduled weeks, and the sensor that rolls back a champion doing worse than the one it
replaced."""

import dagster as dg

from mlops_assets.defs.monitoring.assets import drift_profile
from mlops_assets.defs.monitoring.sensors import champion_rollback_sensor, drift_retrain_sensor

defs = dg.Definitions(assets=[drift_profile], sensors=[drift_retrain_sensor, champion_rollback_sensor])
