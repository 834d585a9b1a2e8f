variable "name" {
  description = "Identifier of the instance and prefix of its companions, e.g. anno-prod."
  type        = string
}

variable "vpc_id" {
  description = "The VPC of the database's security group."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the DB subnet group (three zones)."
  type        = list(string)
}

variable "allowed_security_group_ids" {
  description = "Security groups admitted on port 5432: the EKS nodes'."
  type        = list(string)
}

variable "engine_version" {
  description = "PostgreSQL version; a major version alone lets RDS apply minor upgrades."
  type        = string
  default     = "16"

  validation {
    condition     = split(".", var.engine_version)[0] == "16"
    error_message = "The platform runs PostgreSQL 16 (the parameter group family is postgres16)."
  }
}

variable "instance_class" {
  description = "Instance class, e.g. db.r5.xlarge."
  type        = string
}

variable "allocated_storage_gib" {
  description = "Initial storage."
  type        = number
  default     = 100
}

variable "max_allocated_storage_gib" {
  description = "Storage autoscaling ceiling."
  type        = number
  default     = 1000
}

variable "database_name" {
  description = "The database the services share (each in its own schema)."
  type        = string
  default     = "anno"
}

variable "master_username" {
  description = "The master user; its password is generated and kept by RDS in Secrets Manager."
  type        = string
  default     = "anno"
}

variable "multi_az" {
  description = "A synchronous standby in another zone, with automatic failover."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "Days automated backups (and point-in-time recovery) reach back."
  type        = number
  default     = 7

  validation {
    condition     = var.backup_retention_days >= 7 && var.backup_retention_days <= 30
    error_message = "backup_retention_days must be between 7 and 30."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the instance until this is turned off."
  type        = bool
  default     = true
}

variable "log_min_duration_statement_ms" {
  description = "Statements slower than this are logged with their text."
  type        = number
  default     = 1000
}

variable "kms_key_arn" {
  description = "KMS key for storage, Performance Insights and the master user secret."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
