"""captionqc.crosscheck."""
