variable "name" {
  description = "Name of the web ACL, e.g. anno-prod."
  type        = string
}

variable "rate_limit_per_5_minutes" {
  description = "Requests one client address may make in any 5 minutes before WAF answers 429. The highest plan allows 100/s (30,000 in 5 minutes): keep this above that."
  type        = number
  default     = 60000

  validation {
    condition     = var.rate_limit_per_5_minutes >= 100 && var.rate_limit_per_5_minutes <= 2000000000
    error_message = "WAF rate limits are between 100 and 2,000,000,000."
  }
}

variable "logs_kms_key_arn" {
  description = "KMS key of the WAF log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days WAF logs are kept."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
