# Cloud Run Jobs: one per stage for the cloud_run_job execution mode, one per schema owner for migrations.

module "stage_job" {
  source   = "../job"
  for_each = local.deploy ? toset(["ocr", "asr"]) : toset([])

  project_id            = var.project_id
  region                = var.region
  name                  = "${each.key}-job"
  image                 = local.image[each.key]
  command               = ["python", "-m", "captionqc.${each.key}.job"]
  service_account_email = local.sa_email[each.key]
  env                   = merge(local.common_env[each.key], local.stage_env[each.key])
  cpu                   = var.stage_jobs[each.key].cpu
  memory                = var.stage_jobs[each.key].memory
  task_timeout_s        = var.stage_jobs[each.key].task_timeout_s
  max_retries           = var.stage_jobs[each.key].max_retries
  # The consumer of the same stage starts the executions.
  invokers            = [local.sa_member[each.key]]
  deletion_protection = var.deletion_protection
  labels              = merge(local.labels, { service = each.key })

  depends_on = [google_service_account.service]
}

module "migrate_job" {
  source   = "../job"
  for_each = local.deploy ? local.schema_owners : toset([])

  project_id            = var.project_id
  region                = var.region
  name                  = "migrate-${each.key}"
  image                 = local.image[each.key]
  command               = ["python", "-m", "captionqc.${each.key}.migrate"]
  service_account_email = local.sa_email[each.key]
  env                   = local.common_env[each.key]
  secret_env            = { "CAPTIONQC_${upper(each.key)}_DATABASE_URL" = module.database.database_url_secret_ids[each.key] }
  cpu                   = "1"
  memory                = "512Mi"
  task_timeout_s        = 600
  # A failed migration is looked at, not retried: Alembic runs each revision in a transaction.
  max_retries         = 0
  vpc_egress          = local.vpc_egress
  deletion_protection = var.deletion_protection
  labels              = merge(local.labels, { service = each.key })

  depends_on = [google_secret_manager_secret_iam_member.database_url]
}
