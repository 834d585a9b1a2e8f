output "key_arns" {
  description = "Key ARN by purpose: eks, logs, rds, elasticache, audit."
  value       = { for purpose, key in aws_kms_key.this : purpose => key.arn }
}
