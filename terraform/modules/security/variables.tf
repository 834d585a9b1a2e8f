variable "name" {
  description = "Name of the trail and prefix of the buckets (suffixed with the account id), e.g. anno-prod."
  type        = string
}

variable "audit_kms_key_arn" {
  description = "KMS key of the trail's log files and both buckets; its policy must admit CloudTrail and S3 log delivery."
  type        = string
}

variable "logs_kms_key_arn" {
  description = "KMS key of the trail's CloudWatch log group."
  type        = string
}

variable "trail_retention_days" {
  description = "Days trail log files are kept (Glacier Instant Retrieval after 90)."
  type        = number
  default     = 730

  validation {
    condition     = var.trail_retention_days > 90
    error_message = "trail_retention_days must exceed the 90 days after which files move to Glacier Instant Retrieval."
  }
}

variable "access_log_retention_days" {
  description = "Days S3 server access logs are kept."
  type        = number
  default     = 365
}

variable "log_retention_days" {
  description = "Days the trail's CloudWatch Logs copy is kept."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
