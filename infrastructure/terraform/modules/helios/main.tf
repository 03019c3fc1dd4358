# The Helios operator on EKS: the Helm release of charts/helios, and IAM roles for service
# accounts (IRSA):
# - the operator's, allowing exactly the report-hook checks it makes: GetFunction and a DryRun
#   Invoke on the listed functions, HeadBucket (s3:ListBucket) on the listed buckets;
# - the detectors', allowing lambda:InvokeFunction on the listed functions only, trusted by the
#   ServiceAccounts the operator creates per Detector (`<detector>-detect`) in the listed
#   namespaces, and set on them through the chart's workers.serviceAccountAnnotations.

locals {
  oidc_host = replace(var.oidc_provider_url, "https://", "")
  chart     = coalesce(var.chart_path, "${path.module}/../../../../charts/helios")
  checks    = length(var.report_function_arns) + length(var.report_bucket_arns) > 0
  detectors = length(var.report_function_arns) > 0 && length(var.detector_namespaces) > 0

  values = {
    replicaCount   = var.replica_count
    watchNamespace = var.watch_namespace
    image = {
      repository = var.image_repository
      tag        = var.image_tag
    }
    serviceAccount = {
      create = true
      name   = var.service_account_name
      annotations = local.checks ? {
        "eks.amazonaws.com/role-arn" = aws_iam_role.operator[0].arn
      } : {}
    }
    rbac = { workerIdentities = true }
    workers = {
      serviceAccountAnnotations = local.detectors ? {
        "eks.amazonaws.com/role-arn" = aws_iam_role.detector[0].arn
      } : {}
    }
    serviceMonitor = { enabled = var.monitoring }
    podMonitor     = { enabled = var.monitoring }
    prometheusRule = { enabled = var.monitoring }
  }
}

data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:sub"
      values   = ["system:serviceaccount:${var.namespace}:${var.service_account_name}"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "operator" {
  count              = local.checks ? 1 : 0
  name               = "${var.release_name}-operator"
  assume_role_policy = data.aws_iam_policy_document.trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "operator" {
  dynamic "statement" {
    for_each = length(var.report_function_arns) > 0 ? [1] : []
    content {
      sid = "CheckReportHook"
      # InvokeFunction is needed for InvocationType=DryRun (AWS has no separate action for it).
      actions   = ["lambda:GetFunction", "lambda:InvokeFunction"]
      resources = var.report_function_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.report_bucket_arns) > 0 ? [1] : []
    content {
      sid = "CheckReportBucket"
      # HeadBucket is authorised by s3:ListBucket.
      actions   = ["s3:ListBucket"]
      resources = var.report_bucket_arns
    }
  }
}

resource "aws_iam_role_policy" "operator" {
  count  = local.checks ? 1 : 0
  name   = "${var.release_name}-report-hook-checks"
  role   = aws_iam_role.operator[0].id
  policy = data.aws_iam_policy_document.operator.json
}

# ---- detectors: invoke the report hook ------------------------------------------------------

data "aws_iam_policy_document" "detector_trust" {
  count = local.detectors ? 1 : 0

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }

    # The operator names each detector's ServiceAccount `<detector>-detect` (names longer than
    # 52 characters are shortened with a hash and would not match).
    condition {
      test     = "StringLike"
      variable = "${local.oidc_host}:sub"
      values   = [for ns in var.detector_namespaces : "system:serviceaccount:${ns}:*-detect"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "detector" {
  count              = local.detectors ? 1 : 0
  name               = "${var.release_name}-detector"
  assume_role_policy = data.aws_iam_policy_document.detector_trust[0].json
  tags               = var.tags
}

data "aws_iam_policy_document" "detector" {
  count = local.detectors ? 1 : 0

  statement {
    sid       = "InvokeReportHook"
    actions   = ["lambda:InvokeFunction"]
    resources = var.report_function_arns
  }
}

resource "aws_iam_role_policy" "detector" {
  count  = local.detectors ? 1 : 0
  name   = "${var.release_name}-invoke-report-hook"
  role   = aws_iam_role.detector[0].id
  policy = data.aws_iam_policy_document.detector[0].json
}

# ---- release ----------------------------------------------------------------------------------

resource "helm_release" "helios" {
  name             = var.release_name
  namespace        = var.namespace
  create_namespace = var.create_namespace
  chart            = local.chart
  atomic           = true
  wait             = true
  timeout          = 300

  values = [
    yamlencode(local.values),
    yamlencode(var.extra_values),
  ]

  depends_on = [aws_iam_role_policy.operator, aws_iam_role_policy.detector]
}
