variable "environment" {
  description = "Name of the environment (tags, resource names)."
  type        = string
  default     = "dev"
}

variable "region" {
  description = "AWS region of everything."
  type        = string
  default     = "eu-west-1"
}

variable "vpc_cidr" {
  description = "CIDR of the VPC."
  type        = string
  default     = "10.20.0.0/16"
}

variable "kubernetes_version" {
  description = "Kubernetes version of the EKS cluster."
  type        = string
  default     = "1.31"
}

variable "api_public_access_cidrs" {
  description = "CIDRs that may reach the EKS API endpoint publicly (e.g. your office or CI egress); empty keeps the endpoint private."
  type        = list(string)
  default     = []
}

variable "bucket_name" {
  description = "Name of the reports bucket to create (globally unique)."
  type        = string
}

variable "lambda_zip_path" {
  description = "The report hook's zip (cargo lambda build --release --arm64 -p helios-report --output-format zip)."
  type        = string
  default     = "../../../../target/lambda/helios-report/bootstrap.zip"
}

variable "image_tag" {
  description = "Helios image tag; empty uses the chart's appVersion."
  type        = string
  default     = ""
}

variable "pipeline_namespaces" {
  description = "Namespaces where AnomalyPipelines and Detectors live; their detector ServiceAccounts may invoke the report Lambda."
  type        = list(string)
  default     = ["helios"]
}
