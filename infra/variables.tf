variable "region" {
  description = "AWS region for every resource of the stack."
  type        = string
  default     = "eu-west-1"
}

variable "environment" {
  description = "Environment name, used in resource names and tags (e.g. prod, staging)."
  type        = string
  default     = "prod"
}

variable "name_prefix" {
  description = "Prefix of every resource name; bucket names also get the account id so they are globally unique."
  type        = string
  default     = "mlops"
}

variable "tags" {
  description = "Extra tags applied to every resource."
  type        = map(string)
  default     = {}
}

variable "vpc_id" {
  description = "Existing VPC that hosts the cluster, the database and Redis."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (at least two AZs) for EKS nodes, RDS and ElastiCache."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "Give at least two private subnets in different availability zones."
  }
}

variable "cluster_version" {
  description = "EKS Kubernetes version; the offline manifest validation in deploy/ targets the same minor."
  type        = string
  default     = "1.34"
}

variable "cluster_admin_role_arns" {
  description = "IAM roles granted cluster-admin through EKS access entries (the API is private: reach it via VPN/SSM)."
  type        = list(string)
  default     = []
}

variable "cpu_node_instance_types" {
  description = "Instance types of the CPU node group (Dagster, serving, Ray head)."
  type        = list(string)
  default     = ["m6i.xlarge"]
}

variable "cpu_node_scaling" {
  description = "Size of the CPU node group."
  type = object({
    min     = number
    desired = number
    max     = number
  })
  default = { min = 2, desired = 3, max = 6 }
}

variable "gpu_node_instance_types" {
  description = "Instance types of the GPU node group (Ray Tune sweeps)."
  type        = list(string)
  default     = ["g5.xlarge"]
}

variable "gpu_node_scaling" {
  description = "Size of the GPU node group; min 0 so it costs nothing between sweeps (with cluster-autoscaler/Karpenter)."
  type = object({
    min     = number
    desired = number
    max     = number
  })
  default = { min = 0, desired = 0, max = 2 }
}

variable "rds_instance_class" {
  description = "Instance class of the PostgreSQL instance (Dagster run storage and the MLflow backend)."
  type        = string
  default     = "db.t4g.medium"
}

variable "rds_allocated_storage_gb" {
  description = "Initial storage of the PostgreSQL instance; autoscaling may grow it to 4x."
  type        = number
  default     = 50
}

variable "rds_engine_version" {
  description = "PostgreSQL major version."
  type        = string
  default     = "16"
}

variable "rds_username" {
  description = "Master user name. The password is generated and kept in Secrets Manager by RDS itself."
  type        = string
  default     = "mlops_admin"
}

variable "redis_node_type" {
  description = "ElastiCache node type of the Feast online store."
  type        = string
  default     = "cache.t4g.medium"
}

variable "redis_auth_token" {
  description = "Redis AUTH token (16-128 chars). Pass it via TF_VAR_redis_auth_token from a secret store, never in a file."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.redis_auth_token) >= 16 && length(var.redis_auth_token) <= 128
    error_message = "The Redis AUTH token must be 16 to 128 characters long."
  }
}

variable "code_location_namespace" {
  description = "Namespace of the Dagster release (code location and run pods)."
  type        = string
  default     = "dagster"
}

variable "code_location_service_account" {
  description = "Service account of the code location and its run pods (dagster-values.yaml)."
  type        = string
  default     = "mlops-code-location"
}

variable "serving_namespace" {
  description = "Namespace of the flight-delay-serving release."
  type        = string
  default     = "serving"
}

variable "serving_service_account" {
  description = "Service account of the serving pods (chart value serviceAccount.name)."
  type        = string
  default     = "flight-delay-serving"
}

variable "log_retention_days" {
  description = "Retention of the EKS control-plane log group."
  type        = number
  default     = 365
}
