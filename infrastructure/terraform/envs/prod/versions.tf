terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40, < 7.0"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "~> 2.17"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.5, < 4.0"
    }
    tls = {
      source  = "hashicorp/tls"
      version = ">= 4.0, < 5.0"
    }
  }

  # Configure a remote backend (S3 with state locking) before the first apply, e.g.
  # backend "s3" { bucket = "...", key = "helios/prod.tfstate", region = "...", use_lockfile = true }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      "app.kubernetes.io/part-of" = "helios"
      environment                 = var.environment
    }
  }
}

# The Helm provider talks to the cluster created here, with a short-lived token from the AWS CLI
# (`aws eks get-token`); Terraform must reach the API endpoint (VPN/bastion into the VPC, or
# api_public_access_cidrs). On the very first apply, create the cluster before the release:
#   terraform apply -target=module.eks && terraform apply
provider "helm" {
  kubernetes {
    host                   = module.eks.cluster_endpoint
    cluster_ca_certificate = base64decode(module.eks.cluster_certificate_authority_data)

    exec {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = ["eks", "get-token", "--cluster-name", module.eks.cluster_name, "--region", var.region]
    }
  }
}
