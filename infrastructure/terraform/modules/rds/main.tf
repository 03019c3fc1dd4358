# RDS PostgreSQL for Helios' windows and anomalies: private (no public address, reachable on
# 5432 from the listed security groups only), encrypted at rest with a customer-managed KMS key,
# TLS enforced by the parameter group (require_tls), the master password generated and kept by
# RDS in Secrets Manager (never in Terraform state), automated backups, logs in CloudWatch.
#
# RDS has no TimescaleDB; the detect migrations fall back to native partitioning without it.

locals {
  major  = split(".", var.engine_version)[0]
  family = "postgres${local.major}"

  parameters = merge({
    "rds.force_ssl"              = var.require_tls ? "1" : "0"
    "shared_preload_libraries"   = "pg_stat_statements"
    "log_min_duration_statement" = "1000"
    "log_connections"            = "1"
    "log_disconnections"         = "1"
  }, var.parameters)

  # Static parameters only take effect after a reboot.
  static_parameters = ["shared_preload_libraries"]
}

resource "aws_kms_key" "db" {
  description             = "RDS ${var.name}: storage, snapshots, master secret, Performance Insights"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  tags                    = var.tags
}

resource "aws_kms_alias" "db" {
  name          = "alias/rds/${var.name}"
  target_key_id = aws_kms_key.db.key_id
}

resource "aws_db_subnet_group" "this" {
  name        = "${var.name}-private"
  description = "Private subnets of ${var.name}"
  subnet_ids  = var.subnet_ids
  tags        = var.tags
}

resource "aws_security_group" "db" {
  name        = "${var.name}-postgres"
  description = "PostgreSQL ${var.name}: 5432 from the listed client security groups only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-postgres" })
}

resource "aws_vpc_security_group_ingress_rule" "postgres" {
  count                        = length(var.client_security_group_ids)
  security_group_id            = aws_security_group.db.id
  description                  = "PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = var.client_security_group_ids[count.index]
  tags                         = var.tags
}

resource "aws_db_parameter_group" "this" {
  name_prefix = "${var.name}-"
  family      = local.family
  description = "Helios ${var.name}: TLS policy, pg_stat_statements, slow statement logging"
  tags        = var.tags

  dynamic "parameter" {
    for_each = local.parameters
    content {
      name         = parameter.key
      value        = parameter.value
      apply_method = contains(local.static_parameters, parameter.key) ? "pending-reboot" : "immediate"
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_db_instance" "this" {
  identifier     = var.name
  engine         = "postgres"
  engine_version = var.engine_version
  instance_class = var.instance_class

  db_name                       = var.database_name
  username                      = var.master_username
  manage_master_user_password   = true
  master_user_secret_kms_key_id = aws_kms_key.db.arn

  allocated_storage     = var.allocated_storage_gb
  max_allocated_storage = var.max_allocated_storage_gb > 0 ? var.max_allocated_storage_gb : null
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.db.arn

  multi_az               = var.multi_az
  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.db.id]
  publicly_accessible    = false
  parameter_group_name   = aws_db_parameter_group.this.name

  backup_retention_period   = var.backup_retention_days
  backup_window             = "02:00-03:00"
  maintenance_window        = "sun:03:30-sun:04:30"
  copy_tags_to_snapshot     = true
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = !var.deletion_protection
  final_snapshot_identifier = var.deletion_protection ? "${var.name}-final" : null

  auto_minor_version_upgrade          = true
  allow_major_version_upgrade         = false
  iam_database_authentication_enabled = false
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]

  performance_insights_enabled    = var.performance_insights
  performance_insights_kms_key_id = var.performance_insights ? aws_kms_key.db.arn : null

  tags = var.tags
}
