output "topic_ids" {
  description = "Topic ids (projects/…/topics/…) by name."
  value       = { for name, t in google_pubsub_topic.this : name => t.id }
}

output "topic_names" {
  description = "Topic names, for IAM bindings."
  value       = { for name, t in google_pubsub_topic.this : name => t.name }
}

output "subscription_names" {
  description = "Subscription names by name (after creation), for IAM bindings."
  value       = { for name, s in google_pubsub_subscription.this : name => s.name }
}
