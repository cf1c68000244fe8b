"""The local stack: embedded PostgreSQL, the Pub/Sub emulator and the five services as processes on 127.0.0.1."""
