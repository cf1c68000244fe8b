# The Pub/Sub topology, as libs/schemas/src/captionqc/schemas/topology.py declares it (TOPOLOGY). It is the
# same in every environment, so it lives here once; tests/test_infra_topology.py parses this file and fails on
# any difference (names, topics, consumers, ack deadlines, retention, retry backoff, dead-letter policy).

locals {
  topics = {
    # The one topic outside publishers write to (grants: var.intake_publishers); the gateway authenticates each
    # message before anything becomes a job.
    "intake"      = { message_retention_s = 604800 }
    "jobs"        = { message_retention_s = 604800 }
    "ocr-results" = { message_retention_s = 604800 }
    "asr-results" = { message_retention_s = 604800 }
    "findings"    = { message_retention_s = 604800 }
    "progress"    = { message_retention_s = 86400 }
    "dead-letter" = { message_retention_s = 2678400 }
  }

  subscriptions = {
    "gateway-intake" = {
      topic               = "intake"
      consumer            = "gateway"
      ack_deadline_s      = 60
      message_retention_s = 604800
      retry               = { minimum_backoff_s = 2, maximum_backoff_s = 120 }
      dead_letter         = { topic = "dead-letter", max_delivery_attempts = 5 }
    }
    # The gateway learns which jobs have finished, for the jobs-in-flight quota.
    "gateway-findings" = {
      topic               = "findings"
      consumer            = "gateway"
      ack_deadline_s      = 60
      message_retention_s = 604800
      retry               = { minimum_backoff_s = 2, maximum_backoff_s = 120 }
      dead_letter         = { topic = "dead-letter", max_delivery_attempts = 5 }
    }
    "ocr-jobs" = {
      topic               = "jobs"
      consumer            = "ocr"
      ack_deadline_s      = 60
      message_retention_s = 604800
      retry               = { minimum_backoff_s = 2, maximum_backoff_s = 120 }
      dead_letter         = { topic = "dead-letter", max_delivery_attempts = 5 }
    }
    "asr-jobs" = {
      topic               = "jobs"
      consumer            = "asr"
      ack_deadline_s      = 60
      message_retention_s = 604800
      retry               = { minimum_backoff_s = 2, maximum_backoff_s = 120 }
      dead_letter         = { topic = "dead-letter", max_delivery_attempts = 5 }
    }
    # The cross-check needs the job's options (glossary, checks) as well as both results.
    "crosscheck-jobs" = {
      topic               = "jobs"
      consumer            = "crosscheck"
      ack_deadline_s      = 60
      message_retention_s = 604800
      retry               = { minimum_backoff_s = 2, maximum_backoff_s = 120 }
      dead_letter         = { topic = "dead-letter", max_delivery_attempts = 5 }
    }
    "crosscheck-ocr-results" = {
      topic               = "ocr-results"
      consumer            = "crosscheck"
      ack_deadline_s      = 60
      message_retention_s = 604800
      retry               = { minimum_backoff_s = 2, maximum_backoff_s = 120 }
      dead_letter         = { topic = "dead-letter", max_delivery_attempts = 5 }
    }
    "crosscheck-asr-results" = {
      topic               = "asr-results"
      consumer            = "crosscheck"
      ack_deadline_s      = 60
      message_retention_s = 604800
      retry               = { minimum_backoff_s = 2, maximum_backoff_s = 120 }
      dead_letter         = { topic = "dead-letter", max_delivery_attempts = 5 }
    }
    "status-jobs" = {
      topic               = "jobs"
      consumer            = "status"
      ack_deadline_s      = 60
      message_retention_s = 604800
      retry               = { minimum_backoff_s = 2, maximum_backoff_s = 120 }
      dead_letter         = { topic = "dead-letter", max_delivery_attempts = 5 }
    }
    "status-ocr-results" = {
      topic               = "ocr-results"
      consumer            = "status"
      ack_deadline_s      = 60
      message_retention_s = 604800
      retry               = { minimum_backoff_s = 2, maximum_backoff_s = 120 }
      dead_letter         = { topic = "dead-letter", max_delivery_attempts = 5 }
    }
    "status-asr-results" = {
      topic               = "asr-results"
      consumer            = "status"
      ack_deadline_s      = 60
      message_retention_s = 604800
      retry               = { minimum_backoff_s = 2, maximum_backoff_s = 120 }
      dead_letter         = { topic = "dead-letter", max_delivery_attempts = 5 }
    }
    "status-findings" = {
      topic               = "findings"
      consumer            = "status"
      ack_deadline_s      = 60
      message_retention_s = 604800
      retry               = { minimum_backoff_s = 2, maximum_backoff_s = 120 }
      dead_letter         = { topic = "dead-letter", max_delivery_attempts = 5 }
    }
    "status-progress" = {
      topic               = "progress"
      consumer            = "status"
      ack_deadline_s      = 60
      message_retention_s = 604800
      retry               = { minimum_backoff_s = 2, maximum_backoff_s = 120 }
      dead_letter         = { topic = "dead-letter", max_delivery_attempts = 5 }
    }
    # The dead-letter topic's own subscription has nowhere further to go.
    "status-dead-letter" = {
      topic               = "dead-letter"
      consumer            = "status"
      ack_deadline_s      = 60
      message_retention_s = 604800
      retry               = { minimum_backoff_s = 2, maximum_backoff_s = 120 }
      dead_letter         = null
    }
  }

  # Who publishes where, and so the only publisher grants on our topics: each internal topic is written by its
  # producer alone (EVENT_TOPICS in topology.py, by the stage that emits each event type), so a forged result
  # cannot come from inside the project either; every consumer forwards what it refuses to dead-letter. The
  # test checks both, since this decides the grants. Intake is granted to var.intake_publishers, nobody here.
  publishers = {
    "gateway"    = ["jobs", "dead-letter"]
    "ocr"        = ["ocr-results", "progress", "dead-letter"]
    "asr"        = ["asr-results", "progress", "dead-letter"]
    "crosscheck" = ["findings", "dead-letter"]
    "status"     = ["dead-letter"]
  }
}
