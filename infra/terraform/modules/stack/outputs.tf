output "image_registry" {
  description = "Where to push images: <image_registry>/<service>:<tag>."
  value       = google_artifact_registry_repository.images.registry_uri
}

output "gateway_url" {
  description = "Public URL of the gateway (POST /v1/jobs)."
  value       = try(module.service["gateway"].uri, null)
}

output "status_url" {
  description = "Public URL of the status service (GET /v1/jobs/…, the review page)."
  value       = try(module.service["status"].uri, null)
}

output "service_revisions" {
  description = "Latest ready revision of each service, to roll back to after the next deploy."
  value       = { for s, m in module.service : s => m.latest_revision }
}

output "migration_jobs" {
  description = "Cloud Run Job per schema-owning service that runs its Alembic migrations."
  value       = { for s, m in module.migrate_job : s => m.name }
}

output "stage_jobs" {
  description = "Cloud Run Jobs of the OCR and ASR stages (cloud_run_job execution mode)."
  value       = { for s, m in module.stage_job : s => m.id }
}

output "media_bucket" {
  description = "Bucket to upload media to (gs://<media_bucket>/…)."
  value       = google_storage_bucket.media.name
}

output "results_bucket" {
  description = "Bucket of claim-checked OCR/ASR results."
  value       = google_storage_bucket.results.name
}

output "operator_secrets" {
  description = "Secrets whose versions the operator adds by hand (the JWKS URL)."
  value       = keys(google_secret_manager_secret.operator)
}

output "database_instance" {
  description = "Cloud SQL connection name (project:region:instance), for the Auth Proxy."
  value       = module.database.connection_name
}

output "database_connections" {
  description = "Connections the services can open at full scale, and the instance's max_connections."
  value = {
    required        = local.required_connections
    max_connections = var.database.max_connections
  }
}
