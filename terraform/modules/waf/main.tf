# The web ACL in front of the gateway's ALB (annotation
# alb.ingress.kubernetes.io/wafv2-acl-arn). In order: addresses on AWS's reputation
# list, a flood guard per client address, then AWS's common, known-bad-inputs and SQL
# injection rule groups. Tenants' own rates and quotas are the gateway's job; the
# per-address limit sits well above the highest plan's rate so it only catches floods.

locals {
  metric_prefix = replace(var.name, "-", "")

  # The API receives HTML documents as JSON (POST /v1/content/extract, batches) and
  # returns them as data, never rendering them. These rules inspect the request body
  # for HTML, script and SQL-looking text, or cap it at 8 KB, and would refuse
  # ordinary extraction calls: they count (and are logged) instead of blocking. The
  # same rules on the query string, path, cookies and headers still block.
  body_rule_overrides = {
    AWSManagedRulesCommonRuleSet = ["SizeRestrictions_BODY", "CrossSiteScripting_BODY"]
    AWSManagedRulesSQLiRuleSet   = ["SQLi_BODY", "SQLiExtendedPatterns_BODY"]
  }

  managed_rule_groups = [
    { name = "AWSManagedRulesAmazonIpReputationList", priority = 10 },
    { name = "AWSManagedRulesCommonRuleSet", priority = 30 },
    { name = "AWSManagedRulesKnownBadInputsRuleSet", priority = 40 },
    { name = "AWSManagedRulesSQLiRuleSet", priority = 50 },
  ]
}

resource "aws_wafv2_web_acl" "this" {
  name        = var.name
  description = "Anno gateway ALB: managed rule groups and a per-address rate limit"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  # The platform's error body (RFC 9457 fields, code rate_limited) for the flood guard.
  # WAF can only label it application/json.
  custom_response_body {
    key          = "rate_limited"
    content_type = "APPLICATION_JSON"
    content = jsonencode({
      type   = "https://docs.anno.dev/errors/rate_limited"
      title  = "Too Many Requests"
      status = 429
      detail = "Too many requests from this address; retry shortly."
      code   = "rate_limited"
    })
  }

  dynamic "rule" {
    for_each = local.managed_rule_groups

    content {
      name     = rule.value.name
      priority = rule.value.priority

      override_action {
        none {}
      }

      statement {
        managed_rule_group_statement {
          name        = rule.value.name
          vendor_name = "AWS"

          dynamic "rule_action_override" {
            for_each = lookup(local.body_rule_overrides, rule.value.name, [])

            content {
              name = rule_action_override.value

              action_to_use {
                count {}
              }
            }
          }
        }
      }

      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${local.metric_prefix}${rule.value.name}"
        sampled_requests_enabled   = true
      }
    }
  }

  rule {
    name     = "RatePerClientAddress"
    priority = 20

    action {
      block {
        custom_response {
          response_code            = 429
          custom_response_body_key = "rate_limited"

          response_header {
            name  = "Retry-After"
            value = "60"
          }
        }
      }
    }

    statement {
      rate_based_statement {
        aggregate_key_type = "IP"
        limit              = var.rate_limit_per_5_minutes
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.metric_prefix}RatePerClientAddress"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = local.metric_prefix
    sampled_requests_enabled   = true
  }

  tags = var.tags
}
