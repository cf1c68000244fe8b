locals {
  # Connections at full scale: every instance of every schema owner opening its whole pool in every worker.
  # Cloud Run's max_instances is the lever; the database precondition fails the plan when this outgrows
  # max_connections (minus the reserve for migrations and psql).
  required_connections = sum([
    for s in local.schema_owners :
    var.services[s].max_instances * var.services[s].web_workers * var.services[s].db_pool_size
  ])
}

module "database" {
  source = "../database"

  project_id           = var.project_id
  region               = var.region
  tier                 = var.database.tier
  high_availability    = var.database.high_availability
  disk_size_gb         = var.database.disk_size_gb
  max_connections      = var.database.max_connections
  required_connections = local.required_connections
  deletion_protection  = var.deletion_protection
  private_network_id   = module.network.network_id
  databases            = local.schema_owners
  labels               = local.labels

  # Private IP needs the private services peering first.
  depends_on = [module.network, google_project_service.apis]
}

locals {
  # Secrets whose values never pass through Terraform (nor its state): the operator adds their versions
  # (docs/deploy.md). Secret id => the services that read it.
  operator_secrets = {
    "jwt-jwks-url" = ["gateway", "status"]
  }
  operator_secret_grants = merge([
    for secret, readers in local.operator_secrets : { for s in readers : "${secret} ${s}" => { secret = secret, service = s } }
  ]...)
}

resource "google_secret_manager_secret" "operator" {
  # checkov:skip=CKV_GCP_128: Google-managed keys encrypt these at rest; CMEK adds a key ring and agent grants for no stated requirement.
  for_each = local.operator_secrets

  project   = var.project_id
  secret_id = each.key
  labels    = merge(local.labels, { reader = each.value })

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}
