variable "project_id" {
  description = "Project of the network."
  type        = string
}

variable "region" {
  description = "Region of the Cloud Run egress subnet."
  type        = string
}

variable "name" {
  description = "Name of the VPC network (the subnet and the peering range are named after it)."
  type        = string
  default     = "captionqc"
}

variable "egress_subnet_cidr" {
  description = "Range of the subnet Cloud Run instances and jobs use for Direct VPC egress (a /26 at least)."
  type        = string
  default     = "10.20.0.0/24"
}

variable "private_services_prefix_length" {
  description = "Prefix length of the range reserved for Cloud SQL's private IP (private services access)."
  type        = number
  default     = 20
}
