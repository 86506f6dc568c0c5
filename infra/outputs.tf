# Each output names the Helm value or environment variable it feeds (deploy/README.md, "Values from Terraform").

output "lake_bucket_name" {
  description = "MLOPS_LAKE_ROOT=s3://<this>/lake (dagster-values.yaml, serving values env)."
  value       = aws_s3_bucket.lake.id
}

output "artefacts_bucket_name" {
  description = "MLOPS_MLFLOW_ARTIFACT_ROOT=s3://<this>/mlflow and MLOPS_FEAST_REGISTRY=s3://<this>/feast/registry.db."
  value       = aws_s3_bucket.artefacts.id
}

output "rds_address" {
  description = "dagster-values.yaml postgresql.postgresqlHost; also the MLflow backend host."
  value       = aws_db_instance.this.address
}

output "rds_endpoint" {
  description = "host:port of the PostgreSQL instance."
  value       = aws_db_instance.this.endpoint
}

output "rds_master_secret_arn" {
  description = "Secrets Manager secret with the generated master password (read it to create the Kubernetes secret)."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "redis_primary_endpoint" {
  description = "Host of MLOPS_FEAST_ONLINE_STORE=rediss://:<token>@<this>:6379/0 (secret mlops-production-env)."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "code_location_role_arn" {
  description = "dagster-values.yaml: serviceAccount annotations eks.amazonaws.com/role-arn."
  value       = aws_iam_role.code_location.arn
}

output "serving_role_arn" {
  description = "flight-delay-serving values: serviceAccount.annotations.\"eks.amazonaws.com/role-arn\"."
  value       = aws_iam_role.serving.arn
}

output "cluster_name" {
  description = "aws eks update-kubeconfig --name <this>."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "Private API endpoint of the cluster."
  value       = aws_eks_cluster.this.endpoint
}

output "oidc_provider_arn" {
  description = "IAM OIDC provider for further IRSA roles (e.g. the KubeRay workers, if they read S3 directly)."
  value       = aws_iam_openid_connect_provider.eks.arn
}
