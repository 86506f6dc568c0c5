"""Features domain: validated model-ready rows (with quarantine and checks) and the Feast feature store."""

import dagster as dg

from mlops_assets.defs.features.assets import feature_store, validated_features

defs = dg.Definitions(assets=[validated_features, feature_store])
