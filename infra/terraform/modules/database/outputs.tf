output "instance_name" {
  description = "Cloud SQL instance name."
  value       = google_sql_database_instance.this.name
}

output "connection_name" {
  description = "project:region:instance, for the Cloud SQL Auth Proxy (e.g. a psql session from a laptop)."
  value       = google_sql_database_instance.this.connection_name
}

output "private_ip_address" {
  description = "The instance's private IP."
  value       = google_sql_database_instance.this.private_ip_address
}

output "database_url_secret_ids" {
  description = "Secret Manager secret id of each service's DATABASE_URL."
  value       = { for name, s in google_secret_manager_secret.database_url : name => s.secret_id }
}
