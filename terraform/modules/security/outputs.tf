output "trail_arn" {
  description = "The CloudTrail trail."
  value       = aws_cloudtrail.this.arn
}

output "trail_bucket" {
  description = "Bucket holding the trail's log files."
  value       = aws_s3_bucket.trail.id
}

output "guardduty_detector_id" {
  description = "The GuardDuty detector."
  value       = aws_guardduty_detector.this.id
}
