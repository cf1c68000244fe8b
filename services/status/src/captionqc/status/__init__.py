"""captionqc.status."""
