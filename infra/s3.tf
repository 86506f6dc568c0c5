# Two buckets: the lake (landing zone + raw/dbt Parquet) and the artefacts (MLflow, Feast registry, bentos, drift).
# Each bucket has its own companion resources rather than a for_each: scanners (checkov's graph checks) and reviewers
# can then tie every control to its bucket by a plain reference.

########################################################################################################################
# Lake: landing zone, raw and dbt Parquet
########################################################################################################################
resource "aws_s3_bucket" "lake" {
  bucket = local.buckets.lake
  # Losing the lake is never a plan side effect.
  force_destroy = false
}

resource "aws_s3_bucket_ownership_controls" "lake" {
  bucket = aws_s3_bucket.lake.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "lake" {
  bucket                  = aws_s3_bucket.lake.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.data.arn
    }
    # S3 Bucket Keys cut KMS request costs for many small objects.
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_versioning" "lake" {
  bucket = aws_s3_bucket.lake.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id

  # Versioning keeps overwritten objects for recovery; old versions expire so re-runs do not grow the bucket forever.
  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = 30
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.lake]
}

# EventBridge notifications: object events can drive sensors or an audit trail without polling.
resource "aws_s3_bucket_notification" "lake" {
  bucket      = aws_s3_bucket.lake.id
  eventbridge = true
}

resource "aws_s3_bucket_policy" "lake" {
  bucket = aws_s3_bucket.lake.id
  policy = data.aws_iam_policy_document.tls_only["lake"].json

  depends_on = [aws_s3_bucket_public_access_block.lake]
}

########################################################################################################################
# Artefacts: MLflow artefacts, Feast registry, bentos, drift profiles
########################################################################################################################
resource "aws_s3_bucket" "artefacts" {
  bucket = local.buckets.artefacts
  # Losing the model registry's artefacts is never a plan side effect.
  force_destroy = false
}

resource "aws_s3_bucket_ownership_controls" "artefacts" {
  bucket = aws_s3_bucket.artefacts.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "artefacts" {
  bucket                  = aws_s3_bucket.artefacts.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "artefacts" {
  bucket = aws_s3_bucket.artefacts.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.data.arn
    }
    # S3 Bucket Keys cut KMS request costs for many small objects.
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_versioning" "artefacts" {
  bucket = aws_s3_bucket.artefacts.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "artefacts" {
  bucket = aws_s3_bucket.artefacts.id

  # Versioning keeps overwritten objects for recovery; old versions expire so re-runs do not grow the bucket forever.
  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = 90
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.artefacts]
}

# EventBridge notifications: object events can drive sensors or an audit trail without polling.
resource "aws_s3_bucket_notification" "artefacts" {
  bucket      = aws_s3_bucket.artefacts.id
  eventbridge = true
}

resource "aws_s3_bucket_policy" "artefacts" {
  bucket = aws_s3_bucket.artefacts.id
  policy = data.aws_iam_policy_document.tls_only["artefacts"].json

  depends_on = [aws_s3_bucket_public_access_block.artefacts]
}

########################################################################################################################
# TLS-only bucket policies
########################################################################################################################
data "aws_iam_policy_document" "tls_only" {
  for_each = {
    lake      = aws_s3_bucket.lake.arn
    artefacts = aws_s3_bucket.artefacts.arn
  }

  # Any request over plain HTTP is denied, whoever makes it.
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [each.value, "${each.value}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  # TLS 1.2 or later.
  statement {
    sid       = "DenyOutdatedTLS"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [each.value, "${each.value}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }
}
