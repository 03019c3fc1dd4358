# Development environment: small and cheap. One NAT gateway, two zones (the fewest EKS, MSK
# and a DB subnet group accept), two burstable Kafka brokers, a single-AZ db.t4g.micro without
# deletion protection and with one day of backups, a report bucket that `destroy` may empty.
#
#   cargo lambda build --release --arm64 -p helios-report --output-format zip
#   terraform init
#   terraform apply -target=module.eks -var bucket_name=my-helios-dev-reports
#   terraform apply -var bucket_name=my-helios-dev-reports
#
# The outputs are the values of the Helm release (already applied by module.helios) and of an
# AnomalyPipeline spec: `terraform output -raw anomaly_pipeline_spec`.

locals {
  name = "helios-${var.environment}"
}

module "network" {
  source = "../../modules/network"

  name                    = local.name
  cidr_block              = var.vpc_cidr
  az_count                = 2
  single_nat_gateway      = true
  cluster_name            = local.name
  flow_log_retention_days = 7
}

module "eks" {
  source = "../../modules/eks"

  cluster_name           = local.name
  kubernetes_version     = var.kubernetes_version
  subnet_ids             = module.network.private_subnet_ids
  endpoint_public_access = length(var.api_public_access_cidrs) > 0
  public_access_cidrs    = var.api_public_access_cidrs
  log_retention_days     = 7
  node_instance_types    = ["t3.large"]
  node_capacity_type     = "ON_DEMAND"
  node_min_size          = 1
  node_desired_size      = 2
  node_max_size          = 3
  node_disk_size_gb      = 30
}

module "msk" {
  source = "../../modules/msk"

  name                      = local.name
  vpc_id                    = module.network.vpc_id
  subnet_ids                = module.network.private_subnet_ids
  client_security_group_ids = [module.eks.cluster_security_group_id]
  broker_count              = 2
  broker_instance_type      = "kafka.t3.small"
  broker_volume_size_gb     = 20
  log_retention_days        = 7
}

module "rds" {
  source = "../../modules/rds"

  name                      = local.name
  vpc_id                    = module.network.vpc_id
  subnet_ids                = module.network.private_subnet_ids
  client_security_group_ids = [module.eks.cluster_security_group_id]
  instance_class            = "db.t4g.micro"
  allocated_storage_gb      = 20
  max_allocated_storage_gb  = 50
  multi_az                  = false
  backup_retention_days     = 1
  deletion_protection       = false
  # Helios connects with TLS (sqlx with rustls): put sslmode=require in the URL.
  require_tls = true
}

module "report_hook" {
  source = "../../modules/report-hook"

  name                  = "${local.name}-report"
  bucket_name           = var.bucket_name
  report_prefix         = "helios/reports"
  lambda_zip_path       = var.lambda_zip_path
  architecture          = "arm64"
  report_retention_days = 30
  log_retention_days    = 7
  force_destroy         = true
}

module "helios" {
  source = "../../modules/helios"

  namespace            = "helios-system"
  image_tag            = var.image_tag
  replica_count        = 1
  oidc_provider_arn    = module.eks.oidc_provider_arn
  oidc_provider_url    = module.eks.oidc_provider_url
  report_function_arns = [module.report_hook.function_arn]
  report_bucket_arns   = [module.report_hook.bucket_arn]
  detector_namespaces  = var.pipeline_namespaces

  extra_values = {
    extraEnv = [{ name = "AWS_REGION", value = var.region }]
  }

  depends_on = [module.eks]
}
