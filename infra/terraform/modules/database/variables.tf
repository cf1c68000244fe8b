variable "project_id" {
  description = "Project of the Cloud SQL instance."
  type        = string
}

variable "region" {
  description = "Region of the Cloud SQL instance (the Cloud Run region)."
  type        = string
}

variable "instance_name" {
  description = "Name of the Cloud SQL instance (names are not reusable for about a week after deletion)."
  type        = string
  default     = "captionqc"
}

variable "database_version" {
  description = "Cloud SQL PostgreSQL version; the same major as the embedded server of local runs and tests."
  type        = string
  default     = "POSTGRES_18"
}

variable "tier" {
  description = "Machine tier, e.g. db-custom-2-7680. Its memory bounds max_connections."
  type        = string
}

variable "high_availability" {
  description = "REGIONAL (a standby in a second zone, automatic failover) instead of ZONAL."
  type        = bool
}

variable "disk_size_gb" {
  description = "Initial SSD size; it grows automatically."
  type        = number
  default     = 20
}

variable "deletion_protection" {
  description = "Refuse to delete the instance, both in Terraform and in the Cloud SQL API."
  type        = bool
}

variable "private_network_id" {
  description = "VPC network (with private services access) that carries the instance's only IP."
  type        = string
}

variable "backup_retained_count" {
  description = "How many daily automated backups to keep."
  type        = number
  default     = 14
}

variable "pitr_log_retention_days" {
  description = "Days of write-ahead log kept for point-in-time recovery (1 to 7 on the Enterprise edition)."
  type        = number
  default     = 7
}

variable "max_connections" {
  description = "The max_connections flag. Cloud SQL's default depends on memory (e.g. 100 for 3.75 GB)."
  type        = number
}

variable "required_connections" {
  description = "Connections the services can open at full scale (max instances x workers x pool); checked against max_connections."
  type        = number
}

variable "reserved_connections" {
  description = "Connections kept free for migrations, psql and Cloud SQL's own superuser slots."
  type        = number
  default     = 15
}

variable "databases" {
  description = "One database and one login user per service that owns a schema (e.g. gateway, status, crosscheck)."
  type        = set(string)
}

variable "labels" {
  description = "Labels for the instance and the secrets."
  type        = map(string)
  default     = {}
}
