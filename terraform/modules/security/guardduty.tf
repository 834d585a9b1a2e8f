# GuardDuty: threat detection on CloudTrail, VPC flow logs and DNS, plus the EKS audit
# log and S3 data events. One detector per account and region: each environment is
# expected in its own account.

resource "aws_guardduty_detector" "this" {
  #checkov:skip=CKV2_AWS_3:Organization-wide GuardDuty (a delegated administrator that auto-enables member accounts) is configured from the AWS Organization's security account, not from a workload account's stack; this detector covers this account and region.
  enable                       = true
  finding_publishing_frequency = "FIFTEEN_MINUTES"

  tags = var.tags
}

resource "aws_guardduty_detector_feature" "this" {
  for_each = toset(["EKS_AUDIT_LOGS", "S3_DATA_EVENTS"])

  detector_id = aws_guardduty_detector.this.id
  name        = each.value
  status      = "ENABLED"
}
