output "name" {
  description = "Job name."
  value       = google_cloud_run_v2_job.this.name
}

output "id" {
  description = "projects/…/locations/…/jobs/… — what the dispatcher passes to the Cloud Run Admin API."
  value       = google_cloud_run_v2_job.this.id
}
