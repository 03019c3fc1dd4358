variable "name" {
  description = "Name of the MSK cluster (and prefix of its security group, configuration, KMS alias, log group and secret)."
  type        = string
}

variable "kafka_version" {
  description = "Apache Kafka version of the brokers."
  type        = string
  default     = "3.6.0"
}

variable "vpc_id" {
  description = "VPC of the brokers' security group."
  type        = string
}

variable "subnet_ids" {
  description = "Private client subnets, one per zone (2 or 3); broker_count must be a multiple of their number."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Security groups allowed to connect to the SASL/SCRAM TLS listener (9096), e.g. the EKS cluster security group."
  type        = list(string)
}

variable "broker_count" {
  description = "Number of brokers (a multiple of the number of subnets)."
  type        = number
  default     = 3
}

variable "broker_instance_type" {
  description = "Broker instance type."
  type        = string
  default     = "kafka.m7g.large"
}

variable "broker_volume_size_gb" {
  description = "EBS volume of each broker, in GiB."
  type        = number
  default     = 100
}

variable "scram_username" {
  description = "SASL/SCRAM user created for Helios (operator and workers)."
  type        = string
  default     = "helios"
}

variable "server_properties" {
  description = "Broker properties merged over the module's defaults (auto.create.topics.enable=false, replication from broker_count, unclean.leader.election.enable=false)."
  type        = map(string)
  default     = {}
}

variable "enhanced_monitoring" {
  description = "MSK CloudWatch monitoring level: DEFAULT, PER_BROKER, PER_TOPIC_PER_BROKER or PER_TOPIC_PER_PARTITION."
  type        = string
  default     = "DEFAULT"
}

variable "log_retention_days" {
  description = "Retention of the broker log group."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
