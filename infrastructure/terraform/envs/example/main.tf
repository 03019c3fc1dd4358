# Example environment: Helios on an existing EKS cluster, with its report hook.
#
#   cargo lambda build --release --arm64 -p helios-report --output-format zip
#   terraform init && terraform apply -var cluster_name=my-eks -var bucket_name=my-helios-reports
#
# Then reference the outputs in an AnomalyPipeline:
#   spec.reporting.lambda.functionName = report_function_name, .region = region
#   spec.reporting.s3.bucket = report_bucket, .prefix = report_prefix

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40, < 7.0"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "~> 2.17"
    }
  }
}

variable "region" {
  description = "AWS region of the cluster and the report hook."
  type        = string
  default     = "eu-west-1"
}

variable "cluster_name" {
  description = "Name of the existing EKS cluster (with an IAM OIDC provider for IRSA)."
  type        = string
}

variable "bucket_name" {
  description = "Name of the reports bucket to create (globally unique)."
  type        = string
}

variable "lambda_zip_path" {
  description = "The report hook's zip (cargo lambda build --output-format zip)."
  type        = string
  default     = "../../../../target/lambda/helios-report/bootstrap.zip"
}

variable "image_tag" {
  description = "Helios image tag; empty uses the chart's appVersion."
  type        = string
  default     = ""
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      "app.kubernetes.io/part-of" = "helios"
    }
  }
}

data "aws_eks_cluster" "this" {
  name = var.cluster_name
}

data "aws_eks_cluster_auth" "this" {
  name = var.cluster_name
}

data "aws_iam_openid_connect_provider" "this" {
  url = data.aws_eks_cluster.this.identity[0].oidc[0].issuer
}

provider "helm" {
  kubernetes {
    host                   = data.aws_eks_cluster.this.endpoint
    cluster_ca_certificate = base64decode(data.aws_eks_cluster.this.certificate_authority[0].data)
    token                  = data.aws_eks_cluster_auth.this.token
  }
}

module "report_hook" {
  source = "../../modules/report-hook"

  name            = "helios-report"
  bucket_name     = var.bucket_name
  report_prefix   = "helios/reports"
  lambda_zip_path = var.lambda_zip_path
  architecture    = "arm64"
}

module "helios" {
  source = "../../modules/helios"

  namespace            = "helios-system"
  image_tag            = var.image_tag
  oidc_provider_arn    = data.aws_iam_openid_connect_provider.this.arn
  oidc_provider_url    = data.aws_eks_cluster.this.identity[0].oidc[0].issuer
  report_function_arns = [module.report_hook.function_arn]
  report_bucket_arns   = [module.report_hook.bucket_arn]
}

output "region" {
  description = "spec.reporting.lambda.region and spec.reporting.s3.region."
  value       = var.region
}

output "report_function_name" {
  description = "spec.reporting.lambda.functionName."
  value       = module.report_hook.function_name
}

output "report_bucket" {
  description = "spec.reporting.s3.bucket."
  value       = module.report_hook.bucket_name
}

output "report_prefix" {
  description = "spec.reporting.s3.prefix."
  value       = module.report_hook.report_prefix
}

output "operator_role_arn" {
  description = "IAM role assumed by the operator through IRSA."
  value       = module.helios.operator_role_arn
}
