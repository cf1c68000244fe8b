output "network_id" {
  description = "Id of the VPC network (Cloud SQL's private network)."
  value       = google_compute_network.this.id
}

output "network_name" {
  description = "Name of the VPC network."
  value       = google_compute_network.this.name
}

output "egress_subnet_name" {
  description = "Subnet for Cloud Run Direct VPC egress."
  value       = google_compute_subnetwork.egress.name
}

output "private_services_connection" {
  description = "The private services peering; Cloud SQL must be created after it."
  value       = google_service_networking_connection.private_services.id
}
