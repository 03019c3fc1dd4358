output "cluster_arn" {
  description = "ARN of the MSK cluster."
  value       = aws_msk_cluster.this.arn
}

output "cluster_name" {
  description = "Name of the MSK cluster."
  value       = aws_msk_cluster.this.cluster_name
}

output "bootstrap_brokers_sasl_scram" {
  description = "SASL/SCRAM TLS bootstrap servers (AnomalyPipeline spec.kafka.bootstrapServers)."
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_scram
}

output "sasl_mechanism" {
  description = "spec.kafka.sasl.mechanism to use with these brokers."
  value       = "SCRAM-SHA-512"
}

output "scram_secret_arn" {
  description = "Secrets Manager secret with the Helios SCRAM user ({username, password}); copy it into the Kubernetes Secret named by spec.kafka.sasl."
  value       = aws_secretsmanager_secret.scram.arn
}

output "scram_username" {
  description = "SCRAM user name of Helios."
  value       = var.scram_username
}

output "security_group_id" {
  description = "Security group of the brokers."
  value       = aws_security_group.brokers.id
}

output "kms_key_arn" {
  description = "KMS key of the data at rest and of the SCRAM secret (reading the secret needs kms:Decrypt on it)."
  value       = aws_kms_key.msk.arn
}
