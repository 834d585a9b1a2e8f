variable "name" {
  description = "The cluster's name, also the prefix of its IAM roles and log group."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane and the node groups."
  type        = string
  default     = "1.33"
}

variable "subnet_ids" {
  description = "Private subnets for the control plane's network interfaces and the nodes."
  type        = list(string)
}

variable "service_cidr" {
  description = "Range of Kubernetes Service addresses; must not overlap the VPC."
  type        = string
  default     = "172.20.0.0/16"
}

variable "allowed_cidrs" {
  description = "Ranges that may reach the public API endpoint (operators, CI). Empty: no public endpoint."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.allowed_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "allowed_cidrs must be CIDRs, and not 0.0.0.0/0."
  }
}

variable "admin_principal_arns" {
  description = "IAM roles or users given cluster-admin through EKS access entries (e.g. the CD role). Not the principal running Terraform: it is made admin when the cluster is created."
  type        = list(string)
  default     = []
}

variable "secrets_kms_key_arn" {
  description = "KMS key that envelope-encrypts Kubernetes Secrets."
  type        = string
}

variable "logs_kms_key_arn" {
  description = "KMS key of the control-plane log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days control-plane logs are kept."
  type        = number
  default     = 365
}

variable "node_groups" {
  description = "Managed node groups by name: instance types and the autoscaling range."
  type = map(object({
    instance_types = list(string)
    min_size       = number
    max_size       = number
    desired_size   = number
    capacity_type  = optional(string, "ON_DEMAND")
    ami_type       = optional(string, "AL2023_x86_64_STANDARD")
    disk_size_gib  = optional(number, 50)
    labels         = optional(map(string), {})
  }))

  validation {
    condition     = alltrue([for g in values(var.node_groups) : g.min_size <= g.desired_size && g.desired_size <= g.max_size])
    error_message = "Each node group needs min_size <= desired_size <= max_size."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
