# Media comes in, large results go out: both private, uniform access, emptied by lifecycle rules.

resource "google_storage_bucket" "media" {
  # checkov:skip=CKV_GCP_62: access is audited by Cloud Audit Logs (data access logs) rather than legacy bucket usage logs, which would need a third bucket that itself fails this check.
  project                     = var.project_id
  name                        = "${var.project_id}-captionqc-media"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection
  labels                      = local.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age = var.media_retention_days
    }
    action {
      type = "Delete"
    }
  }

  # Versioning keeps an overwritten upload recoverable for a week, not forever.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 7
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket" "results" {
  # checkov:skip=CKV_GCP_62: as for the media bucket, Cloud Audit Logs cover access.
  project                     = var.project_id
  name                        = "${var.project_id}-captionqc-results"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection
  labels                      = local.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age = var.results_retention_days
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 1
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}
