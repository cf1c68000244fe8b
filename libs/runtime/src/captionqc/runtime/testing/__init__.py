"""Test support shared by every package: real PostgreSQL (embedded) and the real Pub/Sub emulator.

Registered as a pytest plugin by the repo's root ``conftest.py``. Fixtures:

- ``pg_server`` (session): one embedded PostgreSQL for the whole run (or ``DATABASE_URL``'s server if set).
- ``fresh_database`` (function): a factory ``await fresh_database(migrate)`` → URL of a new empty database,
  migrated by ``migrate(url)`` and dropped after the test.
- ``pubsub_emulator`` (session): one emulator process for the run.
- ``pubsub_project`` (function): a unique project id on it with the captionqc topology applied, and
  ``PUBSUB_EMULATOR_HOST`` set for the test — isolation per test without restarting anything.
"""
