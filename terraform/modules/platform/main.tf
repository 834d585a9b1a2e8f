# One environment of the platform: the modules beside this one, wired together. Each
# environment root (terraform/environments/<env>) calls it once with its sizing and
# configures the providers and the state backend itself.

locals {
  name = "anno-${var.environment}"
}

module "kms" {
  source = "../kms"

  name                    = local.name
  deletion_window_in_days = var.sizing.kms_deletion_window_days
}

module "network" {
  source = "../network"

  name               = local.name
  cidr               = "10.0.0.0/16"
  availability_zones = var.availability_zones
  single_nat_gateway = var.sizing.single_nat_gateway
  logs_kms_key_arn   = module.kms.key_arns["logs"]
}

module "eks" {
  source = "../eks"

  name                 = local.name
  subnet_ids           = module.network.private_subnet_ids
  allowed_cidrs        = var.allowed_cidrs
  admin_principal_arns = var.admin_principal_arns
  secrets_kms_key_arn  = module.kms.key_arns["eks"]
  logs_kms_key_arn     = module.kms.key_arns["logs"]

  node_groups = {
    general = {
      instance_types = var.sizing.node_instance_types
      min_size       = var.sizing.node_min_size
      max_size       = var.sizing.node_max_size
      desired_size   = var.sizing.node_desired_size
    }
  }
}

module "rds" {
  source = "../rds"

  name                       = local.name
  vpc_id                     = module.network.vpc_id
  subnet_ids                 = module.network.private_subnet_ids
  allowed_security_group_ids = [module.eks.node_security_group_id]
  instance_class             = var.sizing.db_instance_class
  allocated_storage_gib      = var.sizing.db_allocated_storage_gib
  max_allocated_storage_gib  = var.sizing.db_max_storage_gib
  multi_az                   = var.sizing.db_multi_az
  backup_retention_days      = var.sizing.db_backup_retention_days
  deletion_protection        = var.sizing.db_deletion_protection
  kms_key_arn                = module.kms.key_arns["rds"]
}

module "elasticache" {
  source = "../elasticache"

  name                       = local.name
  vpc_id                     = module.network.vpc_id
  subnet_ids                 = module.network.private_subnet_ids
  allowed_security_group_ids = [module.eks.node_security_group_id]
  node_type                  = var.sizing.cache_node_type
  num_cache_clusters         = var.sizing.cache_nodes
  kms_key_arn                = module.kms.key_arns["elasticache"]
}

# The rate limit is the module's default, the same in every environment: it is set
# against the plans' limits, not the environment's size.
module "waf" {
  source = "../waf"

  name             = local.name
  logs_kms_key_arn = module.kms.key_arns["logs"]
}

module "security" {
  source = "../security"

  name              = local.name
  audit_kms_key_arn = module.kms.key_arns["audit"]
  logs_kms_key_arn  = module.kms.key_arns["logs"]
}
