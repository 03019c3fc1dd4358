output "region" {
  description = "AWS region (spec.reporting.lambda.region, spec.reporting.s3.region)."
  value       = var.region
}

output "cluster_name" {
  description = "EKS cluster; `aws eks update-kubeconfig --name <cluster_name> --region <region>`."
  value       = module.eks.cluster_name
}

output "oidc_provider_arn" {
  description = "IAM OIDC provider of the cluster, for further IRSA roles (e.g. External Secrets)."
  value       = module.eks.oidc_provider_arn
}

output "kafka_bootstrap_servers" {
  description = "spec.kafka.bootstrapServers (SASL/SCRAM over TLS)."
  value       = module.msk.bootstrap_brokers_sasl_scram
}

output "kafka_sasl_mechanism" {
  description = "spec.kafka.sasl.mechanism."
  value       = module.msk.sasl_mechanism
}

output "kafka_scram_secret_arn" {
  description = "Secrets Manager secret with the SCRAM user ({username, password}) for the Kubernetes Secret of spec.kafka.sasl."
  value       = module.msk.scram_secret_arn
}

output "postgres_address" {
  description = "Host of the PostgreSQL URL of spec.storage.postgresSecretRef."
  value       = module.rds.address
}

output "postgres_port" {
  description = "Port of the PostgreSQL URL."
  value       = module.rds.port
}

output "postgres_database" {
  description = "Database of the PostgreSQL URL."
  value       = module.rds.database_name
}

output "postgres_secret_arn" {
  description = "Secrets Manager secret with the master user ({username, password}), rotated by RDS."
  value       = module.rds.master_user_secret_arn
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
  description = "IRSA role of the operator (Helm value serviceAccount.annotations)."
  value       = module.helios.operator_role_arn
}

output "detector_role_arn" {
  description = "IRSA role of the detectors (Helm value workers.serviceAccountAnnotations)."
  value       = module.helios.detector_role_arn
}

output "helm_values" {
  description = "The AWS-specific Helm values module.helios sets, for installing the chart another way (Argo CD, Flux)."
  value = yamlencode({
    serviceAccount = {
      annotations = { "eks.amazonaws.com/role-arn" = module.helios.operator_role_arn }
    }
    workers = {
      serviceAccountAnnotations = { "eks.amazonaws.com/role-arn" = module.helios.detector_role_arn }
    }
    extraEnv = [{ name = "AWS_REGION", value = var.region }]
  })
}

output "anomaly_pipeline_spec" {
  description = "The AWS part of an AnomalyPipeline spec. Create the Secrets it names in the pipeline's namespace from kafka_scram_secret_arn (keys username, password) and postgres_secret_arn (key url = postgres://USER:PASSWORD@postgres_address:postgres_port/postgres_database)."
  value = yamlencode({
    kafka = {
      bootstrapServers = module.msk.bootstrap_brokers_sasl_scram
      tls              = { enabled = true }
      sasl = {
        mechanism         = module.msk.sasl_mechanism
        usernameSecretRef = { name = "helios-kafka", key = "username" }
        passwordSecretRef = { name = "helios-kafka", key = "password" }
      }
    }
    storage = {
      postgresSecretRef = { name = "helios-postgres", key = "url" }
    }
    reporting = {
      lambda = { functionName = module.report_hook.function_name, region = var.region }
      s3     = { bucket = module.report_hook.bucket_name, prefix = module.report_hook.report_prefix, region = var.region }
    }
  })
}
