# Development: the same shape as production at the smallest sizes; one NAT gateway,
# one database instance, one cache node.

locals {
  environment = "dev"

  sizing = {
    single_nat_gateway       = true
    node_instance_types      = ["t3.large"]
    node_min_size            = 1
    node_max_size            = 10
    node_desired_size        = 2
    db_instance_class        = "db.t3.medium"
    db_allocated_storage_gib = 20
    db_max_storage_gib       = 100
    db_multi_az              = false
    db_backup_retention_days = 7
    db_deletion_protection   = false
    cache_node_type          = "cache.t3.micro"
    cache_nodes              = 1
    kms_deletion_window_days = 7
  }
}

module "platform" {
  # Checkov follows local.sizing into the rds module: these two are this environment's
  # decisions (prod's are checked).
  #checkov:skip=CKV_AWS_157:dev runs a single-AZ database (db_multi_az = false): a zone outage may stop it, for half the cost.
  #checkov:skip=CKV_AWS_293:dev's database may be destroyed with the environment (db_deletion_protection = false); a final snapshot is still taken.
  source = "../../modules/platform"

  environment          = local.environment
  sizing               = local.sizing
  availability_zones   = var.availability_zones
  allowed_cidrs        = var.allowed_cidrs
  admin_principal_arns = var.admin_principal_arns
}
