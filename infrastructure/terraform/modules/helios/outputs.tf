output "release_name" {
  description = "Name of the Helm release."
  value       = helm_release.helios.name
}

output "namespace" {
  description = "Namespace of the operator."
  value       = helm_release.helios.namespace
}

output "operator_role_arn" {
  description = "IAM role of the operator's ServiceAccount (null when no report hook is checked)."
  value       = local.checks ? aws_iam_role.operator[0].arn : null
}

output "detector_role_arn" {
  description = "IAM role of the detectors' ServiceAccounts (workers.serviceAccountAnnotations; null without detector_namespaces or report functions)."
  value       = local.detectors ? aws_iam_role.detector[0].arn : null
}

output "chart_version" {
  description = "Version of the installed chart."
  value       = helm_release.helios.version
}
