variable "name" {
  description = "Prefix of every key's description and alias, e.g. anno-prod."
  type        = string
}

variable "deletion_window_in_days" {
  description = "Days a key waits, disabled, before it is deleted; a mistaken deletion can be cancelled until then."
  type        = number
  default     = 30

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30
    error_message = "KMS allows a deletion window of 7 to 30 days."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
