variable "name" {
  description = "Name prefix of the VPC and everything in it."
  type        = string
}

variable "cidr_block" {
  description = "CIDR of the VPC; split into /(prefix+4) subnets: private ones first, public ones from the 9th."
  type        = string
  default     = "10.0.0.0/16"
}

variable "az_count" {
  description = "Availability zones to spread the subnets over (MSK needs 2 or 3, RDS Multi-AZ at least 2)."
  type        = number
  default     = 3

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 6
    error_message = "az_count must be between 2 and 6 (EKS and DB subnet groups need two zones)."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all private subnets (cheaper, one zone of failure) instead of one per zone."
  type        = bool
  default     = false
}

variable "cluster_name" {
  description = "EKS cluster that uses the subnets (tags them for load balancers)."
  type        = string
}

variable "flow_log_retention_days" {
  description = "Retention of the VPC flow logs (rejected traffic) in CloudWatch; 0 disables flow logs."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
