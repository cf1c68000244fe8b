# Cloud SQL for PostgreSQL: private IP only, TLS required, automated backups with point-in-time recovery.
# Each schema-owning service gets its own database and login; its connection URL (password included) is
# written to Secret Manager and reaches the service only as a secret reference.

resource "google_sql_database_instance" "this" {
  # checkov:skip=CKV_GCP_6: TLS is required (ssl_mode ENCRYPTED_ONLY) on a private-IP-only instance; client certificates on top would need per-service certificate issuance and rotation that asyncpg over a password login does not need.
  project             = var.project_id
  name                = var.instance_name
  region              = var.region
  database_version    = var.database_version
  deletion_protection = var.deletion_protection

  settings {
    tier                        = var.tier
    edition                     = "ENTERPRISE"
    availability_type           = var.high_availability ? "REGIONAL" : "ZONAL"
    disk_type                   = "PD_SSD"
    disk_size                   = var.disk_size_gb
    disk_autoresize             = true
    deletion_protection_enabled = var.deletion_protection
    user_labels                 = var.labels

    ip_configuration {
      ipv4_enabled                                  = false
      private_network                               = var.private_network_id
      enable_private_path_for_google_cloud_services = true
      ssl_mode                                      = "ENCRYPTED_ONLY"
    }

    backup_configuration {
      enabled                        = true
      start_time                     = "02:00"
      point_in_time_recovery_enabled = true
      transaction_log_retention_days = var.pitr_log_retention_days

      backup_retention_settings {
        retained_backups = var.backup_retained_count
        retention_unit   = "COUNT"
      }
    }

    maintenance_window {
      day          = 7
      hour         = 3
      update_track = "stable"
    }

    insights_config {
      query_insights_enabled  = true
      record_application_tags = true
      record_client_address   = false
    }

    database_flags {
      name  = "max_connections"
      value = tostring(var.max_connections)
    }

    # Logging flags the CIS benchmark asks for; statement logging stays at DDL so that caption text and
    # tenant data never land in the database log.
    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }

    database_flags {
      name  = "log_connections"
      value = "on"
    }

    database_flags {
      name  = "log_disconnections"
      value = "on"
    }

    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }

    database_flags {
      name  = "log_min_messages"
      value = "error"
    }

    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }

    database_flags {
      name  = "log_temp_files"
      value = "0"
    }

    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }

    database_flags {
      name  = "log_duration"
      value = "on"
    }

    database_flags {
      name  = "log_hostname"
      value = "on"
    }

    database_flags {
      name  = "log_statement"
      value = "ddl"
    }

    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }
  }

  lifecycle {
    precondition {
      condition     = var.required_connections + var.reserved_connections <= var.max_connections
      error_message = "The services can open more connections at full scale than max_connections allows: lower max instances or pool sizes, or raise max_connections (and the tier)."
    }
  }
}

resource "google_sql_database" "this" {
  for_each = var.databases

  project  = var.project_id
  instance = google_sql_database_instance.this.name
  name     = each.key
}

resource "random_password" "this" {
  for_each = var.databases

  length  = 32
  special = false
}

resource "google_sql_user" "this" {
  for_each = var.databases

  project  = var.project_id
  instance = google_sql_database_instance.this.name
  name     = each.key
  password = random_password.this[each.key].result
}

resource "google_secret_manager_secret" "database_url" {
  # checkov:skip=CKV_GCP_128: Google-managed keys encrypt the secret at rest; CMEK would need a key ring and a Secret Manager agent grant per region for a value Terraform state already holds.
  for_each = var.databases

  project   = var.project_id
  secret_id = "${each.key}-database-url"
  labels    = var.labels

  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "database_url" {
  for_each = var.databases

  secret = google_secret_manager_secret.database_url[each.key].id
  # asyncpg over the private IP; ssl=require matches the instance's ENCRYPTED_ONLY mode.
  secret_data = format(
    "postgresql+asyncpg://%s:%s@%s:5432/%s?ssl=require",
    google_sql_user.this[each.key].name,
    random_password.this[each.key].result,
    google_sql_database_instance.this.private_ip_address,
    google_sql_database.this[each.key].name,
  )
}
