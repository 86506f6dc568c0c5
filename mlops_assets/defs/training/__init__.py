"""Training domain: the weekly trained_model (Ray Tune sweep over LightGBM, MLflow registry alias 'challenger')."""

import dagster as dg

from mlops_assets.defs.training.assets import trained_model

defs = dg.Definitions(assets=[trained_model])
