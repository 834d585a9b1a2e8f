terraform {
  required_version = ">= 1.6.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.70"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
    tls = {
      source  = "hashicorp/tls"
      version = "~> 4.0"
    }
  }

  # State bucket and lock table exist before the first init (terraform/README.md).
  backend "s3" {
    bucket         = "anno-terraform-state-dev"
    key            = "anno/dev/terraform.tfstate"
    region         = "us-east-1"
    dynamodb_table = "anno-terraform-locks"
    encrypt        = true
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = "anno"
      Environment = local.environment
      ManagedBy   = "terraform"
    }
  }
}
