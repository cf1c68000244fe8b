# Development: small zonal database, scale to zero where possible, easy to tear down.

module "stack" {
  source = "../../modules/stack"

  project_id                = var.project_id
  region                    = var.region
  environment               = "dev"
  image_tag                 = var.image_tag
  deletion_protection       = false
  jwt_issuer                = var.jwt_issuer
  jwt_audience              = var.jwt_audience
  stage_execution_mode      = var.stage_execution_mode
  allowed_https_media_hosts = var.allowed_https_media_hosts
  intake_publishers         = var.intake_publishers

  # Pull consumers (and the gateway's outbox relay) need one warm instance with CPU: no request wakes them.
  services = {
    gateway    = { cpu = "1", memory = "512Mi", cpu_always_allocated = true, concurrency = 80, min_instances = 1, max_instances = 2, request_timeout_s = 30, web_workers = 1, db_pool_size = 3 }
    status     = { cpu = "1", memory = "512Mi", cpu_always_allocated = true, concurrency = 80, min_instances = 1, max_instances = 2, request_timeout_s = 30, web_workers = 1, db_pool_size = 3 }
    ocr        = { cpu = "2", memory = "4Gi", cpu_always_allocated = true, concurrency = 2, min_instances = 1, max_instances = 2, request_timeout_s = 60, web_workers = 1, db_pool_size = 0 }
    asr        = { cpu = "2", memory = "4Gi", cpu_always_allocated = true, concurrency = 2, min_instances = 1, max_instances = 2, request_timeout_s = 60, web_workers = 1, db_pool_size = 0 }
    crosscheck = { cpu = "1", memory = "1Gi", cpu_always_allocated = true, concurrency = 2, min_instances = 1, max_instances = 2, request_timeout_s = 60, web_workers = 1, db_pool_size = 3 }
  }

  stage_jobs = {
    ocr = { cpu = "2", memory = "4Gi", task_timeout_s = 7200, max_retries = 1 }
    asr = { cpu = "2", memory = "4Gi", task_timeout_s = 7200, max_retries = 1 }
  }

  # Shared-core tier (1.7 GB). Full scale: 2x1x3 + 2x1x3 + 2x1x3 = 18, plus 15 reserved.
  database = {
    tier              = "db-g1-small"
    high_availability = false
    max_connections   = 50
  }
}
