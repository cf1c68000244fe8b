"""captionqc.media."""
