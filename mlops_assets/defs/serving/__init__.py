"""Serving domain: the bento of the BentoML service, its container image, and the sensor that rebuilds the bento when
the champion moves."""

import dagster as dg

from mlops_assets.defs.serving.assets import bento, bento_image
from mlops_assets.defs.serving.sensors import bento_follows_champion, build_bento_job

defs = dg.Definitions(assets=[bento, bento_image], jobs=[build_bento_job], sensors=[bento_follows_champion])
