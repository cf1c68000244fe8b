"""captionqc.pubsub_emulator."""
