variable "release_name" {
  description = "Helm release name."
  type        = string
  default     = "helios"
}

variable "namespace" {
  description = "Namespace of the operator (and of its leader-election Lease)."
  type        = string
  default     = "helios-system"
}

variable "create_namespace" {
  description = "Create the namespace if it does not exist."
  type        = bool
  default     = true
}

variable "chart_path" {
  description = "Path (or repository chart reference) of the Helios chart; defaults to charts/helios of this repository."
  type        = string
  default     = null
}

variable "service_account_name" {
  description = "Name of the operator's ServiceAccount (fixed so the IRSA trust policy can name it)."
  type        = string
  default     = "helios-operator"
}

variable "image_repository" {
  description = "Operator (and default worker) image repository."
  type        = string
  default     = "ghcr.io/helios-dev/helios"
}

variable "image_tag" {
  description = "Image tag; empty uses the chart's appVersion."
  type        = string
  default     = ""
}

variable "replica_count" {
  description = "Operator replicas (one leads)."
  type        = number
  default     = 2
}

variable "watch_namespace" {
  description = "Reconcile only this namespace (namespaced RBAC); empty watches every namespace."
  type        = string
  default     = ""
}

variable "monitoring" {
  description = "Create the ServiceMonitor, PodMonitor and PrometheusRule (needs the Prometheus Operator CRDs)."
  type        = bool
  default     = false
}

variable "extra_values" {
  description = "Further chart values, merged over the ones this module sets."
  type        = any
  default     = {}
}

variable "oidc_provider_arn" {
  description = "ARN of the EKS cluster's IAM OIDC provider (for IRSA)."
  type        = string
}

variable "oidc_provider_url" {
  description = "Issuer URL of the EKS cluster's OIDC provider, with or without https://."
  type        = string
}

variable "report_function_arns" {
  description = "Report-hook Lambda functions the operator checks (GetFunction, DryRun Invoke) for ReportHookReady."
  type        = list(string)
  default     = []
}

variable "report_bucket_arns" {
  description = "Report buckets the operator checks (HeadBucket) for ReportHookReady."
  type        = list(string)
  default     = []
}

variable "detector_namespaces" {
  description = "Namespaces of the Detectors whose ServiceAccounts may assume the detector role (lambda:InvokeFunction on report_function_arns); empty creates no detector role."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags of the IAM resources."
  type        = map(string)
  default     = {}
}
