# captionqc on Google Cloud: everything one environment needs, in one project.

locals {
  service_names = ["gateway", "status", "ocr", "asr", "crosscheck"]
  http_services = toset(["gateway", "status"])
  # Services that own a Postgres schema (and run Alembic migrations); OCR and ASR keep no state of their own.
  schema_owners = toset(["gateway", "status", "crosscheck"])

  labels = {
    app         = "captionqc"
    environment = var.environment
  }

  deploy = var.image_tag != null

  # Emails are built from the account ids (known at plan time) so that for_each keys never wait for an apply.
  sa_email  = { for s in local.service_names : s => "captionqc-${s}@${var.project_id}.iam.gserviceaccount.com" }
  sa_member = { for s, email in local.sa_email : s => "serviceAccount:${email}" }
  push_sa   = "captionqc-pubsub-push@${var.project_id}.iam.gserviceaccount.com"

  image = {
    for s in local.service_names :
    s => "${google_artifact_registry_repository.images.registry_uri}/${s}:${coalesce(var.image_tag, "unset")}"
  }

  vpc_egress = {
    network    = module.network.network_name
    subnetwork = module.network.egress_subnet_name
  }
}

resource "google_project_service" "apis" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "cloudtrace.googleapis.com",
    "compute.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "servicenetworking.googleapis.com",
    "sqladmin.googleapis.com",
    "storage.googleapis.com",
  ])

  project = var.project_id
  service = each.key
  # Turning an API off on destroy would break anything else in the project that uses it.
  disable_on_destroy = false
}

resource "google_artifact_registry_repository" "images" {
  # checkov:skip=CKV_GCP_84: the images hold open-source code and public model weights only; Google-managed encryption at rest is enough.
  project       = var.project_id
  location      = var.region
  repository_id = "captionqc"
  format        = "DOCKER"
  description   = "captionqc service images, one per service, tagged by git commit."
  labels        = local.labels

  # Old images are removed, but the newest ones stay so that a rollback has something to roll back to.
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 20
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "7776000s"
    }
  }

  depends_on = [google_project_service.apis]
}

module "network" {
  source = "../network"

  project_id = var.project_id
  region     = var.region

  depends_on = [google_project_service.apis]
}

module "pubsub" {
  source = "../pubsub"

  project_id    = var.project_id
  topics        = local.topics
  subscriptions = local.pubsub_subscriptions
  labels        = local.labels
  # Set only when something pushes, so that no token-creator grant exists otherwise.
  push_service_account_email = length(local.push_names) > 0 ? local.push_sa : null

  depends_on = [google_project_service.apis]
}

locals {
  # The topology with push delivery switched on where asked; every other subscription is pulled.
  push_names  = local.deploy ? var.push_subscriptions : toset([])
  service_uri = { for s, m in module.service : s => m.uri }
  pubsub_subscriptions = {
    for name, s in local.subscriptions : name => merge(s, {
      push = contains(local.push_names, name) ? {
        endpoint = "${lookup(local.service_uri, s.consumer, "")}/pubsub/push/${name}"
        audience = lookup(local.service_uri, s.consumer, "")
      } : null
    })
  }
}
