# The platform's outputs under the same names; their descriptions, and what each feeds
# in the Helm chart, are in modules/platform/outputs.tf and terraform/README.md.

output "cluster_name" { value = module.platform.cluster_name }
output "cluster_endpoint" { value = module.platform.cluster_endpoint }
output "oidc_provider_arn" { value = module.platform.oidc_provider_arn }
output "database_endpoint" { value = module.platform.database_endpoint }
output "database_name" { value = module.platform.database_name }
output "database_secret_arn" { value = module.platform.database_secret_arn }
output "redis_primary_endpoint" { value = module.platform.redis_primary_endpoint }
output "redis_auth_secret_arn" { value = module.platform.redis_auth_secret_arn }
output "waf_acl_arn" { value = module.platform.waf_acl_arn }
output "vpc_cidr" { value = module.platform.vpc_cidr }
output "cluster_cidrs" { value = module.platform.cluster_cidrs }
output "private_subnet_cidrs" { value = module.platform.private_subnet_cidrs }
output "public_subnet_cidrs" { value = module.platform.public_subnet_cidrs }
output "nat_public_ips" { value = module.platform.nat_public_ips }
output "helm_values" { value = module.platform.helm_values }
