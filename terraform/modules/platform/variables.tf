variable "environment" {
  description = "The environment's name (dev, staging, prod); every resource is named anno-<environment>."
  type        = string

  validation {
    # The name becomes the RDS identifier, the Redis replication group id and part of
    # S3 bucket names: lowercase letters, digits and single hyphens, short.
    condition     = can(regex("^[a-z][a-z0-9]*(-[a-z0-9]+)*$", var.environment)) && length(var.environment) <= 20
    error_message = "environment must be lowercase letters, digits and single hyphens, start with a letter, and be at most 20 characters."
  }
}

# Passed through from the operator's variables of the environment root (their
# defaults and descriptions are there); the network and eks modules validate them.

variable "availability_zones" {
  description = "Three zones of the provider's region for the subnets."
  type        = list(string)
}

variable "allowed_cidrs" {
  description = "Ranges that may reach the EKS API's public endpoint. Empty: private endpoint only."
  type        = list(string)
}

variable "admin_principal_arns" {
  description = "IAM roles given cluster-admin on EKS."
  type        = list(string)
}

# What differs between environments: capacity, and the decisions that trade cost for
# availability or safety. Every environment states each of them; terraform/README.md
# tabulates them.
variable "sizing" {
  description = "The environment's sizes and per-environment decisions."
  type = object({
    single_nat_gateway       = bool         # one NAT gateway for all zones instead of one per zone
    node_instance_types      = list(string) # the EKS node group's
    node_min_size            = number
    node_max_size            = number
    node_desired_size        = number
    db_instance_class        = string
    db_allocated_storage_gib = number
    db_max_storage_gib       = number # storage autoscaling ceiling
    db_multi_az              = bool
    db_backup_retention_days = number # 7 to 30
    db_deletion_protection   = bool   # without it a final snapshot is still taken
    cache_node_type          = string
    cache_nodes              = number # more than one: automatic failover and multi-AZ
    kms_deletion_window_days = number # 7 to 30
  })

  # Ranges the modules check themselves (node sizes, retention, deletion window, cache
  # nodes, rate limit) are not repeated here.
  validation {
    condition     = length(var.sizing.node_instance_types) > 0
    error_message = "sizing.node_instance_types must name at least one instance type."
  }

  validation {
    condition     = startswith(var.sizing.db_instance_class, "db.") && startswith(var.sizing.cache_node_type, "cache.")
    error_message = "sizing.db_instance_class must be an RDS class (db.*) and sizing.cache_node_type an ElastiCache node type (cache.*)."
  }

  validation {
    condition     = var.sizing.db_allocated_storage_gib >= 20 && var.sizing.db_max_storage_gib > var.sizing.db_allocated_storage_gib
    error_message = "sizing.db_allocated_storage_gib must be at least 20 (the gp3 minimum) and sizing.db_max_storage_gib above it (storage autoscaling ceiling)."
  }
}
