# Topics and subscriptions of the code's topology (libs/schemas/.../topology.py): the map that feeds this
# module is checked against it by tests/test_infra_topology.py.

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  # Pub/Sub forwards dead letters as its own service agent, not as any of our service accounts.
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  dead_lettered      = { for name, s in var.subscriptions : name => s if s.dead_letter != null }
  dead_letter_topics = toset([for s in values(local.dead_lettered) : s.dead_letter.topic])
}

resource "google_pubsub_topic" "this" {
  # checkov:skip=CKV_GCP_83: messages are ids, URIs and small results (never media); Google-managed encryption at rest is enough here, CMEK would add a key ring and four service-agent grants for no data that needs it.
  for_each = var.topics

  project                    = var.project_id
  name                       = each.key
  message_retention_duration = "${each.value.message_retention_s}s"
  labels                     = var.labels
}

resource "google_pubsub_subscription" "this" {
  for_each = var.subscriptions

  project                    = var.project_id
  name                       = each.key
  topic                      = google_pubsub_topic.this[each.value.topic].id
  ack_deadline_seconds       = each.value.ack_deadline_s
  message_retention_duration = "${each.value.message_retention_s}s"
  # Consumers are idempotent (inbox table); exactly-once delivery would only add latency.
  enable_exactly_once_delivery = false
  labels                       = merge(var.labels, { consumer = each.value.consumer })

  retry_policy {
    minimum_backoff = "${each.value.retry.minimum_backoff_s}s"
    maximum_backoff = "${each.value.retry.maximum_backoff_s}s"
  }

  dynamic "dead_letter_policy" {
    for_each = each.value.dead_letter == null ? [] : [each.value.dead_letter]
    content {
      dead_letter_topic     = google_pubsub_topic.this[dead_letter_policy.value.topic].id
      max_delivery_attempts = dead_letter_policy.value.max_delivery_attempts
    }
  }

  dynamic "push_config" {
    for_each = each.value.push == null ? [] : [each.value.push]
    content {
      push_endpoint = push_config.value.endpoint
      oidc_token {
        service_account_email = var.push_service_account_email
        audience              = push_config.value.audience
      }
    }
  }

  # A subscription that is never read would otherwise be deleted after 31 days of inactivity.
  expiration_policy {
    ttl = ""
  }
}

# What the Pub/Sub service agent needs to dead-letter: publish on the dead-letter topic, and ack (subscriber on)
# the source subscription so that the forwarded message leaves it.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = local.dead_letter_topics

  project = var.project_id
  topic   = google_pubsub_topic.this[each.key].name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_source" {
  for_each = local.dead_lettered

  project      = var.project_id
  subscription = google_pubsub_subscription.this[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# In projects created before April 2021 the agent must be allowed to mint the push identity's OIDC tokens.
resource "google_service_account_iam_member" "push_token_creator" {
  count = var.push_service_account_email == null ? 0 : 1

  service_account_id = "projects/${var.project_id}/serviceAccounts/${var.push_service_account_email}"
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}
