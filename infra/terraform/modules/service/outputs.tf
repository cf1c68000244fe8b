output "name" {
  description = "Service name."
  value       = google_cloud_run_v2_service.this.name
}

output "uri" {
  description = "HTTPS URL of the service."
  value       = google_cloud_run_v2_service.this.uri
}

output "latest_revision" {
  description = "Latest ready revision (for `gcloud run services update-traffic` rollbacks)."
  value       = google_cloud_run_v2_service.this.latest_ready_revision
}
