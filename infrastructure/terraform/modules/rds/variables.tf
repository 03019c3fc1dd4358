variable "name" {
  description = "Identifier of the DB instance (and prefix of its subnet group, parameter group, security group and KMS alias)."
  type        = string
}

variable "engine_version" {
  description = "PostgreSQL major (or major.minor) version; the parameter group family follows the major."
  type        = string
  default     = "16"
}

variable "vpc_id" {
  description = "VPC of the database's security group."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the DB subnet group (at least two zones)."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Security groups allowed to connect on 5432, e.g. the EKS cluster security group."
  type        = list(string)
}

variable "instance_class" {
  description = "DB instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "allocated_storage_gb" {
  description = "Initial storage (gp3), in GiB."
  type        = number
  default     = 20
}

variable "max_allocated_storage_gb" {
  description = "Storage autoscaling ceiling, in GiB (0 disables autoscaling)."
  type        = number
  default     = 100
}

variable "multi_az" {
  description = "Run a synchronous standby in a second zone."
  type        = bool
  default     = false
}

variable "database_name" {
  description = "Database created for Helios."
  type        = string
  default     = "helios"
}

variable "master_username" {
  description = "Master user; its password is generated and rotated by RDS in Secrets Manager."
  type        = string
  default     = "helios"
}

variable "backup_retention_days" {
  description = "Days of automated backups (0 disables them; point-in-time recovery needs at least 1)."
  type        = number
  default     = 7
}

variable "deletion_protection" {
  description = "Refuse to delete the instance, and take a final snapshot when it is deleted anyway."
  type        = bool
  default     = true
}

variable "performance_insights" {
  description = "Enable Performance Insights (encrypted with the module's key; 7 days free retention)."
  type        = bool
  default     = false
}

variable "require_tls" {
  description = "Refuse unencrypted connections (rds.force_ssl=1). Needs clients that speak TLS to PostgreSQL; see the README for Helios' build."
  type        = bool
  default     = true
}

variable "parameters" {
  description = "Extra DB parameters (name => value), merged over the module's (rds.force_ssl from require_tls, pg_stat_statements, slow-statement logging)."
  type        = map(string)
  default     = {}
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
