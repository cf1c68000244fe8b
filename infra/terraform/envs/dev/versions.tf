terraform {
  required_version = ">= 1.6, < 2.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.10, < 7.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # State holds the generated database passwords: keep it in a private, versioned bucket.
  # terraform init -backend-config="bucket=<state bucket>"
  backend "gcs" {
    prefix = "captionqc/dev"
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}
