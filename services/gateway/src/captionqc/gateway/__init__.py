"""captionqc.gateway."""
