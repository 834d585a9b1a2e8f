# Production: every tier spread over three zones, with room to grow.

locals {
  environment = "prod"

  sizing = {
    single_nat_gateway       = false
    node_instance_types      = ["m6i.xlarge"]
    node_min_size            = 3
    node_max_size            = 100
    node_desired_size        = 3
    db_instance_class        = "db.r5.xlarge"
    db_allocated_storage_gib = 200
    db_max_storage_gib       = 2000
    db_multi_az              = true
    db_backup_retention_days = 30
    db_deletion_protection   = true
    cache_node_type          = "cache.r6g.large"
    cache_nodes              = 2
    kms_deletion_window_days = 30
  }
}

module "platform" {
  source = "../../modules/platform"

  environment          = local.environment
  sizing               = local.sizing
  availability_zones   = var.availability_zones
  allowed_cidrs        = var.allowed_cidrs
  admin_principal_arns = var.admin_principal_arns
}
