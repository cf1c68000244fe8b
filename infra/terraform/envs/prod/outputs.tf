output "image_registry" {
  description = "Where to push images: <image_registry>/<service>:<tag>."
  value       = module.stack.image_registry
}

output "gateway_url" {
  description = "Public URL of the gateway."
  value       = module.stack.gateway_url
}

output "status_url" {
  description = "Public URL of the status service."
  value       = module.stack.status_url
}

output "service_revisions" {
  description = "Latest ready revision of each service."
  value       = module.stack.service_revisions
}

output "migration_jobs" {
  description = "Migration job per schema-owning service."
  value       = module.stack.migration_jobs
}

output "stage_jobs" {
  description = "OCR and ASR Cloud Run Jobs."
  value       = module.stack.stage_jobs
}

output "media_bucket" {
  description = "Bucket to upload media to."
  value       = module.stack.media_bucket
}

output "results_bucket" {
  description = "Bucket of claim-checked results."
  value       = module.stack.results_bucket
}

output "operator_secrets" {
  description = "Secrets whose versions the operator adds."
  value       = module.stack.operator_secrets
}

output "database_instance" {
  description = "Cloud SQL connection name."
  value       = module.stack.database_instance
}

output "database_connections" {
  description = "Connection budget at full scale vs max_connections."
  value       = module.stack.database_connections
}
