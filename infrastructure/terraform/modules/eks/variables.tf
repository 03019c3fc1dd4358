variable "cluster_name" {
  description = "Name of the EKS cluster (and prefix of its IAM roles, KMS alias and log group)."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes version of the control plane and the node group."
  type        = string
  default     = "1.31"
}

variable "subnet_ids" {
  description = "Private subnets of the control plane ENIs and the nodes (at least two zones)."
  type        = list(string)
}

variable "endpoint_public_access" {
  description = "Expose the API server endpoint publicly (restricted to public_access_cidrs); the private endpoint is always on."
  type        = bool
  default     = false
}

variable "public_access_cidrs" {
  description = "CIDRs allowed to reach the public API endpoint when it is enabled."
  type        = list(string)
  default     = []

  validation {
    condition     = !contains(var.public_access_cidrs, "0.0.0.0/0")
    error_message = "public_access_cidrs must not contain 0.0.0.0/0; list your own networks."
  }
}

variable "cluster_log_types" {
  description = "Control-plane log types sent to CloudWatch."
  type        = list(string)
  default     = ["api", "audit", "authenticator"]
}

variable "log_retention_days" {
  description = "Retention of the control-plane log group."
  type        = number
  default     = 30
}

variable "node_instance_types" {
  description = "Instance types of the managed node group."
  type        = list(string)
  default     = ["t3.large"]
}

variable "node_capacity_type" {
  description = "ON_DEMAND or SPOT."
  type        = string
  default     = "ON_DEMAND"

  validation {
    condition     = contains(["ON_DEMAND", "SPOT"], var.node_capacity_type)
    error_message = "node_capacity_type must be ON_DEMAND or SPOT."
  }
}

variable "node_min_size" {
  description = "Minimum nodes of the node group."
  type        = number
  default     = 2
}

variable "node_desired_size" {
  description = "Initial nodes of the node group (later changes by an autoscaler are ignored)."
  type        = number
  default     = 2
}

variable "node_max_size" {
  description = "Maximum nodes of the node group."
  type        = number
  default     = 4
}

variable "node_disk_size_gb" {
  description = "Root volume of each node (gp3, encrypted)."
  type        = number
  default     = 50
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
