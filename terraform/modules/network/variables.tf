variable "name" {
  description = "Name prefix of every resource, e.g. anno-prod."
  type        = string
}

variable "cidr" {
  description = "The VPC's address range; subnets are carved from it (a /16 is expected)."
  type        = string
  default     = "10.0.0.0/16"

  validation {
    condition     = can(cidrhost(var.cidr, 0)) && tonumber(split("/", var.cidr)[1]) <= 16
    error_message = "cidr must be an IPv4 CIDR of /16 or larger, so three /19 private subnets and three /24 public ones fit."
  }
}

variable "availability_zones" {
  description = "The three zones of the subnets, e.g. [\"us-east-1a\", \"us-east-1b\", \"us-east-1c\"]."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) == 3 && length(distinct(var.availability_zones)) == 3
    error_message = "availability_zones must name three different zones."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all three zones (cheaper, one zone's outage cuts egress) instead of one per zone."
  type        = bool
  default     = false
}

variable "logs_kms_key_arn" {
  description = "KMS key encrypting the flow log group; its policy must let CloudWatch Logs use it."
  type        = string
}

variable "flow_log_retention_days" {
  description = "Days flow logs are kept."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
