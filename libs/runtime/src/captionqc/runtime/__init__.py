"""captionqc.runtime."""
