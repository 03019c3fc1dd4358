# Production environment: three zones with a NAT gateway each, a private EKS API endpoint
# (public only for api_public_access_cidrs), larger on-demand nodes, three MSK brokers with
# replication factor 3 and min.insync.replicas 2, a Multi-AZ PostgreSQL with deletion
# protection, a final snapshot, 14 days of backups and Performance Insights, and longer log and
# report retention. Nothing here can be destroyed by accident: the database refuses deletion
# and the report bucket refuses to be emptied.
#
#   cargo lambda build --release --arm64 -p helios-report --output-format zip
#   terraform init
#   terraform apply -target=module.eks -var bucket_name=my-helios-reports
#   terraform apply -var bucket_name=my-helios-reports
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
  az_count                = 3
  single_nat_gateway      = false
  cluster_name            = local.name
  flow_log_retention_days = 90
}

module "eks" {
  source = "../../modules/eks"

  cluster_name           = local.name
  kubernetes_version     = var.kubernetes_version
  subnet_ids             = module.network.private_subnet_ids
  endpoint_public_access = length(var.api_public_access_cidrs) > 0
  public_access_cidrs    = var.api_public_access_cidrs
  cluster_log_types      = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
  log_retention_days     = 90
  node_instance_types    = ["m6i.xlarge"]
  node_capacity_type     = "ON_DEMAND"
  node_min_size          = 3
  node_desired_size      = 3
  node_max_size          = 9
  node_disk_size_gb      = 100
}

module "msk" {
  source = "../../modules/msk"

  name                      = local.name
  vpc_id                    = module.network.vpc_id
  subnet_ids                = module.network.private_subnet_ids
  client_security_group_ids = [module.eks.cluster_security_group_id]
  broker_count              = 3
  broker_instance_type      = "kafka.m7g.large"
  broker_volume_size_gb     = 500
  enhanced_monitoring       = "PER_TOPIC_PER_BROKER"
  log_retention_days        = 90
}

module "rds" {
  source = "../../modules/rds"

  name                      = local.name
  vpc_id                    = module.network.vpc_id
  subnet_ids                = module.network.private_subnet_ids
  client_security_group_ids = [module.eks.cluster_security_group_id]
  instance_class            = "db.r7g.large"
  allocated_storage_gb      = 200
  max_allocated_storage_gb  = 1000
  multi_az                  = true
  backup_retention_days     = 14
  deletion_protection       = true
  performance_insights      = true
  # Helios connects with TLS (sqlx with rustls): put sslmode=require in the URL.
  require_tls = true
}

module "report_hook" {
  source = "../../modules/report-hook"

  name                         = "${local.name}-report"
  bucket_name                  = var.bucket_name
  report_prefix                = "helios/reports"
  lambda_zip_path              = var.lambda_zip_path
  architecture                 = "arm64"
  report_retention_days        = 730
  infrequent_access_after_days = 30
  log_retention_days           = 90
  force_destroy                = false
}

module "helios" {
  source = "../../modules/helios"

  namespace            = "helios-system"
  image_tag            = var.image_tag
  replica_count        = 2
  monitoring           = var.monitoring
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
