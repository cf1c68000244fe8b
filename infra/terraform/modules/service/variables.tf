variable "project_id" {
  description = "Project of the service."
  type        = string
}

variable "region" {
  description = "Cloud Run region."
  type        = string
}

variable "name" {
  description = "Service name."
  type        = string
}

variable "image" {
  description = "Container image (registry path with a tag or digest)."
  type        = string
}

variable "service_account_email" {
  description = "Identity the service runs as (its own account, with only the roles it needs)."
  type        = string
}

variable "env" {
  description = "Plain environment variables (never secrets)."
  type        = map(string)
  default     = {}
}

variable "secret_env" {
  description = "Environment variables read from Secret Manager: name => secret id (the latest version is used)."
  type        = map(string)
  default     = {}
}

variable "public" {
  description = "Reachable from the internet without Cloud Run IAM (the app authenticates callers itself); otherwise internal-only ingress."
  type        = bool
  default     = false
}

variable "cpu" {
  description = "vCPUs per instance, e.g. \"1\", \"2\", \"4\"."
  type        = string
}

variable "memory" {
  description = "Memory per instance, e.g. \"512Mi\", \"4Gi\"."
  type        = string
}

variable "cpu_always_allocated" {
  description = "Keep CPU allocated between requests (needed by background work: Pub/Sub pull, OCR, ASR)."
  type        = bool
  default     = false
}

variable "concurrency" {
  description = "Maximum concurrent requests per instance."
  type        = number
}

variable "min_instances" {
  description = "Instances kept warm (>= 1 for a pull consumer, which has no requests to wake it)."
  type        = number
}

variable "max_instances" {
  description = "Upper bound on instances (bounds database connections too)."
  type        = number
}

variable "request_timeout_s" {
  description = "Request timeout in seconds."
  type        = number
}

variable "container_port" {
  description = "Port the container listens on; Cloud Run passes it as PORT."
  type        = number
  default     = 8080
}

variable "startup_probe_path" {
  description = "HTTP path that answers 200 once the instance can serve (models loaded, dependencies reachable)."
  type        = string
  default     = "/readyz"
}

variable "liveness_probe_path" {
  description = "HTTP path that answers 200 while the process is healthy."
  type        = string
  default     = "/healthz"
}

variable "startup_failure_threshold" {
  description = "Startup probe failures (10 s apart) tolerated before the instance is replaced."
  type        = number
  default     = 12
}

variable "vpc_egress" {
  description = "Direct VPC egress (network and subnet names) for private ranges, e.g. Cloud SQL's private IP; null for none."
  type = object({
    network    = string
    subnetwork = string
  })
  default = null
}

variable "deletion_protection" {
  description = "Refuse to delete the service from Terraform."
  type        = bool
  default     = false
}

variable "labels" {
  description = "Labels of the service."
  type        = map(string)
  default     = {}
}
