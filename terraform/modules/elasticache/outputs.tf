output "primary_endpoint_address" {
  description = "Hostname of the primary (writes and reads); it follows a failover."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "port" {
  description = "Port of the primary."
  value       = aws_elasticache_replication_group.this.port
}

output "auth_token_secret_arn" {
  description = "Secrets Manager secret holding the AUTH token (JSON: auth_token, host, port, url)."
  value       = aws_secretsmanager_secret.auth_token.arn
}

output "security_group_id" {
  description = "The cache's security group."
  value       = aws_security_group.this.id
}
