"""Monitoring domain: the daily drift_profile (whylogs profiles, drift, live performance) and the drift sensor that
requests a retrain between scheduled weeks."""

import dagster as dg

from mlops_assets.defs.monitoring.assets import drift_profile
from mlops_assets.defs.monitoring.sensors import drift_retrain_sensor

defs = dg.Definitions(assets=[drift_profile], sensors=[drift_retrain_sensor])
