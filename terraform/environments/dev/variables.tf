variable "region" {
  description = "AWS region of the environment (the state bucket's region is in the backend block)."
  type        = string
  default     = "us-east-1"
}

variable "availability_zones" {
  description = "Three zones of var.region for the subnets (named, so that subnets never move)."
  type        = list(string)
  default     = ["us-east-1a", "us-east-1b", "us-east-1c"]
}

variable "allowed_cidrs" {
  description = "Ranges that may reach the EKS API's public endpoint (operators, CI). Empty: private endpoint only."
  type        = list(string)
  default     = []
}

variable "admin_principal_arns" {
  description = "IAM roles given cluster-admin on EKS (the CD role that runs helm, operators' roles); not the one running Terraform, which is admin already."
  type        = list(string)
  default     = []
}
