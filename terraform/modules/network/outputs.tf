output "vpc_id" {
  description = "The VPC's id."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "The VPC's address range: every node and pod address is in it."
  value       = aws_vpc.this.cidr_block
}

output "azs" {
  description = "The three availability zones, in subnet order."
  value       = local.azs
}

output "private_subnet_ids" {
  description = "Private subnets (nodes, pods, RDS, ElastiCache), one per zone."
  value       = aws_subnet.private[*].id
}

output "private_subnet_cidrs" {
  description = "Address ranges of the private subnets."
  value       = aws_subnet.private[*].cidr_block
}

output "public_subnet_ids" {
  description = "Public subnets (internet-facing load balancers, NAT gateways), one per zone."
  value       = aws_subnet.public[*].id
}

output "public_subnet_cidrs" {
  description = "Address ranges of the public subnets: an internet-facing ALB's addresses are in them."
  value       = aws_subnet.public[*].cidr_block
}

output "nat_public_ips" {
  description = "The NAT gateways' public addresses: where core's fetches come from."
  value       = aws_eip.nat[*].public_ip
}
