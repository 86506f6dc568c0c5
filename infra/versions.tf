# Terraform and provider constraints. Plain resources only: registry modules cannot be downloaded in our CI, and the
# resources below are what the Helm values in deploy/ need, no more.
terraform {
  required_version = ">= 1.6.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }

  # State lives in a pre-existing, encrypted, versioned bucket; configure it at init time:
  #   terraform init -backend-config="bucket=..." -backend-config="key=mlops/terraform.tfstate" \
  #     -backend-config="region=..." -backend-config="use_lockfile=true"
  backend "s3" {}
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, {
      "app.kubernetes.io/part-of" = "mlops-assets"
      environment                 = var.environment
    })
  }
}
