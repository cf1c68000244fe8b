data "google_project" "this" {
  project_id = var.project_id
}

locals {
  results_prefix = "gs://${google_storage_bucket.results.name}"
  # The OCR/ASR settings parse host sets as JSON; the gateway's take a comma-separated list.
  https_hosts_json  = jsonencode(var.allowed_https_media_hosts)
  https_hosts_comma = join(",", var.allowed_https_media_hosts)
  # Cloud Run's deterministic URL (https://<service>-<project number>.<region>.run.app): the gateway links to
  # the status service without a dependency between the two.
  status_url = "https://status-${data.google_project.this.number}.${var.region}.run.app"

  # Both public services verify the identity provider's tokens (production refuses the shared-secret mode).
  jwt_env = {
    for s in local.http_services : s => {
      "CAPTIONQC_${upper(s)}_JWT_MODE"     = "jwks"
      "CAPTIONQC_${upper(s)}_JWT_ISSUER"   = var.jwt_issuer
      "CAPTIONQC_${upper(s)}_JWT_AUDIENCE" = var.jwt_audience
    }
  }

  # Settings every service reads, under its own prefix (CAPTIONQC_<SERVICE>_...).
  common_env = {
    for s in local.service_names : s => {
      "CAPTIONQC_${upper(s)}_ENVIRONMENT"    = "production"
      "CAPTIONQC_${upper(s)}_GCP_PROJECT"    = var.project_id
      "CAPTIONQC_${upper(s)}_TRACE_EXPORTER" = "gcp_trace"
      "CAPTIONQC_${upper(s)}_LOG_LEVEL"      = var.log_level
    }
  }

  db_env = {
    for s in local.schema_owners : s => {
      "CAPTIONQC_${upper(s)}_DB_POOL_SIZE"    = tostring(var.services[s].db_pool_size)
      "CAPTIONQC_${upper(s)}_DB_MAX_OVERFLOW" = "0"
    }
  }

  stage_env = {
    ocr = {
      "CAPTIONQC_OCR_RESULTS_URI"         = "${local.results_prefix}/ocr"
      "CAPTIONQC_OCR_ALLOWED_HTTPS_HOSTS" = local.https_hosts_json
    }
    asr = {
      "CAPTIONQC_ASR_RESULTS_URI"         = "${local.results_prefix}/asr"
      "CAPTIONQC_ASR_ALLOWED_HTTPS_HOSTS" = local.https_hosts_json
    }
  }

  # How each consumer dispatches a job: the Cloud Run Job's short name and its region.
  dispatch_env = {
    ocr = {
      "CAPTIONQC_OCR_EXECUTION_MODE"     = var.stage_execution_mode
      "CAPTIONQC_OCR_CLOUD_RUN_JOB_NAME" = "ocr-job"
      "CAPTIONQC_OCR_CLOUD_RUN_REGION"   = var.region
    }
    asr = {
      "CAPTIONQC_ASR_EXECUTION_MODE"     = var.stage_execution_mode
      "CAPTIONQC_ASR_CLOUD_RUN_JOB_NAME" = "asr-job"
      "CAPTIONQC_ASR_CLOUD_RUN_REGION"   = var.region
    }
  }

  service_env = {
    gateway = merge(local.common_env.gateway, local.db_env.gateway, local.jwt_env.gateway, {
      "CAPTIONQC_GATEWAY_ALLOWED_HTTPS_HOSTS" = local.https_hosts_comma
      "CAPTIONQC_GATEWAY_STATUS_BASE_URL"     = local.status_url
      "WEB_CONCURRENCY"                       = tostring(var.services.gateway.web_workers)
    })
    status = merge(local.common_env.status, local.db_env.status, local.jwt_env.status, {
      "CAPTIONQC_STATUS_RESULTS_URI" = "${local.results_prefix}/ocr"
      "WEB_CONCURRENCY"              = tostring(var.services.status.web_workers)
    })
    ocr        = merge(local.common_env.ocr, local.stage_env.ocr, local.dispatch_env.ocr)
    asr        = merge(local.common_env.asr, local.stage_env.asr, local.dispatch_env.asr)
    crosscheck = merge(local.common_env.crosscheck, local.db_env.crosscheck)
  }

  service_secret_env = {
    gateway = {
      "CAPTIONQC_GATEWAY_DATABASE_URL" = module.database.database_url_secret_ids.gateway
      "CAPTIONQC_GATEWAY_JWKS_URL"     = google_secret_manager_secret.operator["jwt-jwks-url"].secret_id
    }
    # Webhook signing secrets are per tenant, in the tenant registry (the database), not in Secret Manager.
    status = {
      "CAPTIONQC_STATUS_DATABASE_URL" = module.database.database_url_secret_ids.status
      "CAPTIONQC_STATUS_JWKS_URL"     = google_secret_manager_secret.operator["jwt-jwks-url"].secret_id
    }
    ocr = {}
    asr = {}
    crosscheck = {
      "CAPTIONQC_CROSSCHECK_DATABASE_URL" = module.database.database_url_secret_ids.crosscheck
    }
  }
}

module "service" {
  source   = "../service"
  for_each = local.deploy ? toset(local.service_names) : toset([])

  project_id            = var.project_id
  region                = var.region
  name                  = each.key
  image                 = local.image[each.key]
  service_account_email = local.sa_email[each.key]
  env                   = local.service_env[each.key]
  secret_env            = local.service_secret_env[each.key]
  public                = contains(local.http_services, each.key)
  cpu                   = var.services[each.key].cpu
  memory                = var.services[each.key].memory
  cpu_always_allocated  = var.services[each.key].cpu_always_allocated
  concurrency           = var.services[each.key].concurrency
  min_instances         = var.services[each.key].min_instances
  max_instances         = var.services[each.key].max_instances
  request_timeout_s     = var.services[each.key].request_timeout_s
  # OCR and ASR load their models before /readyz answers: give them longer to start.
  startup_failure_threshold = contains(["ocr", "asr"], each.key) ? 30 : 12
  vpc_egress                = contains(local.schema_owners, each.key) ? local.vpc_egress : null
  deletion_protection       = var.deletion_protection
  labels                    = merge(local.labels, { service = each.key })

  depends_on = [
    google_project_iam_member.telemetry,
    google_secret_manager_secret_iam_member.database_url,
    google_secret_manager_secret_iam_member.operator,
  ]
}
