"""Root conftest: registers the shared fixtures for the real local platform (embedded PostgreSQL, Pub/Sub emulator)."""

pytest_plugins = ["captionqc.runtime.testing.plugin"]
