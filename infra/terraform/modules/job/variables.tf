variable "project_id" {
  description = "Project of the job."
  type        = string
}

variable "region" {
  description = "Cloud Run region."
  type        = string
}

variable "name" {
  description = "Job name."
  type        = string
}

variable "image" {
  description = "Container image (registry path with a tag or digest)."
  type        = string
}

variable "command" {
  description = "Entrypoint of the task, e.g. [\"python\", \"-m\", \"captionqc.ocr.job\"]; executions may add args."
  type        = list(string)
}

variable "args" {
  description = "Default arguments; an execution's overrides replace them."
  type        = list(string)
  default     = []
}

variable "service_account_email" {
  description = "Identity the tasks run as."
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

variable "cpu" {
  description = "vCPUs per task."
  type        = string
}

variable "memory" {
  description = "Memory per task."
  type        = string
}

variable "task_timeout_s" {
  description = "A task attempt is stopped after this many seconds."
  type        = number
}

variable "max_retries" {
  description = "Retries of a failed task before the execution fails."
  type        = number
}

variable "vpc_egress" {
  description = "Direct VPC egress (network and subnet names) for private ranges; null for none."
  type = object({
    network    = string
    subnetwork = string
  })
  default = null
}

variable "invokers" {
  description = "Members allowed to start executions (with overrides) and read their state, e.g. the service that dispatches work to the job."
  type        = set(string)
  default     = []
}

variable "deletion_protection" {
  description = "Refuse to delete the job from Terraform."
  type        = bool
  default     = false
}

variable "labels" {
  description = "Labels of the job."
  type        = map(string)
  default     = {}
}
