"""Training domain: the weekly trained_model (Ray Tune sweep over LightGBM, MLflow registry alias 'challenger'), its
evaluation_report (the promotion gate as blocking checks), the champion promotion and the rollback job."""

import dagster as dg

from mlops_assets.defs.training.assets import trained_model
from mlops_assets.defs.training.evaluation import evaluation_report
from mlops_assets.defs.training.promotion import champion, rollback_champion

defs = dg.Definitions(assets=[trained_model, evaluation_report, champion], jobs=[rollback_champion])
