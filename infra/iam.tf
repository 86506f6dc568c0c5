# IRSA roles with least privilege. Each role is assumable only by one service account in one namespace.
data "aws_iam_policy_document" "irsa_assume" {
  for_each = {
    code_location = "system:serviceaccount:${var.code_location_namespace}:${var.code_location_service_account}"
    serving       = "system:serviceaccount:${var.serving_namespace}:${var.serving_service_account}"
  }

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.eks.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:sub"
      values   = [each.value]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

# Code location (and its run pods): read/write under the pipeline's prefixes of the two buckets, nothing else.
data "aws_iam_policy_document" "code_location" {
  statement {
    sid     = "ListOwnPrefixes"
    actions = ["s3:ListBucket"]
    resources = [
      aws_s3_bucket.lake.arn,
      aws_s3_bucket.artefacts.arn,
    ]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values = concat(
        [for p in local.lake_prefixes : "${p}/*"],
        [for p in local.artefact_prefixes : "${p}/*"],
      )
    }
  }

  statement {
    sid = "ReadWriteOwnPrefixes"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
    ]
    resources = concat(
      [for p in local.lake_prefixes : "${aws_s3_bucket.lake.arn}/${p}/*"],
      [for p in local.artefact_prefixes : "${aws_s3_bucket.artefacts.arn}/${p}/*"],
    )
  }

  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.data.arn]
  }
}

# Serving: read-only on the model artefacts and the Feast registry.
data "aws_iam_policy_document" "serving" {
  statement {
    sid       = "ListServingPrefixes"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.artefacts.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [for p in local.serving_prefixes : "${p}/*"]
    }
  }

  statement {
    sid       = "ReadServingPrefixes"
    actions   = ["s3:GetObject"]
    resources = [for p in local.serving_prefixes : "${aws_s3_bucket.artefacts.arn}/${p}/*"]
  }

  statement {
    sid       = "DecryptDataKey"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.data.arn]
  }
}

resource "aws_iam_role" "code_location" {
  name               = "${local.name}-code-location"
  description        = "IRSA role of the mlops_assets code location and its run pods"
  assume_role_policy = data.aws_iam_policy_document.irsa_assume["code_location"].json
}

resource "aws_iam_role_policy" "code_location" {
  name   = "pipeline-storage"
  role   = aws_iam_role.code_location.id
  policy = data.aws_iam_policy_document.code_location.json
}

resource "aws_iam_role" "serving" {
  name               = "${local.name}-serving"
  description        = "IRSA role of the flight-delay-serving pods (read-only artefacts)"
  assume_role_policy = data.aws_iam_policy_document.irsa_assume["serving"].json
}

resource "aws_iam_role_policy" "serving" {
  name   = "artefacts-read-only"
  role   = aws_iam_role.serving.id
  policy = data.aws_iam_policy_document.serving.json
}
