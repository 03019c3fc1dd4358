output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "CIDR of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "azs" {
  description = "Availability zones of the subnets, in subnet order."
  value       = local.azs
}

output "private_subnet_ids" {
  description = "Private subnets, one per zone (EKS nodes, MSK brokers, RDS)."
  value       = aws_subnet.private[*].id
}

output "public_subnet_ids" {
  description = "Public subnets, one per zone (NAT gateways, internet-facing load balancers)."
  value       = aws_subnet.public[*].id
}
