variable "project_id" {
  description = "The GCP project of this environment (one project per environment: topic names are fixed by the code)."
  type        = string
}

variable "region" {
  description = "Region of Cloud Run, Cloud SQL, Artifact Registry and the buckets."
  type        = string
}

variable "environment" {
  description = "Environment label, e.g. prod or dev."
  type        = string
}

variable "image_tag" {
  description = "Tag of the service images in Artifact Registry. Null on the first apply, which creates the registry before any image exists: services and jobs are created once it is set."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Protect the database, buckets and Cloud Run resources against deletion."
  type        = bool
}

variable "services" {
  description = <<-EOT
    Sizing of each Cloud Run service (gateway, status, ocr, asr, crosscheck). `web_workers` is the gunicorn worker
    count of the HTTP services (1 for the workers); `db_pool_size` is each worker's SQLAlchemy pool (ignored by
    services without a database). Database connections at full scale = max_instances x web_workers x db_pool_size.
  EOT
  type = map(object({
    cpu                  = string
    memory               = string
    cpu_always_allocated = bool
    concurrency          = number
    min_instances        = number
    max_instances        = number
    request_timeout_s    = number
    web_workers          = number
    db_pool_size         = number
  }))

  validation {
    condition     = length(setsubtract(["gateway", "status", "ocr", "asr", "crosscheck"], keys(var.services))) == 0
    error_message = "Size every service: gateway, status, ocr, asr and crosscheck."
  }
}

variable "stage_jobs" {
  description = "Cloud Run Jobs that run one OCR or ASR job each in `cloud_run_job` execution mode (keys ocr, asr)."
  type = map(object({
    cpu            = string
    memory         = string
    task_timeout_s = number
    max_retries    = number
  }))

  validation {
    condition     = length(setsubtract(["ocr", "asr"], keys(var.stage_jobs))) == 0
    error_message = "Size both stage jobs: ocr and asr."
  }
}

variable "stage_execution_mode" {
  description = "How OCR and ASR run a job: inline (in the consumer) or cloud_run_job (the consumer starts a Job execution)."
  type        = string
  default     = "inline"

  validation {
    condition     = contains(["inline", "cloud_run_job"], var.stage_execution_mode)
    error_message = "stage_execution_mode is inline or cloud_run_job."
  }
}

variable "database" {
  description = "Cloud SQL sizing: tier, regional HA, and the max_connections flag (checked against the services' pools)."
  type = object({
    tier              = string
    high_availability = bool
    max_connections   = number
    disk_size_gb      = optional(number, 20)
  })
}

variable "jwt_issuer" {
  description = "Expected `iss` of the gateway's bearer tokens."
  type        = string
}

variable "jwt_audience" {
  description = "Expected `aud` of the gateway's bearer tokens."
  type        = string
}

variable "media_retention_days" {
  description = "Media objects are deleted this many days after upload."
  type        = number
  default     = 30
}

variable "results_retention_days" {
  description = "Claim-checked OCR/ASR results are deleted this many days after they were written."
  type        = number
  default     = 90
}

variable "allowed_https_media_hosts" {
  description = "Hosts the gateway, OCR and ASR may fetch https:// media from (gs:// is always allowed)."
  type        = list(string)
  default     = []
}

variable "push_subscriptions" {
  description = "Subscriptions delivered by push (to /pubsub/push/<name> on the consumer's service, with an OIDC token) instead of pull. Applied once image_tag is set."
  type        = set(string)
  default     = []
}

variable "log_level" {
  description = "Log level of every service."
  type        = string
  default     = "INFO"
}

variable "intake_publishers" {
  description = "IAM members (serviceAccount:…, group:…, principal://…) of the upstream systems that may publish job requests on the intake topic. Nobody else may publish there."
  type        = list(string)
  default     = []

  validation {
    condition = alltrue([
      for m in var.intake_publishers :
      can(regex("^(serviceAccount|group|user|principal|principalSet):", m))
    ])
    error_message = "Name each intake publisher as an IAM member (serviceAccount:, group:, user:, principal:, principalSet:); allUsers and allAuthenticatedUsers are refused."
  }
}
