variable "project_id" {
  description = "Project that owns the topics and subscriptions."
  type        = string
}

variable "topics" {
  description = "Topics by name, with how long each keeps messages (seconds) even after they are acknowledged."
  type = map(object({
    message_retention_s = number
  }))
}

variable "subscriptions" {
  description = <<-EOT
    Subscriptions by name. `consumer` names the service that reads it; `retry` is the exponential backoff of
    redeliveries; `dead_letter` (null = none) names a topic of `topics` and how many deliveries come first;
    `push` (null = pull) turns the subscription into a push to an HTTPS endpoint, with an OIDC token of
    `push_service_account_email`.
  EOT
  type = map(object({
    topic               = string
    consumer            = string
    ack_deadline_s      = number
    message_retention_s = number
    retry = object({
      minimum_backoff_s = number
      maximum_backoff_s = number
    })
    dead_letter = optional(object({
      topic                 = string
      max_delivery_attempts = number
    }))
    push = optional(object({
      endpoint = string
      audience = optional(string)
    }))
  }))

  validation {
    condition     = alltrue([for s in values(var.subscriptions) : s.ack_deadline_s >= 10 && s.ack_deadline_s <= 600])
    error_message = "Pub/Sub accepts ack deadlines of 10 to 600 seconds."
  }

  validation {
    condition = alltrue([
      for s in values(var.subscriptions) :
      s.retry.minimum_backoff_s <= s.retry.maximum_backoff_s && s.retry.maximum_backoff_s <= 600
    ])
    error_message = "Retry backoff needs minimum <= maximum <= 600 seconds."
  }

  validation {
    condition = alltrue([
      for s in values(var.subscriptions) :
      s.dead_letter == null ? true : (s.dead_letter.max_delivery_attempts >= 5 && s.dead_letter.max_delivery_attempts <= 100)
    ])
    error_message = "Pub/Sub accepts 5 to 100 delivery attempts before dead-lettering."
  }
}

variable "push_service_account_email" {
  description = "Identity whose OIDC token Pub/Sub sends to push endpoints; required when any subscription pushes."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels put on every topic and subscription."
  type        = map(string)
  default     = {}
}
