variable "project_id" {
  description = "GCP project of this environment."
  type        = string
}

variable "region" {
  description = "Region of every regional resource."
  type        = string
  default     = "europe-west1"
}

variable "image_tag" {
  description = "Image tag to run (a git commit). Leave null on the very first apply: the registry must exist before images can be pushed."
  type        = string
  default     = null
}

variable "jwt_issuer" {
  description = "Expected `iss` of the gateway's bearer tokens."
  type        = string
}

variable "jwt_audience" {
  description = "Expected `aud` of the gateway's bearer tokens."
  type        = string
  default     = "captionqc"
}

variable "stage_execution_mode" {
  description = "inline (OCR/ASR in the consumer) or cloud_run_job (one Cloud Run Job execution per job)."
  type        = string
  default     = "inline"
}

variable "allowed_https_media_hosts" {
  description = "Hosts https:// media may come from; gs:// is always allowed."
  type        = list(string)
  default     = []
}

variable "intake_publishers" {
  description = "IAM members of the upstream systems allowed to publish job requests on the intake topic (e.g. serviceAccount:broadcast@other-project.iam.gserviceaccount.com)."
  type        = list(string)
  default     = []
}
