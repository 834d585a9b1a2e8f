# What the Helm release and the operators need; terraform/README.md maps each to the
# chart's values. Each environment root forwards every one of these under the same name.

output "cluster_name" {
  description = "EKS cluster name: aws eks update-kubeconfig --name <this>."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = module.eks.cluster_endpoint
}

output "oidc_provider_arn" {
  description = "IAM OIDC provider for IRSA roles (the AWS Load Balancer Controller's, for one)."
  value       = module.eks.oidc_provider_arn
}

output "database_endpoint" {
  description = "PostgreSQL host:port, for the database URL in the Secret named by secrets.databaseUrl.existingSecret."
  value       = module.rds.endpoint
}

output "database_name" {
  description = "PostgreSQL database name."
  value       = module.rds.database_name
}

output "database_secret_arn" {
  description = "Secrets Manager secret with the database's master credentials (JSON username, password; rotated by RDS)."
  value       = module.rds.master_user_secret_arn
}

output "redis_primary_endpoint" {
  description = "Redis primary hostname (TLS, port 6379)."
  value       = module.elasticache.primary_endpoint_address
}

output "redis_auth_secret_arn" {
  description = "Secrets Manager secret with the Redis AUTH token and its rediss:// URL (JSON auth_token, host, port, url)."
  value       = module.elasticache.auth_token_secret_arn
}

output "waf_acl_arn" {
  description = "WAF web ACL: ingress annotation alb.ingress.kubernetes.io/wafv2-acl-arn."
  value       = module.waf.web_acl_arn
}

output "vpc_cidr" {
  description = "VPC range: every node and pod address is in it."
  value       = module.network.vpc_cidr
}

output "cluster_cidrs" {
  description = "The cluster's pod (VPC) and Service ranges: networkPolicy.clusterCIDRs."
  value       = [module.network.vpc_cidr, module.eks.service_cidr]
}

output "private_subnet_cidrs" {
  description = "Private subnet ranges (RDS and ElastiCache live there): networkPolicy.databaseCIDRs."
  value       = module.network.private_subnet_cidrs
}

output "public_subnet_cidrs" {
  description = "Public subnet ranges, where an internet-facing ALB's addresses are: gateway.trustedProxies and networkPolicy.ingressCIDRs."
  value       = module.network.public_subnet_cidrs
}

output "nat_public_ips" {
  description = "Addresses core's fetches leave from (for sites that allow-list crawlers)."
  value       = module.network.nat_public_ips
}

# The values Terraform decides outright, as a values file:
#   terraform output -json helm_values > values-terraform.json
#   helm upgrade --install anno deploy/helm/anno -f values-<env>.yaml -f values-terraform.json
output "helm_values" {
  description = "Chart values taken from this environment, ready for helm -f."
  value = {
    ingress = {
      annotations = {
        "alb.ingress.kubernetes.io/wafv2-acl-arn" = module.waf.web_acl_arn
      }
    }
    gateway = {
      trustedProxies = module.network.public_subnet_cidrs
    }
    networkPolicy = {
      clusterCIDRs  = [module.network.vpc_cidr, module.eks.service_cidr]
      databaseCIDRs = module.network.private_subnet_cidrs
      ingressCIDRs  = module.network.public_subnet_cidrs
    }
  }
}
