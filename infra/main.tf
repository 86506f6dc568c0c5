data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  name       = "${var.name_prefix}-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  # Prefixes the pipeline writes (settings.py: MLOPS_LAKE_ROOT, MLOPS_MLFLOW_ARTIFACT_ROOT, MLOPS_FEAST_REGISTRY, ...).
  # IAM policies are scoped to exactly these.
  lake_prefixes     = ["lake", "landing"]
  artefact_prefixes = ["mlflow", "feast", "bentos", "monitoring"]
  # What serving reads: the registered model's artefacts and the Feast registry.
  serving_prefixes = ["mlflow", "feast"]

  buckets = {
    lake      = "${local.name}-lake-${local.account_id}"
    artefacts = "${local.name}-artefacts-${local.account_id}"
  }

  oidc_issuer = replace(aws_eks_cluster.this.identity[0].oidc[0].issuer, "https://", "")
}
