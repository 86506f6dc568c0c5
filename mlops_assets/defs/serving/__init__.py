"""Serving domain: the bento of the BentoML service and the sensor that rebuilds it when the champion moves."""

import dagster as dg

from mlops_assets.defs.serving.assets import bento
from mlops_assets.defs.serving.sensors import bento_follows_champion, build_bento_job

defs = dg.Definitions(assets=[bento], jobs=[build_bento_job], sensors=[bento_follows_champion])
