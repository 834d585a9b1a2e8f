output "web_acl_arn" {
  description = "The web ACL's ARN: the ALB ingress annotation alb.ingress.kubernetes.io/wafv2-acl-arn."
  value       = aws_wafv2_web_acl.this.arn
}

output "log_group_name" {
  description = "Where WAF logs go."
  value       = aws_cloudwatch_log_group.this.name
}
