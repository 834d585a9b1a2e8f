variable "name" {
  description = "Replication group id and prefix of its companions, e.g. anno-prod."
  type        = string
}

variable "vpc_id" {
  description = "The VPC of the cache's security group."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the cache subnet group (three zones)."
  type        = list(string)
}

variable "allowed_security_group_ids" {
  description = "Security groups admitted on port 6379: the EKS nodes'."
  type        = list(string)
}

variable "node_type" {
  description = "Node type, e.g. cache.r6g.large."
  type        = string
}

variable "num_cache_clusters" {
  description = "Nodes: a primary and num_cache_clusters - 1 replicas. More than one turns on automatic failover and multi-AZ."
  type        = number
  default     = 2

  validation {
    condition     = var.num_cache_clusters >= 1 && var.num_cache_clusters <= 6
    error_message = "num_cache_clusters must be between 1 and 6."
  }
}

variable "engine_version" {
  description = "Redis version."
  type        = string
  default     = "7.1"
}

variable "parameter_group_name" {
  description = "Parameter group matching engine_version."
  type        = string
  default     = "default.redis7"
}

variable "snapshot_retention_days" {
  description = "Days daily snapshots are kept (0: none)."
  type        = number
  default     = 7
}

variable "kms_key_arn" {
  description = "KMS key for data at rest and the AUTH token secret."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
