"""A local, faithful stand-in for Google Cloud Pub/Sub that the official client talks to over gRPC."""

__all__ = ["__version__"]

__version__ = "0.1.0"
