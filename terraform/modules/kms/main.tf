# Customer managed keys, one per purpose, so that access to one kind of data can be
# granted (or revoked) without touching the others. Every key rotates yearly.
#
# Key policies: the account's root principal administers each key, which lets IAM
# policies in the account grant its use (AWS's default key policy); AWS services
# that encrypt on their own behalf (CloudWatch Logs, CloudTrail, S3 log delivery) are
# named per key, each held to this account by a condition. In a key policy
# `"Resource": "*"` means "this key", not every resource.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  root_statement = {
    Sid       = "AccountAdministersKey"
    Effect    = "Allow"
    Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
    Action    = "kms:*"
    Resource  = "*"
  }

  # CloudWatch Logs encrypts log groups of this account only: VPC flow logs, the EKS
  # control plane's logs, WAF logs and CloudTrail's copy of its events.
  logs_statements = [{
    Sid       = "CloudWatchLogsUseKey"
    Effect    = "Allow"
    Principal = { Service = "logs.${local.region}.amazonaws.com" }
    Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    Resource  = "*"
    Condition = {
      ArnLike = {
        "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"
      }
    }
  }]

  # CloudTrail encrypts its log files with this key, and S3 server access logs land in a
  # bucket whose default encryption is this key. Reading them takes an IAM permission.
  audit_statements = [
    {
      Sid       = "CloudTrailEncryptLogs"
      Effect    = "Allow"
      Principal = { Service = "cloudtrail.amazonaws.com" }
      Action    = "kms:GenerateDataKey*"
      Resource  = "*"
      Condition = {
        StringEquals = { "aws:SourceAccount" = local.account_id }
        StringLike = {
          "kms:EncryptionContext:aws:cloudtrail:arn" = "arn:${local.partition}:cloudtrail:*:${local.account_id}:trail/*"
        }
      }
    },
    {
      Sid       = "CloudTrailDescribeKey"
      Effect    = "Allow"
      Principal = { Service = "cloudtrail.amazonaws.com" }
      Action    = "kms:DescribeKey"
      Resource  = "*"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    },
    {
      Sid       = "S3ServerAccessLogDelivery"
      Effect    = "Allow"
      Principal = { Service = "logging.s3.amazonaws.com" }
      Action    = ["kms:GenerateDataKey*", "kms:Decrypt"]
      Resource  = "*"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    },
  ]

  keys = {
    eks = {
      description = "EKS Kubernetes Secrets envelope encryption"
      statements  = []
    }
    logs = {
      description = "CloudWatch Logs: flow logs, EKS control plane, WAF, CloudTrail"
      statements  = local.logs_statements
    }
    rds = {
      description = "RDS PostgreSQL storage, snapshots, Performance Insights and the master user secret"
      statements  = []
    }
    elasticache = {
      description = "ElastiCache Redis at rest and its AUTH token secret"
      statements  = []
    }
    audit = {
      description = "CloudTrail log files and the audit buckets"
      statements  = local.audit_statements
    }
  }
}

resource "aws_kms_key" "this" {
  for_each = local.keys

  description             = "${var.name}: ${each.value.description}"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = var.deletion_window_in_days

  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = concat([local.root_statement], each.value.statements)
  })

  tags = merge(var.tags, { Purpose = each.key })
}

resource "aws_kms_alias" "this" {
  for_each = local.keys

  name          = "alias/${var.name}/${each.key}"
  target_key_id = aws_kms_key.this[each.key].key_id
}
