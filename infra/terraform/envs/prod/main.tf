# Production: regional database with deletion protection, warm instances, room to scale.

module "stack" {
  source = "../../modules/stack"

  project_id                = var.project_id
  region                    = var.region
  environment               = "prod"
  image_tag                 = var.image_tag
  deletion_protection       = true
  jwt_issuer                = var.jwt_issuer
  jwt_audience              = var.jwt_audience
  stage_execution_mode      = var.stage_execution_mode
  allowed_https_media_hosts = var.allowed_https_media_hosts
  intake_publishers         = var.intake_publishers

  # HTTP services: async handlers, so many requests per instance. Workers pull from Pub/Sub, so their
  # "requests" are only health probes; OCR and ASR are CPU-bound, one job per vCPU-ish, CPU always on.
  services = {
    gateway    = { cpu = "1", memory = "1Gi", cpu_always_allocated = true, concurrency = 80, min_instances = 1, max_instances = 10, request_timeout_s = 30, web_workers = 2, db_pool_size = 5 }
    status     = { cpu = "1", memory = "1Gi", cpu_always_allocated = true, concurrency = 80, min_instances = 1, max_instances = 5, request_timeout_s = 30, web_workers = 2, db_pool_size = 5 }
    ocr        = { cpu = "4", memory = "4Gi", cpu_always_allocated = true, concurrency = 4, min_instances = 1, max_instances = 10, request_timeout_s = 60, web_workers = 1, db_pool_size = 0 }
    asr        = { cpu = "4", memory = "4Gi", cpu_always_allocated = true, concurrency = 4, min_instances = 1, max_instances = 10, request_timeout_s = 60, web_workers = 1, db_pool_size = 0 }
    crosscheck = { cpu = "2", memory = "2Gi", cpu_always_allocated = true, concurrency = 4, min_instances = 1, max_instances = 5, request_timeout_s = 60, web_workers = 1, db_pool_size = 5 }
  }

  stage_jobs = {
    ocr = { cpu = "4", memory = "8Gi", task_timeout_s = 10800, max_retries = 1 }
    asr = { cpu = "4", memory = "8Gi", task_timeout_s = 10800, max_retries = 1 }
  }

  # 2 vCPU / 7.5 GB. Full scale: gateway 10x2x5 + status 5x2x5 + crosscheck 5x1x5 = 175, plus 15 reserved.
  database = {
    tier              = "db-custom-2-7680"
    high_availability = true
    max_connections   = 200
    disk_size_gb      = 50
  }
}
