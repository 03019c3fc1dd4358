output "function_name" {
  description = "Name of the report Lambda (AnomalyPipeline spec.reporting.lambda.functionName)."
  value       = aws_lambda_function.report.function_name
}

output "function_arn" {
  description = "ARN of the report Lambda."
  value       = aws_lambda_function.report.arn
}

output "bucket_name" {
  description = "Bucket of the reports (spec.reporting.s3.bucket)."
  value       = aws_s3_bucket.reports.bucket
}

output "bucket_arn" {
  description = "ARN of the reports bucket."
  value       = aws_s3_bucket.reports.arn
}

output "report_prefix" {
  description = "Key prefix of the reports (spec.reporting.s3.prefix)."
  value       = var.report_prefix
}

output "role_arn" {
  description = "Execution role of the function."
  value       = aws_iam_role.function.arn
}
