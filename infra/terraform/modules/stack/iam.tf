# One identity per service, each granted only what its code does. No Cloud SQL client role: services reach the
# database over its private IP with their own login, not through the Cloud SQL Auth Proxy.

resource "google_service_account" "service" {
  for_each = toset(local.service_names)

  project      = var.project_id
  account_id   = "captionqc-${each.key}"
  display_name = "captionqc ${each.key}"
  description  = "Runs the captionqc ${each.key} service (and its jobs)."
}

resource "google_service_account" "pubsub_push" {
  project      = var.project_id
  account_id   = "captionqc-pubsub-push"
  display_name = "captionqc Pub/Sub push"
  description  = "Identity of the OIDC tokens Pub/Sub attaches to push deliveries."
}

locals {
  # Telemetry every service writes; these exist only at project level.
  telemetry_roles = ["roles/cloudtrace.agent", "roles/logging.logWriter", "roles/monitoring.metricWriter"]

  telemetry_grants = {
    for pair in setproduct(local.service_names, local.telemetry_roles) : "${pair[0]} ${pair[1]}" => {
      service = pair[0]
      role    = pair[1]
    }
  }

  publisher_grants = merge([
    for s, topics in local.publishers : { for t in topics : "${s} ${t}" => { service = s, topic = t } }
  ]...)

  # Readers of the media bucket open the media; gs:// URIs are checked at the gateway by syntax only.
  media_readers = toset(["ocr", "asr"])
  # OCR and ASR write claim-checked results (a retried job overwrites its object, hence objectUser rather
  # than objectCreator); the cross-check and the status read model read them back.
  results_writers = toset(["ocr", "asr"])
  results_readers = toset(["crosscheck", "status"])
}

resource "google_project_iam_member" "telemetry" {
  for_each = local.telemetry_grants

  project = var.project_id
  role    = each.value.role
  member  = local.sa_member[each.value.service]

  depends_on = [google_service_account.service]
}

resource "google_pubsub_topic_iam_member" "publisher" {
  for_each = local.publisher_grants

  project = var.project_id
  topic   = module.pubsub.topic_names[each.value.topic]
  role    = "roles/pubsub.publisher"
  member  = local.sa_member[each.value.service]

  depends_on = [google_service_account.service]
}

# Upstream systems publish job requests on intake, and only there; each message also carries a bearer token
# that the gateway verifies, so a grant alone does not make a job.
resource "google_pubsub_topic_iam_member" "intake_publisher" {
  for_each = toset(var.intake_publishers)

  project = var.project_id
  topic   = module.pubsub.topic_names["intake"]
  role    = "roles/pubsub.publisher"
  member  = each.key
}

resource "google_pubsub_subscription_iam_member" "subscriber" {
  for_each = local.subscriptions

  project      = var.project_id
  subscription = module.pubsub.subscription_names[each.key]
  role         = "roles/pubsub.subscriber"
  member       = local.sa_member[each.value.consumer]

  depends_on = [google_service_account.service]
}

resource "google_storage_bucket_iam_member" "media_reader" {
  for_each = local.media_readers

  bucket = google_storage_bucket.media.name
  role   = "roles/storage.objectViewer"
  member = local.sa_member[each.key]

  depends_on = [google_service_account.service]
}

resource "google_storage_bucket_iam_member" "results_writer" {
  for_each = local.results_writers

  bucket = google_storage_bucket.results.name
  role   = "roles/storage.objectUser"
  member = local.sa_member[each.key]

  depends_on = [google_service_account.service]
}

resource "google_storage_bucket_iam_member" "results_reader" {
  for_each = local.results_readers

  bucket = google_storage_bucket.results.name
  role   = "roles/storage.objectViewer"
  member = local.sa_member[each.key]

  depends_on = [google_service_account.service]
}

resource "google_secret_manager_secret_iam_member" "database_url" {
  for_each = local.schema_owners

  project   = var.project_id
  secret_id = module.database.database_url_secret_ids[each.key]
  role      = "roles/secretmanager.secretAccessor"
  member    = local.sa_member[each.key]

  depends_on = [google_service_account.service]
}

resource "google_secret_manager_secret_iam_member" "operator" {
  for_each = local.operator_secret_grants

  project   = var.project_id
  secret_id = google_secret_manager_secret.operator[each.value.secret].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.sa_member[each.value.service]

  depends_on = [google_service_account.service]
}

# Pub/Sub's push identity may invoke only the services that receive pushes.
resource "google_cloud_run_v2_service_iam_member" "push_invoker" {
  for_each = toset([for name in local.push_names : local.subscriptions[name].consumer])

  project  = var.project_id
  location = var.region
  name     = module.service[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.pubsub_push.email}"
}
