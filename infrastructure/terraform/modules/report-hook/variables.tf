variable "name" {
  description = "Name of the Lambda function and prefix of the IAM role and log group."
  type        = string
  default     = "helios-report"
}

variable "bucket_name" {
  description = "Name of the S3 bucket the reports are written to (created by this module)."
  type        = string
}

variable "report_prefix" {
  description = "Key prefix of the reports inside the bucket; the function may write under it only."
  type        = string
  default     = "helios/reports"

  validation {
    condition     = !startswith(var.report_prefix, "/") && !endswith(var.report_prefix, "/")
    error_message = "report_prefix must not start or end with a slash."
  }
}

variable "lambda_zip_path" {
  description = "Path of the zip holding `bootstrap`, built with `cargo lambda build --release -p helios-report --output-format zip` (runtime provided.al2023)."
  type        = string
}

variable "architecture" {
  description = "Lambda architecture the bootstrap was built for: arm64 (`cargo lambda build --arm64`) or x86_64."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "memory_size" {
  description = "Memory of the function, in MB (CPU scales with it; chart rendering is the heaviest step)."
  type        = number
  default     = 512
}

variable "timeout_seconds" {
  description = "Function timeout; at least 2 x the LLM timeout + 5 s when an LLM narrative is configured."
  type        = number
  default     = 30
}

variable "environment" {
  description = "Extra environment variables of the function (e.g. RUST_LOG, DATABASE_URL for similar anomalies)."
  type        = map(string)
  default     = {}
}

variable "report_retention_days" {
  description = "Days after which report objects expire (0 keeps them forever)."
  type        = number
  default     = 365
}

variable "infrequent_access_after_days" {
  description = "Days after which report objects move to STANDARD_IA (0 disables the transition)."
  type        = number
  default     = 30
}

variable "kms_key_arn" {
  description = "KMS key for bucket encryption (SSE-KMS); null uses SSE-S3 (AES256)."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Retention of the function's CloudWatch log group."
  type        = number
  default     = 30
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete a bucket that still holds reports."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
